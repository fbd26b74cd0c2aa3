"""`blurgen render` end to end with real Blender at tiny sizes: determinism, resume, levels,
filters and bad inputs."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from blurgen.assets import AssetManifest
from blurgen.assets.config import DemoAssetsConfig
from blurgen.assets.demo import make_demo_assets
from blurgen.cli import main
from blurgen.config import resolve_config
from blurgen.errors import BlurgenError
from blurgen.render.config import RenderConfig
from blurgen.render.pipeline import render_dataset
from blurgen.shards import ShardDataset, verify_dir
from shard_fixtures import assert_same_samples, assert_same_shard_bytes, samples_by_id

pytestmark = pytest.mark.slow  # every test here launches Blender


@pytest.fixture(scope="module")
def assets(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("assets")
    demo = make_demo_assets(root, DemoAssetsConfig(categories=2, objects_per_category=2, texture_size=64,
                                                   backgrounds=3, background_width=160,
                                                   background_height=120, preview=False))
    return {"objects": demo.objects, "backgrounds": demo.backgrounds, "root": root}


def tiny(assets, *sets: str) -> RenderConfig:
    """4 trajectories (2 categories x 1 object x 2) at 64x48, 2 spp, windows up to 4."""
    return resolve_config(RenderConfig, "render", preset="demo", overrides=[
        f"assets.objects={assets['objects']}", f"assets.backgrounds={assets['backgrounds']}",
        "assets.objects_per_category=1", "trajectory.per_object=2", "camera.width=64",
        "camera.height=48", "cycles.samples=2", "images.max_window=4", "labels.erosion_px=1",
        "output.preview=false", "farm.batch_size=2", *sets])


@pytest.fixture(scope="module")
def reference(assets, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("reference")
    summary = render_dataset(tiny(assets), out, progress=False)
    assert summary.samples > 0
    return out


def test_same_samples_however_many_tasks_and_same_bytes_on_rerun(assets, reference, tmp_path):
    render_dataset(tiny(assets), tmp_path / "three", num_tasks=3, jobs=2, progress=False)  # joblib path
    assert_same_samples(samples_by_id(reference), samples_by_id(tmp_path / "three"))
    render_dataset(tiny(assets), tmp_path / "again", progress=False)
    assert_same_shard_bytes(reference, tmp_path / "again")


def test_stored_pose_and_intrinsics_project_the_mesh_onto_its_pixels(assets, reference):
    """pose_start/intrinsics (for flow and 6D labels) must describe what Blender drew."""
    import trimesh

    objects = AssetManifest.load(assets["objects"])
    checked = 0
    for s in ShardDataset(reference):
        if int(s["window_count"]) != 0:
            continue  # the sharp image: one pose, no motion
        vertices = trimesh.load(objects.path_of(str(s["object_id"])), force="mesh", process=False).vertices
        camera = s["pose_start"][:3, :3] @ vertices.T + s["pose_start"][:3, 3:4]
        u, v, w = s["intrinsics"] @ camera
        x, y = u / w, v / w
        projected = np.array([np.clip(x.min(), 0, 64), np.clip(y.min(), 0, 48),
                              np.clip(x.max(), 0, 64), np.clip(y.max(), 0, 48)])
        # alpha > 0 reaches up to one pixel filter radius (0.75 px) beyond the silhouette
        assert np.abs(projected - s["bbox"]).max() <= 1.5, (projected, s["bbox"])
        checked += 1
    assert checked >= 2


def test_shard_contents_follow_the_schema(reference):
    dataset = ShardDataset(reference)
    sample = dataset[0]
    assert sample["image"].shape == (48, 64, 3) and sample["image"].dtype == np.uint8
    assert sample["alpha"].shape == (48, 64) and sample["alpha"].dtype == np.float32
    for s in dataset:
        x0, y0, x1, y1 = s["bbox"]
        support = np.argwhere(s["alpha"] > 0)
        assert (y0, x0, y1, x1) == (*support.min(0), *(support.max(0) + 1))
        assert 1 <= s["blur_level"] <= 10 and 0.0 <= s["blur_severity"] <= 1.0
        assert s["blur_level"] == max(1, int(np.ceil(10 * float(s["blur_severity"]) - 1e-6)))
        # the pose at the window's start projects the object centre inside the image
        centre = s["intrinsics"] @ s["pose_start"][:3, 3]
        assert 0 <= centre[0] / centre[2] <= 64 and 0 <= centre[1] / centre[2] <= 48
    counts = [int(s["window_count"]) for s in dataset]
    assert set(counts) <= {0, 1, 2, 3, 4}
    attrs = dataset.shard_attrs(0)
    assert attrs["schema"] == "blurgen.render/1"
    assert json.loads(attrs["config"])["camera"]["width"] == 64


def eq5_severity(alpha: np.ndarray, erosion_px: int) -> float:
    """Eq. 5 as docs/render.md states it: beta = (alpha > 0) eroded by a (2e+1) x (2e+1) square,
    pixels outside the image counting as support; BS = 1 - sum(beta alpha) / sum(beta)."""
    from scipy.ndimage import binary_erosion

    beta = binary_erosion(alpha > 0, structure=np.ones((2 * erosion_px + 1,) * 2, bool), border_value=1)
    return 1.0 - float((beta * alpha.astype(np.float64)).sum()) / beta.sum()


def test_stored_blur_severity_is_eq5_of_the_stored_alpha_with_the_papers_erosion(reference):
    eroded_away = 0
    for s in ShardDataset(reference):
        alpha = s["alpha"]
        assert abs(float(s["blur_severity"]) - eq5_severity(alpha, 1)) < 1e-6, s["sample_id"]
        eroded_away += abs(eq5_severity(alpha, 0) - eq5_severity(alpha, 1)) > 1e-3
    assert eroded_away > 0  # the erosion matters in these images: a wrong one would show


def test_resume_after_a_killed_task_skips_finished_work(assets, reference, tmp_path):
    out = tmp_path / "farm"
    first = render_dataset(tiny(assets), out, task_index=0, num_tasks=2, progress=False)
    task0 = {p.name: p.stat().st_mtime_ns for p in out.glob("*.h5")}
    assert first.tasks[0].samples > 0 and task0
    # task 1 is killed (SIGKILL) while it renders: it leaves only its hidden temporary shard.
    # Its Blender is a stand-in: the first batch (one trajectory) goes to the real script, the
    # second never ends and says so through a FIFO, so the kill lands mid-task, whatever the speed.
    config_file = tmp_path / "tiny.json"  # JSON is YAML
    from blurgen.config import to_dict
    config_file.write_text(json.dumps(to_dict(tiny(assets, "farm.batch_size=1"))))
    started, fifo = tmp_path / "started", tmp_path / "second-batch"
    started.mkdir()
    os.mkfifo(fifo)
    blender = tmp_path / "blender"
    blender.write_text(f'#!/bin/sh\nn=$(ls "{started}" | wc -l)\ntouch "{started}/$n"\n'
                       f'if [ "$n" -ge 1 ]; then echo $$ > "{fifo}"; exec sleep 3600; fi\n'
                       f'exec "{sys.executable}" "$4" "$5" "$6"\n')
    blender.chmod(0o755)
    log = tmp_path / "task1.log"
    with open(log, "wb") as log_fh:
        proc = subprocess.Popen([sys.executable, "-m", "blurgen", "render", "--config", str(config_file),
                                 "--out", str(out), "--task-index", "1", "--num-tasks", "2",
                                 "--blender", str(blender)],
                                stdout=log_fh, stderr=subprocess.STDOUT, start_new_session=True)

    def unblock_if_it_exits() -> None:  # a task that ends without a second batch must not hang us
        proc.wait()
        with contextlib.suppress(OSError):  # no reader left: the FIFO was read
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))

    threading.Thread(target=unblock_if_it_exits, daemon=True).start()
    with open(fifo) as fh:
        stand_in = fh.read().strip()
    assert stand_in and proc.poll() is None, log.read_text()
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    os.kill(int(stand_in), signal.SIGKILL)  # in its own session, like a real Blender
    assert not any(p.name.endswith("-00001-of-00002.h5") for p in out.iterdir())
    manifest_before = (out / "manifest.json").read_bytes()
    assert json.loads(manifest_before)["totals"]["shards"] == len(task0)

    # the same command without a task index finishes the job: task 0 skipped, task 1 rendered
    again = render_dataset(tiny(assets, "farm.batch_size=1"), out, num_tasks=2, progress=False)
    assert [t.skipped_complete for t in again.tasks] == [True, False]
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*-00000-of-00002.h5")} == task0
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    assert verify_dir(out).ok
    assert_same_samples(samples_by_id(reference), samples_by_id(out))


def test_a_static_object_has_one_severity_per_trajectory_and_fast_motion_levels_grow_with_the_window(assets, tmp_path):
    static = render_dataset(tiny(assets, "trajectory.translation=[0, 0]", "trajectory.rotation_deg=[0, 0]"),
                            tmp_path / "static", progress=False)
    assert static.samples > 0
    # A still object: every window of a trajectory has the same exact coverage, so the same BS
    # (to float32 rounding: a window is a mean of k equal layers). What BS there is comes from the anti-aliased fringe that a 1 px erosion leaves
    # at 64x48, not from motion: the colour alpha at 64 spp gives 0.03-0.22 there too (at 2 spp
    # the fringe got no samples and BS read under 0.1).
    still: dict[int, set[float]] = {}
    for s in ShardDataset(tmp_path / "static"):
        still.setdefault(int(s["trajectory_id"]), set()).add(float(s["blur_severity"]))
        assert s["blur_level"] <= 3 and s["blur_severity"] <= 0.25
    assert all(max(severities) - min(severities) < 1e-6 for severities in still.values()), still

    render_dataset(tiny(assets, "trajectory.translation=[2.2, 2.4]", "trajectory.rotation_deg=[0, 0]",
                        "trajectory.object_size=[0.7, 0.8]", "images.max_window=10",
                        "trajectory.depth=[3, 3.5]", "labels.min_iou=0"), tmp_path / "fast", progress=False)
    by_trajectory: dict[int, dict[int, float]] = {}
    for s in ShardDataset(tmp_path / "fast"):
        by_trajectory.setdefault(int(s["trajectory_id"]), {})[int(s["window_count"])] = float(s["blur_severity"])
    assert by_trajectory
    for severities in by_trajectory.values():
        ordered = [severities[k] for k in sorted(severities)]
        assert all(b >= a - 0.02 for a, b in zip(ordered, ordered[1:])), ordered  # grows with k
        assert max(ordered) >= 0.4  # a fast object reaches level 5 or more


def test_filters_drop_images_and_count_reasons(assets, tmp_path):
    images_per_run = 4 * (1 + 4)  # 4 trajectories x (sharp + windows 1..4)
    summary = render_dataset(tiny(assets, "labels.min_coverage=0.95"), tmp_path / "small", progress=False)
    assert summary.samples == 0
    assert summary.count("dropped")["small"] == images_per_run
    # the task's counts are stored in its shard, which exists (empty) so the task counts as done
    (shard,) = (tmp_path / "small").glob("*.h5")
    stats = json.loads(_root_attr(shard, "stats"))
    assert stats["dropped"] == {"small": images_per_run} and stats["skipped_objects"] == {}

    turning = render_dataset(tiny(assets, "trajectory.rotation_deg=[150, 180]", "labels.min_iou=0.95",
                                  "trajectory.translation=[0, 0]"), tmp_path / "turn", progress=False)
    dropped = {}
    for t in turning.tasks:
        for reason, n in t.counts.get("dropped", {}).items():
            dropped[reason] = dropped.get(reason, 0) + n
    assert dropped.get("appearance_change", 0) > 0
    assert turning.samples + sum(dropped.values()) == images_per_run
    assert 0 in {int(s["window_count"]) for s in ShardDataset(tmp_path / "turn")}  # sharp images stay


def test_an_image_whose_eroded_support_is_empty_is_dropped_as_no_support(assets, tmp_path):
    # 40 px of erosion leaves nothing of a demo object at 64 x 48 (objects span < 80 px)
    summary = render_dataset(tiny(assets, "labels.erosion_px=40", "labels.min_coverage=0"), tmp_path / "out",
                             progress=False)
    assert summary.samples == 0 and summary.count("dropped") == {"no_support": 4 * (1 + 4)}


def test_all_windows_give_every_position_and_each_is_the_mean_of_its_sub_intervals(assets, tmp_path):
    summary = render_dataset(tiny(assets, "images.windows=all", "images.max_window=2", "labels.min_iou=0",
                                  "labels.min_coverage=0", "trajectory.per_object=1"), tmp_path / "all",
                             progress=False)
    per_trajectory = 1 + 23 + 22  # sharp, 23 single sub-intervals, 22 pairs
    assert summary.samples + sum(summary.count("dropped").values()) == 2 * per_trajectory
    by_window: dict[tuple[int, int, int], np.ndarray] = {}
    for s in ShardDataset(tmp_path / "all"):
        key = (int(s["trajectory_id"]), int(s["window_start"]), int(s["window_count"]))
        assert key not in by_window
        by_window[key] = s["alpha"]
    starts = {(count, start) for _, start, count in by_window}
    assert (1, 0) in starts and (1, 22) in starts and (2, 21) in starts  # not only the centred ones
    pairs = 0
    for (t, start, count), alpha in by_window.items():
        if count == 2 and (t, start, 1) in by_window and (t, start + 1, 1) in by_window:
            halves = (by_window[t, start, 1].astype(np.float64) + by_window[t, start + 1, 1]) / 2
            np.testing.assert_allclose(alpha, halves, atol=1e-6)
            pairs += 1
    assert pairs >= 20


def _root_attr(path: Path, name: str) -> str:
    import h5py

    with h5py.File(path, "r") as f:
        return f.attrs[name]


def test_bad_objects_and_backgrounds_are_skipped_with_reasons(assets, tmp_path):
    copy = tmp_path / "assets"
    shutil.copytree(assets["root"], copy)
    objects = AssetManifest.load(copy / "objects.json")
    objects.path_of(objects.ids()[0]).write_text("this is not an OBJ file\n")  # the scan said it was fine
    backgrounds = AssetManifest.load(copy / "backgrounds.json")
    backgrounds.path_of(backgrounds.ids()[1]).write_bytes(b"\xff\xd8not really a jpeg")

    summary = render_dataset(tiny(assets, f"assets.objects={copy / 'objects.json'}",
                                  f"assets.backgrounds={copy / 'backgrounds.json'}",
                                  "assets.objects_per_category=2"), tmp_path / "out", progress=False)
    skipped: dict[str, int] = {}
    for t in summary.tasks:
        for reason, n in t.counts.get("skipped_items", {}).items():
            skipped[reason] = skipped.get(reason, 0) + n
    assert skipped.get("unreadable background", 0) > 0, skipped
    assert skipped.get("mesh failed to import", 0) + skipped.get("mesh has no faces", 0) > 0, skipped
    assert sum(skipped.values()) < 8 and summary.samples > 0  # the other trajectories were rendered
    assert "skipped trajectories: " in summary.describe()


def test_unusable_objects_in_the_manifest_are_counted(assets, tmp_path):
    copy = tmp_path / "assets"
    shutil.copytree(assets["root"], copy)
    objects = AssetManifest.load(copy / "objects.json")
    first, second = objects.ids()[:2]
    objects.assets[first]["metadata"]["broken"] = "textures missing (1 of 1)"
    objects.assets[second]["metadata"]["textured"] = False
    objects.save(copy / "objects.json")
    summary = render_dataset(tiny(assets, f"assets.objects={copy / 'objects.json'}"), tmp_path / "out",
                             progress=False)
    assert summary.tasks[0].counts["skipped_objects"] == {"textures missing": 1, "untextured": 1}
    assert "objects left out (see the object manifest): textures missing 1, untextured 1" in summary.describe()
    (shard, *_) = sorted((tmp_path / "out").glob("*.h5"))
    assert json.loads(_root_attr(shard, "stats"))["skipped_objects"] == {"textures missing": 1, "untextured": 1}


def test_a_folder_of_another_job_is_refused_not_mixed(assets, reference):
    before = sorted((p.name, p.stat().st_mtime_ns) for p in reference.iterdir())
    for change in ("seed=1", "farm.num_tasks=2"):
        with pytest.raises(BlurgenError, match="holds shards of another job"):
            render_dataset(tiny(assets, change), reference, progress=False)
    assert sorted((p.name, p.stat().st_mtime_ns) for p in reference.iterdir()) == before


def test_missing_inputs_fail_at_once_with_one_line(assets, tmp_path):
    with pytest.raises(BlurgenError, match="assets.objects: manifest file not found"):
        render_dataset(tiny(assets, f"assets.objects={tmp_path / 'none.json'}"), tmp_path / "o", progress=False)
    assert not (tmp_path / "o").exists()
    result = CliRunner().invoke(main, ["render", "--out", str(tmp_path / "o"), "--set",
                                       f"assets.objects={assets['objects']}", "--set",
                                       f"assets.backgrounds={assets['backgrounds']}",
                                       "--set", "assets.categories=[nonexistent]"])
    assert result.exit_code == 2
    assert result.output.strip().startswith("blurgen: error: category 'nonexistent' has no usable objects")
    assert len(result.output.strip().splitlines()) == 1
    bad = CliRunner().invoke(main, ["render", "--out", str(tmp_path / "o"), "--set", "camera.width=0"])
    assert bad.exit_code == 2 and "camera.width" in bad.output


def test_streaming_renders_each_trajectory_once(assets, tmp_path, monkeypatch):
    """Items are written while Blender renders the rest; that must never make the runner retry."""
    import blurgen.render.blender as runner

    launches = []
    real_run = runner._run
    monkeypatch.setattr(runner, "_run", lambda *a, **k: launches.append(1) or real_run(*a, **k))
    summary = render_dataset(tiny(assets, "farm.batch_size=4"), tmp_path / "out", progress=False)
    assert len(launches) == 1 and sum(t.sources for t in summary.tasks) == 4
    assert sum(t.timings["cycles"] for t in summary.tasks) > 0
