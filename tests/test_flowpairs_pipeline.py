"""`blurgen flowpairs video|synth` end to end on tiny data: what the shards hold, that it is
deterministic and independent of the task count, the farm's skip rule, and export to .flo."""

from __future__ import annotations

import json
import math

import cv2
import h5py
import numpy as np
import pytest
from click.testing import CliRunner
from flowpairs_fixtures import H, W, moving_frames, write_folder, write_video

from blurgen.cli import main
from blurgen.color import linear_to_srgb_uint8
from blurgen.config import resolve_config
from blurgen.flow.flo import write_flo
from blurgen.flowpairs.averaging import average_frames
from blurgen.flowpairs.config import KIND, FlowpairsConfig
from blurgen.flowpairs.pipeline import flowpairs_dataset
from blurgen.flowpairs.plan import STREAM_SCENE
from blurgen.rng import item_rng
from blurgen.shards import ShardDataset, read_manifest

FIELDS = {  # blurgen.flowpairs/1: field -> (per-sample shape, dtype)
    "image": ((H, W, 3), "uint8"), "first": ((H, W, 3), "uint8"), "last": ((H, W, 3), "uint8"),
    "sharp": ((H, W, 3), "uint8"), "flow_fwd": ((H, W, 2), "float32"), "flow_bwd": ((H, W, 2), "float32"),
    "flow_valid": ((H, W, 2), "bool"), "sample_id": ((), "str"), "source": ((), "str"), "split": ((), "str"),
    "window_start": ((), "int32"), "frames": ((), "int16"), "max_displacement": ((), "float32"),
    "flow_source": ((), "str"), "fps": ((), "float32"),
}


def run(*args):
    return CliRunner().invoke(main, list(args))


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """Three sources of 21 frames whose content moves 1 px left per frame; b.avi cuts at frame 10."""
    root = tmp_path_factory.mktemp("videos")
    frames = {"a.avi": moving_frames(21, seed=1), "b.avi": moving_frames(21, seed=2, cut_at=10),
              "seq": moving_frames(21, seed=3)}
    write_video(root / "a.avi", frames["a.avi"])
    write_video(root / "b.avi", frames["b.avi"])
    write_folder(root / "seq", frames["seq"])
    return root, frames


@pytest.fixture(scope="module")
def video_out(sources, tmp_path_factory):
    out = tmp_path_factory.mktemp("out") / "fp"
    result = run("flowpairs", "video", "--videos", str(sources[0]), "--out", str(out))
    assert result.exit_code == 0, result.output
    return out, result.output


def test_video_summary_counts_what_was_dropped(video_out):
    out, output = video_out
    lines = output.splitlines()
    assert lines[0] == f"8 flow pairs from 3 videos in 1 task(s) -> {out}"
    assert "dropped: scene_cut 1" in lines  # b.avi's window 7..13 spans the cut between 9 and 10
    assert (out / "preview.png").is_file()
    assert run("shards", "verify", str(out)).exit_code == 0


def test_video_shards_hold_the_schema(video_out):
    out, _ = video_out
    ds = ShardDataset(out)
    assert len(ds) == 8
    with h5py.File(ds.paths[0], "r") as f:
        assert f.attrs["schema"] == "blurgen.flowpairs/1"
        for name, (shape, dtype) in FIELDS.items():
            assert f[name].shape[1:] == shape, name
            assert (h5py.check_string_dtype(f[name].dtype) is not None if dtype == "str"
                    else str(f[name].dtype) == dtype), name
        assert set(f) == set(FIELDS)
        assert json.loads(f.attrs["stats"])["dropped"] == {"scene_cut": 1}


def test_video_samples_are_the_frames_their_mean_and_their_flow(video_out, sources):
    out, _ = video_out
    _, frames = sources
    splits = {}
    for s in ShardDataset(out):
        src, start = s["source"], int(s["window_start"])
        window = frames[src][start:start + 7]
        assert s["frames"] == 7 and s["flow_source"] == "dis-medium"
        assert s["sample_id"] == f"flowpairs-s0-v{['a.avi', 'b.avi', 'seq'].index(src):05d}-{start:07d}-n7"
        assert np.array_equal(s["first"], window[0]) and np.array_equal(s["last"], window[6])
        assert np.array_equal(s["sharp"], window[3])
        assert np.array_equal(s["image"], average_frames(window))
        # content moves 1 px left per frame: 6 px over the window, forward (-6, 0)
        valid = s["flow_valid"]
        assert valid[..., 0].mean() > 0.7 and valid[..., 1].mean() > 0.7
        assert np.abs(np.median(s["flow_fwd"][valid[..., 0]], axis=0) - [-6, 0]).max() < 0.1
        assert np.abs(np.median(s["flow_bwd"][valid[..., 1]], axis=0) - [6, 0]).max() < 0.1
        assert 5.5 < s["max_displacement"] <= 100
        assert s["fps"] == 240.0 if src.endswith(".avi") else math.isnan(s["fps"])
        splits.setdefault(src, set()).add(s["split"])
    assert all(len(v) == 1 for v in splits.values())  # no source in two splits
    assert sorted(v.pop() for v in splits.values()) == ["test", "train", "val"]


