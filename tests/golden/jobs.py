"""Small jobs of every generator whose shards are kept in ``tests/golden/<job>/`` as written by an
earlier version of the code (``python tests/golden/jobs.py`` rewrites them).

They guard refactors that must not change a single stored value: ``tests/test_golden_shards.py``
runs the same jobs with the code as it is and compares every dataset of every shard exactly.
Each job covers one preset at a tiny size, plus the options that take their own code paths
(render's exact flow and all windows, composite's photometric effects, flowpairs video and synth).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Callable

GOLDEN = Path(__file__).resolve().parent
TESTS = GOLDEN.parent


def _demo_assets(work: Path) -> tuple[Path, Path]:
    from blurgen.assets.config import DemoAssetsConfig
    from blurgen.assets.demo import make_demo_assets

    demo = make_demo_assets(work / "assets", DemoAssetsConfig(
        categories=2, objects_per_category=2, texture_size=64, backgrounds=3, background_width=160,
        background_height=120, preview=False))
    return demo.objects, demo.backgrounds


def render_demo(out: Path, work: Path) -> None:
    from blurgen.config import resolve_config
    from blurgen.render.config import RenderConfig
    from blurgen.render.pipeline import render_dataset

    objects, backgrounds = _demo_assets(work)
    config = resolve_config(RenderConfig, "render", preset="demo", overrides=[
        f"assets.objects={objects}", f"assets.backgrounds={backgrounds}", "assets.objects_per_category=1",
        "trajectory.per_object=2", "camera.width=64", "camera.height=48", "cycles.samples=2",
        "images.max_window=4", "labels.erosion_px=1", "output.preview=false", "farm.batch_size=2"])
    render_dataset(config, out, progress=False)


def render_flow_all_windows(out: Path, work: Path) -> None:
    from blurgen.config import resolve_config
    from blurgen.render.config import RenderConfig
    from blurgen.render.pipeline import render_dataset

    objects, backgrounds = _demo_assets(work)
    config = resolve_config(RenderConfig, "render", preset="demo", overrides=[
        f"assets.objects={objects}", f"assets.backgrounds={backgrounds}", "assets.objects_per_category=1",
        "trajectory.per_object=1", "camera.width=64", "camera.height=48", "labels.erosion_px=1",
        "cycles.samples=2", "images.max_window=3", "images.windows=all", "images.flow=true",
        "output.preview=false"])
    render_dataset(config, out, progress=False)


def _composite(out: Path, preset: str) -> None:
    from blurgen.composite.config import KIND, CompositeConfig
    from blurgen.composite.pipeline import composite_dataset
    from blurgen.config import resolve_config

    config = resolve_config(CompositeConfig, KIND, preset=preset, overrides={
        "sources": {"procedural_count": 4, "procedural_size": [160, 120]},
        "samples": {"per_source": 4, "width": 96, "height": 80, "min_instance_px": 16},
        "output": {"preview": False}})
    composite_dataset(config, out, num_tasks=2, progress=False)


def composite_demo(out: Path, work: Path) -> None:
    _composite(out, "demo")


def composite_paper(out: Path, work: Path) -> None:
    _composite(out, "paper")  # photometric effects and the advanced stage


def flowpairs_synth(out: Path, work: Path) -> None:
    from blurgen.config import resolve_config
    from blurgen.flowpairs.config import KIND, FlowpairsConfig
    from blurgen.flowpairs.pipeline import flowpairs_dataset

    config = resolve_config(FlowpairsConfig, KIND, overrides={
        "mode": "synth", "synth": {"scenes": 4, "size": [64, 48], "scene_displacement": 20.0},
        "output": {"preview": False}})
    flowpairs_dataset(config, out, progress=False)


def flowpairs_video(out: Path, work: Path) -> None:
    sys.path.insert(0, str(TESTS))
    from flowpairs_fixtures import moving_frames, write_video

    from blurgen.config import resolve_config
    from blurgen.flowpairs.config import KIND, FlowpairsConfig
    from blurgen.flowpairs.pipeline import flowpairs_dataset

    videos = work / "videos"
    write_video(videos / "a.avi", moving_frames(22, dx=1, dy=0, seed=3))
    write_video(videos / "b.avi", moving_frames(15, dx=0, dy=2, seed=4, cut_at=8))
    config = resolve_config(FlowpairsConfig, KIND, overrides={
        "mode": "video", "video": {"videos": str(videos)}, "output": {"preview": False}})
    flowpairs_dataset(config, out, progress=False)


JOBS: dict[str, Callable[[Path, Path], None]] = {
    "render_demo": render_demo,
    "render_flow_all_windows": render_flow_all_windows,
    "composite_demo": composite_demo,
    "composite_paper": composite_paper,
    "flowpairs_synth": flowpairs_synth,
    "flowpairs_video": flowpairs_video,
}


def write(name: str, out: Path, work: Path) -> None:
    """Run job ``name`` into ``out`` (a new folder), with ``work`` for its inputs."""
    JOBS[name](out, work)


if __name__ == "__main__":
    import tempfile

    for name in sys.argv[1:] or JOBS:
        target = GOLDEN / name
        shutil.rmtree(target, ignore_errors=True)
        with tempfile.TemporaryDirectory() as tmp:
            write(name, target, Path(tmp))
        print(name, sorted(p.name for p in target.iterdir()))
