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


def video_config(videos, preset: str = "default", **sections) -> FlowpairsConfig:
    """A video-mode config over ``videos`` without a preview, ``sections`` overriding the preset."""
    return resolve_config(FlowpairsConfig, KIND, preset=preset, overrides={
        "mode": "video", "video": {"videos": str(videos)}, "output": {"preview": False}, **sections})


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
    assert summary.samples == 0 and summary.tasks[0].counts["dropped"] == {"large_flow": 3}


class RowSkew:
    """A stand-in estimator whose flow is (0.05 y, 0) at row y, whichever way it is asked: forward
    and backward flow then disagree by |f + b| = 0.1 y on row y, a controlled consistency error."""
    name = "row-skew"

    def __call__(self, first, last):
        h, w = first.shape[:2]
        flow = np.zeros((h, w, 2), np.float32)
        flow[..., 0] = 0.05 * np.arange(h, dtype=np.float32)[:, None]
        return flow


class Translation:
    """A stand-in estimator for the fixtures' pure translations: the integer shift d (|d| <= 25 px)
    with first(x) = last(x + d), found by exhaustive search, as a constant flow."""
    name = "translation"

    def __call__(self, first, last):
        h, w = first.shape[:2]
        a, b = first.astype(np.int32), last.astype(np.int32)
        errors = {}
        for dx in range(-25, 26):
            lo, hi = max(0, -dx), min(w, w - dx)
            errors[dx] = np.abs(a[:, lo:hi] - b[:, lo + dx:hi + dx]).mean()
        flow = np.zeros((h, w, 2), np.float32)
        flow[..., 0] = min(errors, key=errors.get)
        return flow


@pytest.fixture
def stand_in_estimators(monkeypatch):
    from blurgen.flow import estimators

    monkeypatch.setattr(estimators, "_REGISTRY", {**estimators._REGISTRY, "row-skew": RowSkew,
                                                  "translation": Translation})


@pytest.mark.parametrize("alpha, beta, rows", [
    # Row y passes where |f + b|^2 = 4 g^2 <= alpha (|f|^2 + |b|^2) + beta = 2 alpha g^2 + beta,
    # g = 0.05 y; by hand: g^2 <= beta / (4 - 2 alpha).
    (0.01, 0.5, 8),    # the defaults: g <= 0.354, rows 0..7
    (0.01, 0.1, 4),    # g <= 0.158, rows 0..3
    (0.01, 2.0, 15),   # g <= 0.709, rows 0..14
    (1.9, 0.5, 32),    # g <= 1.581, rows 0..31
])
def test_consistency_thresholds_come_from_the_config(sources, tmp_path, stand_in_estimators, alpha, beta, rows):
    g = 0.05 * np.arange(H)
    margin = 4 * g ** 2 - (2 * alpha * g ** 2 + beta)
    assert np.array_equal(np.flatnonzero(margin <= 0), np.arange(rows))  # the hand count above
    assert np.abs(margin).min() > 0.01  # no row within rounding of the bound
    config = video_config(sources[0] / "a.avi", flow={"estimator": "row-skew", "consistency_alpha": alpha,
                                                      "consistency_beta": beta, "min_valid": 0.0})
    flowpairs_dataset(config, tmp_path / "o", progress=False)
    samples = list(ShardDataset(tmp_path / "o"))
    assert len(samples) == 3
    # Both directions: the row's test passes and the end point x + g lies inside the image.
    x = np.arange(W)
    expected = (margin <= 0)[:, None] & (x[None, :] + g[:, None] <= W - 1)
    for s in samples:
        assert np.array_equal(s["flow_valid"][..., 0], expected)
        assert np.array_equal(s["flow_valid"][..., 1], expected)
        assert s["max_displacement"] == pytest.approx(0.05 * (rows - 1))


def test_consistency_off_marks_every_pixel_valid(sources, tmp_path, stand_in_estimators):
    config = video_config(sources[0] / "a.avi", flow={"estimator": "row-skew", "consistency": False})
    flowpairs_dataset(config, tmp_path / "o", progress=False)
    samples = list(ShardDataset(tmp_path / "o"))
    assert len(samples) == 3 and all(s["flow_valid"].all() for s in samples)
    assert all(s["max_displacement"] == pytest.approx(0.05 * (H - 1)) for s in samples)