def test_rerun_skips_and_other_jobs_are_refused(video_out, sources):
    out, _ = video_out
    before = read_manifest(out)
    result = run("flowpairs", "video", "--videos", str(sources[0]), "--out", str(out))
    assert result.exit_code == 0 and "1 task(s) already complete, skipped" in result.output
    assert read_manifest(out) == before
    result = run("flowpairs", "video", "--videos", str(sources[0]), "--out", str(out), "--set", "seed=1")
    assert result.exit_code == 2 and "holds shards of another job" in result.output


def test_video_is_deterministic_and_independent_of_the_task_count(video_out, sources, tmp_path):
    out, _ = video_out
    config = resolve_config(FlowpairsConfig, KIND, overrides={"mode": "video", "video": {"videos": str(sources[0])}})
    flowpairs_dataset(config, tmp_path / "again", progress=False)
    hashes = lambda d: {e["file"]: e["sha256"] for e in read_manifest(d)["shards"]}  # noqa: E731
    assert hashes(tmp_path / "again") == hashes(out)  # byte-identical shards
    # three tasks (each task 0 of 1 or 1 of 3 writes other files) give the same samples
    flowpairs_dataset(config, tmp_path / "three", num_tasks=3, progress=False)
    ours = {s["sample_id"]: s for s in ShardDataset(out)}
    theirs = {s["sample_id"]: s for s in ShardDataset(tmp_path / "three")}
    assert sorted(ours) == sorted(theirs)
    for key, s in ours.items():
        for field in ("image", "first", "last", "sharp", "flow_fwd", "flow_bwd", "flow_valid", "max_displacement"):
            assert np.array_equal(s[field], theirs[key][field]), (key, field)


def test_windows_of_several_lengths_and_a_step(sources, tmp_path):
    root, frames = sources
    config = resolve_config(FlowpairsConfig, KIND, overrides={
        "mode": "video", "video": {"videos": str(root / "a.avi"), "target_fps": 120.0},
        "windows": {"lengths": [1, 3], "stride": 4}, "output": {"preview": False}})
    summary = flowpairs_dataset(config, tmp_path / "o", progress=False)
    samples = list(ShardDataset(tmp_path / "o"))
    # 11 kept frames (0, 2, .., 20); anchors 1, 5, 9: windows (0,3) (1,1) (4,3) (5,1) (8,3) (9,1)
    assert summary.samples == 6
    got = sorted((int(s["window_start"]), int(s["frames"])) for s in samples)
    assert got == [(0, 3), (2, 1), (8, 3), (10, 1), (16, 3), (18, 1)]  # raw frame numbers
    for s in samples:
        start, n = int(s["window_start"]), int(s["frames"])
        kept = frames["a.avi"][start:start + 2 * n:2]
        assert np.array_equal(s["image"], average_frames(kept))
        assert s["fps"] == 120.0
        if n == 1:  # one frame: no blur, and no motion
            assert np.array_equal(s["image"], s["sharp"]) and np.abs(s["flow_fwd"]).max() < 0.05


def test_flow_bound_drops_windows(sources, tmp_path):
    config = resolve_config(FlowpairsConfig, KIND, overrides={
        "mode": "video", "video": {"videos": str(sources[0] / "a.avi")}, "windows": {"max_flow": 3.0},
        "output": {"preview": False}})
    summary = flowpairs_dataset(config, tmp_path / "o", progress=False)
    assert summary.samples == 0 and summary.tasks[0].dropped == {"large_flow": 3}


def test_export_flo_of_flowpairs_shards(video_out, tmp_path):
    out, _ = video_out
    result = run("shards", "export-flo", str(out), "--out", str(tmp_path / "flo"))
    assert result.exit_code == 0, result.output
    samples = {s["sample_id"]: s for s in ShardDataset(out, fields=["sample_id", "flow_fwd"])}
    files = sorted((tmp_path / "flo").iterdir())
    assert [f.name for f in files] == sorted(f"{sid}.flo" for sid in samples)
    for f in files:
        assert np.array_equal(cv2.readOpticalFlow(str(f)), samples[f.stem]["flow_fwd"])


# ----------------------------------------------------------------------------- synth


