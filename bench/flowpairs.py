"""Flow-pair throughput: ``python bench/flowpairs.py [--pairs N] [--scenes N] [--codec mp4v]``.

Video mode: a 1280x720, 240 fps clip made here (a camera panning over a large landscape-like
picture, plus a textured disc crossing it, written with OpenCV's ``mp4v`` encoder by default),
run through the real pipeline (``flowpairs_dataset``, one task, default config: 7-frame windows,
DIS medium both ways, forward-backward check, gzip shards) with each DIS preset. Pairs/s is
over the task's wall time; the breakdown is seconds per pair in each stage as the pipeline
times it: decode (demux, decode, BGR->RGB), average (linear-light running sum, scene-cut
histograms, the window's mean), flow (two DIS calls and the consistency check), write (shard
compression and checksums). Synth mode: the default procedural scenes (320x240) and the same
at 1280x720, breakdown synth (render every frame exactly and average) and write. One more
video row writes zstd shards instead of gzip (needs hdf5plugin) to show what compression costs.

Nothing is downloaded; the clip and the shards go to a temporary folder that is removed.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import machine  # noqa: E402

from blurgen.assets.demo_backgrounds import make_background  # noqa: E402
from blurgen.config import resolve_config  # noqa: E402
from blurgen.flowpairs.config import KIND, FlowpairsConfig  # noqa: E402
from blurgen.flowpairs.pipeline import flowpairs_dataset  # noqa: E402
from blurgen.rng import item_rng  # noqa: E402

WIDTH, HEIGHT = 1280, 720
WINDOW = 7
STAGES = ("decode", "average", "flow", "synth", "write")


def make_clip(path: Path, frames: int, codec: str) -> None:
    """A panning camera (2 px right, 1 px down per frame) and a disc moving 6 px left per frame."""
    rng = item_rng(0, 0)
    canvas = make_background(rng, WIDTH + 2 * frames + 8, HEIGHT + frames + 8)
    disc_tex = make_background(item_rng(0, 1), 240, 240)
    yy, xx = np.mgrid[:240, :240]
    disc = ((xx - 119.5) ** 2 + (yy - 119.5) ** 2) < 110 ** 2
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), 240.0, (WIDTH, HEIGHT))
    if not writer.isOpened():
        raise SystemExit(f"OpenCV cannot write {codec} video here")
    for i in range(frames):
        frame = canvas[i:i + HEIGHT, 2 * i:2 * i + WIDTH].copy()
        x0 = WIDTH - 300 - 6 * i
        frame[240:480, x0:x0 + 240][disc] = disc_tex[disc]
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()


def run(config: FlowpairsConfig, out: Path) -> tuple[int, float, dict[str, float]]:
    start = time.perf_counter()
    summary = flowpairs_dataset(config, out, progress=False)
    wall = time.perf_counter() - start
    (task,) = summary.tasks
    return summary.samples, wall, dict(task.timings)


def row(label: str, size: str, pairs: int, wall: float, timings: dict[str, float]) -> str:
    per = [f"{timings[s] / pairs:.3f}" if s in timings and pairs else "-" for s in STAGES]
    return f"| {label} | {size} | {pairs} | {wall:.1f} | **{pairs / wall:.2f}** | " + " | ".join(per) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=8, help="video windows per DIS preset (7 frames each)")
    parser.add_argument("--scenes", type=int, default=12, help="procedural scenes per synth row")
    parser.add_argument("--codec", default="mp4v", help="fourcc of the generated clip (mp4v, MJPG, FFV1)")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    print(f"OpenCV {cv2.__version__}, {cv2.getNumThreads()} threads\n")
    header = ("| mode | size | pairs | wall s | pairs/s | " + " | ".join(f"{s} s/pair" for s in STAGES)
              + " |\n|" + "---|" * (5 + len(STAGES)))
    print(header)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        clip = tmp / "videos" / f"clip.{'avi' if args.codec != 'mp4v' else 'mp4'}"
        clip.parent.mkdir()
        make_clip(clip, args.pairs * WINDOW, args.codec)
        base = resolve_config(FlowpairsConfig, KIND, overrides={
            "mode": "video", "video": {"videos": str(clip.parent)},
            "output": {"preview": False}, "split": {"val": 0.0, "test": 0.0}})
        for preset in ("medium", "fast", "ultrafast"):
            config = dataclasses.replace(base, flow=dataclasses.replace(base.flow, estimator=f"dis-{preset}"))
            pairs, wall, timings = run(config, tmp / f"video-{preset}")
            label = f"video, dis-{preset}" + (" (default)" if preset == "medium" else "")
            print(row(label, f"{WIDTH}x{HEIGHT}", pairs, wall, timings), flush=True)
        try:
            import hdf5plugin  # noqa: F401
        except ImportError:
            print("| video, zstd shards | skipped: pip install blurgen[zstd] |")
        else:
            config = dataclasses.replace(base, output=dataclasses.replace(base.output, compression="zstd"))
            pairs, wall, timings = run(config, tmp / "video-zstd")
            print(row("video, dis-medium, zstd shards", f"{WIDTH}x{HEIGHT}", pairs, wall, timings), flush=True)
        for size in ((320, 240), (WIDTH, HEIGHT)):
            config = resolve_config(FlowpairsConfig, KIND, overrides={
                "mode": "synth", "synth": {"scenes": args.scenes, "size": list(size)},
                "output": {"preview": False}, "split": {"val": 0.0, "test": 0.0}})
            pairs, wall, timings = run(config, tmp / f"synth-{size[0]}")
            label = "synth, procedural" + (" (default)" if size == (320, 240) else "")
            print(row(label, f"{size[0]}x{size[1]}", pairs, wall, timings), flush=True)
    print("\nstages: seconds per written pair (decode/average/flow: video; synth: render + average); "
          "wall includes planning and the shard's close")


if __name__ == "__main__":
    main()