@pytest.mark.parametrize("min_flow, kept, dropped", [
    (0.0, [3, 7], 0),
    (4.0, [7], 3),     # 3-frame windows move 2 px: below 4
    (6.0, [7], 3),     # 7-frame windows move exactly 6 px: not below 6, kept
    (6.5, [], 6),
])
def test_min_flow_drops_slow_windows(sources, tmp_path, stand_in_estimators, min_flow, kept, dropped):
    # a.avi moves 1 px left per frame; lengths 3 and 7 on anchors 3, 10, 17: 2 px and 6 px of flow
    config = video_config(sources[0] / "a.avi", windows={"lengths": [3, 7], "stride": 7, "min_flow": min_flow},
                          flow={"estimator": "translation"})
    summary = flowpairs_dataset(config, tmp_path / "o", progress=False)
    assert summary.tasks[0].counts.get("dropped", {}) == ({"small_flow": dropped} if dropped else {})
    samples = list(ShardDataset(tmp_path / "o")) if summary.samples else []
    assert sorted({int(s["frames"]) for s in samples}) == kept and len(samples) == 6 - dropped
    for s in samples:
        assert s["max_displacement"] == s["frames"] - 1
        assert (s["flow_fwd"][..., 0] == 1 - s["frames"]).all()


def test_retrieval_preset_draws_one_length_per_anchor_200_frames_apart(tmp_path, stand_in_estimators):
    # 600 frames whose content moves 1 px left every 10 frames (at most 20 px in 200 frames).
    steps = moving_frames(60, seed=5)
    frames = [steps[k // 10] for k in range(600)]
    write_video(tmp_path / "v" / "slow.avi", frames)
    config = video_config(tmp_path / "v", "retrieval", flow={"estimator": "translation"})
    summary = flowpairs_dataset(config, tmp_path / "o", progress=False)
    assert summary.samples == 3 and summary.tasks[0].counts.get("dropped", {}) == {}
    samples = sorted(ShardDataset(tmp_path / "o"), key=lambda s: int(s["window_start"]))
    # Windows of up to 200 frames centred on anchors 99, 299, 499 (by hand: the first anchor
    # leaves 99 frames before it and 100 after it; 699 would need frames up to 799).
    lengths = [int(s["frames"]) for s in samples]
    starts = [int(s["window_start"]) for s in samples]
    assert [start + (n - 1) // 2 for start, n in zip(starts, lengths)] == [99, 299, 499]
    assert all(1 <= n <= 200 for n in lengths) and len(set(lengths)) == 3  # drawn, not one fixed length
    for s, start, n in zip(samples, starts, lengths):
        window = frames[start:start + n]
        assert np.array_equal(s["image"], average_frames(window))
        assert np.array_equal(s["sharp"], window[(n - 1) // 2])
        assert np.array_equal(s["first"], window[0]) and np.array_equal(s["last"], window[-1])
        assert s["max_displacement"] == (start + n - 1) // 10 - start // 10
    # Another seed draws other lengths for the same anchors.
    other = video_config(tmp_path / "v", "retrieval", seed=1, flow={"estimator": "translation"})
    flowpairs_dataset(other, tmp_path / "o1", progress=False)
    redrawn = sorted(ShardDataset(tmp_path / "o1"), key=lambda s: int(s["window_start"]))
    assert [int(s["window_start"]) + (int(s["frames"]) - 1) // 2 for s in redrawn] == [99, 299, 499]
    assert [int(s["frames"]) for s in redrawn] != lengths


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
    from blurgen.flowpairs.interpolate import synth_from_scene
    from blurgen.flowpairs.synth import procedural_scene

    # Scenes aiming at 8 px stay far below the 100 px discard bound: every scene must give a
    # sample (a pipeline that dropped them all would otherwise pass unchecked).
    result = run("flowpairs", "synth", "--out", str(tmp_path / "o"), "--set", "synth.scenes=3",
                 "--set", "synth.size=[48,32]", "--set", "synth.scene_displacement=8", "--set", "seed=4")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("3 flow pairs from 3 sources"), result.output
    samples = {s["sample_id"]: s for s in ShardDataset(tmp_path / "o")}
    assert sorted(samples) == [f"flowpairs-s4-synth-{i:05d}" for i in range(3)]
    for i in range(3):
        made = synth_from_scene(procedural_scene(item_rng(4, i, STREAM_SCENE), 48, 32, 8.0))
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
    # Each scene is a sample or a counted large_displacement drop, and at least one is a sample.
    kept = int(result.output.split()[0])
    dropped = int(result.output.split("large_displacement ")[1].split()[0]) if "large_displacement" in result.output else 0
    assert kept >= 1 and kept + dropped == 2, result.output
    samples = list(ShardDataset(tmp_path / "o"))
    assert len(samples) == kept
    for s in samples:
        assert s["source"] in ("scene-00000", "scene-00001") and s["flow_source"] == "exact"
        assert s["image"].shape == (24, 32, 3) and s["max_displacement"] <= 100


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
    assert summary.samples == 0 and summary.tasks[0].counts["dropped"] == {"inconsistent_flow": 3}
    overrides["flow"]["min_valid"] = 0.0  # keep them, with what little is consistent marked valid
    summary = flowpairs_dataset(resolve_config(FlowpairsConfig, KIND, overrides=overrides), tmp_path / "o2",
                                progress=False)
    assert summary.samples == 3
    for s in ShardDataset(tmp_path / "o2"):
        assert s["flow_source"] == "scramble" and 0 < s["flow_valid"].mean() < 0.2