def test_synth_procedural_scenes_match_the_synth_module(tmp_path):
    from blurgen.flowpairs.interpolate import Discard, synth_from_scene
    from blurgen.flowpairs.synth import procedural_scene

    result = run("flowpairs", "synth", "--out", str(tmp_path / "o"), "--set", "synth.scenes=3",
                 "--set", "synth.size=[48,32]", "--set", "synth.scene_displacement=8", "--set", "seed=4")
    assert result.exit_code == 0, result.output
    samples = {s["sample_id"]: s for s in ShardDataset(tmp_path / "o")}
    for i in range(3):
        try:
            made = synth_from_scene(procedural_scene(item_rng(4, i, STREAM_SCENE), 48, 32, 8.0))
        except Discard:
            assert f"flowpairs-s4-synth-{i:05d}" not in samples
            continue
        s = samples[f"flowpairs-s4-synth-{i:05d}"]
        assert s["source"] == f"scene-{i:05d}" and s["flow_source"] == "exact" and s["window_start"] == 0
        assert np.array_equal(s["image"], linear_to_srgb_uint8(made.blurred))
        assert np.array_equal(s["sharp"], linear_to_srgb_uint8(made.sharp))
        assert np.array_equal(s["flow_fwd"], made.flow_fwd) and np.array_equal(s["flow_valid"], made.flow_valid)
        assert s["frames"] == made.frames == max(math.ceil(made.max_displacement), 5)
        assert math.isnan(s["fps"])


def test_synth_user_pairs_keep_discard_and_name_bad_pairs(tmp_path):
    pairs = tmp_path / "pairs"
    pairs.mkdir()
    base = moving_frames(1, w=80)[0]
    first, last = base[:, 10:10 + W], base[:, 7:7 + W]  # content moves 3 px right: first(x) = last(x + 3)
    for name, flow_u in (("slow", 3.0), ("fast", 150.0)):
        cv2.imwrite(str(pairs / f"{name}_1.png"), cv2.cvtColor(first, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(pairs / f"{name}_2.png"), cv2.cvtColor(last, cv2.COLOR_RGB2BGR))
        flow = np.dstack([np.full((H, W), flow_u, np.float32), np.zeros((H, W), np.float32)])
        write_flo(pairs / f"{name}_fwd.flo", flow)
    write_flo(pairs / "lonely_fwd.flo", np.zeros((H, W, 2), np.float32))  # its images are missing
    result = run("flowpairs", "synth", "--pairs", str(pairs), "--out", str(tmp_path / "o"))
    assert result.exit_code == 0, result.output
    assert "dropped: bad_pair 1, large_displacement 1" in result.output
    assert "pair lonely: no first image" in result.output
    (s,) = list(ShardDataset(tmp_path / "o"))
    assert s["source"] == "slow" and s["frames"] == 5 and s["max_displacement"] == 3.0
    assert np.array_equal(s["first"], first) and np.array_equal(s["last"], last)
    assert s["flow_source"] == "exact" and (s["flow_fwd"][..., 0] == 3.0).all()


def test_synth_default_runs_on_the_built_in_scenes(tmp_path):
    """The CLI default (no options but --out) uses the built-in scenes; here with fewer of them."""
    result = run("flowpairs", "synth", "--print-config")
    assert "mode: synth" in result.output and "pairs: null" in result.output
    result = run("flowpairs", "synth", "--out", str(tmp_path / "o"), "--set", "synth.scenes=2",
                 "--set", "synth.size=[32,24]")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("2 flow pairs from 2 sources") or "dropped: large_displacement" in result.output


def test_a_registered_estimator_is_used_and_failures_are_dropped(sources, tmp_path, monkeypatch):
    from blurgen.flow import estimators

    class Scramble:
        """Flow that does not agree with itself both ways: what a failed estimate looks like."""
        name = "scramble"

        def __call__(self, first, last):
            rng = np.random.default_rng(int(first.sum()) % 1000)
            return (rng.standard_normal((*first.shape[:2], 2)) * 20).astype(np.float32)

    monkeypatch.setattr(estimators, "_REGISTRY", {**estimators._REGISTRY, "scramble": Scramble})
    overrides = {"mode": "video", "video": {"videos": str(sources[0] / "a.avi")},
                 "flow": {"estimator": "scramble"}, "windows": {"max_flow": None}, "output": {"preview": False}}
    config = resolve_config(FlowpairsConfig, KIND, overrides=overrides)
    summary = flowpairs_dataset(config, tmp_path / "o", progress=False)
    assert summary.samples == 0 and summary.tasks[0].dropped == {"inconsistent_flow": 3}
    overrides["flow"]["min_valid"] = 0.0  # keep them, with what little is consistent marked valid
    summary = flowpairs_dataset(resolve_config(FlowpairsConfig, KIND, overrides=overrides), tmp_path / "o2",
                                progress=False)
    assert summary.samples == 3
    for s in ShardDataset(tmp_path / "o2"):
        assert s["flow_source"] == "scramble" and 0 < s["flow_valid"].mean() < 0.2
