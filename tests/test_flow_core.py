"""The flow core: EPE metrics, .flo files (checked against OpenCV's own reader and writer), the
DIS estimator on a known translation, and `blurgen shards export-flo`."""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest
import shard_fixtures  # noqa: F401 - declares the blurgen.test/1 schema these shards use
from click.testing import CliRunner

from blurgen.cli import main
from blurgen.errors import BlurgenError
from blurgen.flow.estimators import DisFlow, estimator_names, make_estimator, register
from blurgen.flow.flo import UNKNOWN_FLOW, decode_flo, encode_flo, flo_name, read_flo, write_flo
from blurgen.flow.metrics import epe, epe_map, min_direction_epe
from blurgen.shards import ShardWriter


def const(h, w, u, v):
    return np.dstack([np.full((h, w), u, np.float32), np.full((h, w), v, np.float32)])


# ----------------------------------------------------------------------------- metrics


def test_epe_is_the_mean_vector_distance():
    gt = const(2, 2, 0.0, 0.0)
    pred = const(2, 2, 0.0, 0.0)
    pred[0, 0] = (3.0, 4.0)   # error 5
    pred[1, 1] = (-1.0, 0.0)  # error 1
    assert epe_map(pred, gt).tolist() == [[5.0, 0.0], [0.0, 1.0]]
    assert epe(pred, gt) == pytest.approx(1.5)
    valid = np.array([[False, True], [True, True]])
    assert epe(pred, gt, valid) == pytest.approx(1.0 / 3.0)


def test_epe_skips_non_finite_truth_and_is_nan_without_pixels():
    gt = const(1, 2, 1.0, 0.0)
    gt[0, 1] = (np.nan, 0.0)
    assert epe(const(1, 2, 1.0, 2.0), gt) == pytest.approx(2.0)
    assert math.isnan(epe(const(1, 2, 0, 0), gt, np.zeros((1, 2), bool)))


def test_epe_refuses_mismatched_shapes():
    with pytest.raises(ValueError, match="must match"):
        epe(const(2, 2, 0, 0), const(2, 3, 0, 0))


def test_min_direction_epe_takes_the_better_direction_per_image():
    fwd, bwd = const(3, 3, 4.0, 0.0), const(3, 3, -4.0, 0.0)
    assert min_direction_epe(const(3, 3, -3.0, 0.0), fwd, bwd) == pytest.approx(1.0)  # backward wins
    assert min_direction_epe(const(3, 3, 3.5, 0.0), fwd, bwd) == pytest.approx(0.5)   # forward wins
    # validity per direction (channel 0 forward, 1 backward): an invalid pixel does not count
    pred = const(3, 3, -4.0, 0.0)
    pred[0, 0] = (100.0, 0.0)
    valid = np.ones((3, 3, 2), bool)
    assert min_direction_epe(pred, fwd, bwd, valid) == pytest.approx(104.0 / 9.0)
    valid[0, 0, 1] = False
    assert min_direction_epe(pred, fwd, bwd, valid) == pytest.approx(0.0)
    # a direction without valid pixels is ignored; neither: NaN
    valid[..., 1] = False
    assert min_direction_epe(pred, fwd, bwd, valid) == pytest.approx(np.mean(
        np.hypot(pred[..., 0] - 4.0, pred[..., 1])))
    assert math.isnan(min_direction_epe(pred, fwd, bwd, np.zeros((3, 3), bool)))


# ----------------------------------------------------------------------------- .flo


def random_flow(h=5, w=7, seed=0):
    return (np.random.default_rng(seed).standard_normal((h, w, 2)) * 20).astype(np.float32)


def test_flo_layout_is_middlebury(tmp_path):
    flow = random_flow()
    path = write_flo(tmp_path / "a.flo", flow)
    data = path.read_bytes()
    assert data[:4] == b"PIEH"
    assert np.frombuffer(data[:4], "<f4")[0] == 202021.25
    assert np.frombuffer(data[4:12], "<i4").tolist() == [7, 5]  # width, then height
    assert len(data) == 12 + 5 * 7 * 2 * 4
    assert np.frombuffer(data[12:20], "<f4").tolist() == flow[0, 0].tolist()  # u, v of pixel (0, 0)


def test_flo_round_trips_through_opencv(tmp_path):
    flow = random_flow(9, 13, 1)
    write_flo(tmp_path / "ours.flo", flow)
    theirs = cv2.readOpticalFlow(str(tmp_path / "ours.flo"))
    assert theirs.dtype == np.float32 and np.array_equal(theirs, flow)
    assert cv2.writeOpticalFlow(str(tmp_path / "cv.flo"), flow)
    assert np.array_equal(read_flo(tmp_path / "cv.flo"), flow)
    assert (tmp_path / "cv.flo").read_bytes() == (tmp_path / "ours.flo").read_bytes()


def test_flo_marks_invalid_and_non_finite_vectors_unknown():
    flow = random_flow(2, 2)
    flow[0, 0, 1] = np.nan
    valid = np.array([[True, False], [True, True]])
    back = decode_flo(encode_flo(flow, valid))
    assert (back[0, 0] == UNKNOWN_FLOW).all() and (back[0, 1] == UNKNOWN_FLOW).all()
    assert np.array_equal(back[1], flow[1])


@pytest.mark.parametrize("data, message", [
    (b"PIE", "too short"),
    (b"XXXX" + np.array([2, 2], "<i4").tobytes() + bytes(32), "not a .flo file"),
    (np.array([202021.25], "<f4").tobytes() + np.array([2, 2], "<i4").tobytes() + bytes(31), "truncated"),
    (np.array([202021.25], "<f4").tobytes() + np.array([0, 2], "<i4").tobytes(), "impossible size"),
])
def test_bad_flo_files_give_one_line(data, message):
    with pytest.raises(BlurgenError, match=message):
        decode_flo(data, "x.flo")


def test_flo_names_follow_the_sample_id():
    assert flo_name("flowpairs-s0-v00001-0000007-n7", "flow_fwd", both=False) == "flowpairs-s0-v00001-0000007-n7.flo"
    assert flo_name("a/b c", "flow_bwd", both=True) == "a_b_c_bwd.flo"


# ----------------------------------------------------------------------------- estimators


def textured(h, w, seed=0):
    """A smooth random texture with detail at several scales (what DIS can lock on to)."""
    rng = np.random.default_rng(seed)
    image = np.zeros((h, w), np.float32)
    for sigma, weight in ((1.5, 0.3), (4.0, 0.4), (10.0, 0.3)):
        layer = cv2.GaussianBlur(rng.standard_normal((h, w)).astype(np.float32), (0, 0), sigma)
        image += weight * layer / layer.std()
    return np.clip(128 + 40 * image, 0, 255).astype(np.uint8)


def shifted(image, dx, dy):
    """``image`` moved by (dx, dy): result(x) = image(x - d), so image(x) = result(x + d)."""
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(image, m, image.shape[1::-1], flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)


@pytest.mark.parametrize("dx, dy", [(3.0, -2.0), (-5.5, 1.25)])
def test_dis_recovers_a_known_translation(dx, dy):
    first = textured(120, 160)
    last = shifted(first, dx, dy)
    estimator = make_estimator("dis-medium")
    assert estimator.name == "dis-medium"
    rgb = np.dstack([first] * 3)  # RGB input is converted to gray
    flow = estimator(rgb, np.dstack([last] * 3))
    assert flow.shape == (120, 160, 2) and flow.dtype == np.float32
    interior = np.zeros((120, 160), bool)
    interior[16:-16, 16:-16] = True  # away from the reflected border
    assert epe(flow, const(120, 160, dx, dy), interior) < 0.1
    backward = estimator(last, first)
    assert epe(backward, const(120, 160, -dx, -dy), interior) < 0.1


def test_estimator_registry_and_errors(monkeypatch):
    from blurgen.flow import estimators

    monkeypatch.setattr(estimators, "_REGISTRY", dict(estimators._REGISTRY))  # registering stays local
    assert {"dis-ultrafast", "dis-fast", "dis-medium"} <= set(estimator_names())
    with pytest.raises(BlurgenError, match="unknown flow estimator 'raft'.*dis-medium"):
        make_estimator("raft")

    class Zero:
        name = "zero"

        def __call__(self, first, last):
            return np.zeros((*first.shape[:2], 2), np.float32)

    register("zero-test", Zero)
    made = make_estimator("zero-test")
    assert isinstance(made, Zero) and made is not make_estimator("zero-test")  # a new one per call
    assert "zero-test" in estimator_names()
    with pytest.raises(ValueError, match="differ in size"):
        DisFlow()(np.zeros((8, 8), np.uint8), np.zeros((8, 9), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        DisFlow()(np.zeros((8, 8), np.float32), np.zeros((8, 8), np.float32))


def test_dis_estimator_pickles():
    import pickle

    original = DisFlow("fast")
    clone = pickle.loads(pickle.dumps(original))
    assert clone.name == "dis-fast"
    a = textured(48, 64)
    b = shifted(a, 2.0, 1.0)
    assert np.array_equal(clone(a, b), original(a, b))  # the same preset, not just any estimator


# ----------------------------------------------------------------------------- export-flo


def flow_shard(folder, n=3, valid=True, ids=True):
    with ShardWriter(folder, schema="blurgen.test/1", split="train", task_index=0, num_tasks=1, seed=0,
                     config_json=json.dumps({})) as writer:
        for i in range(n):
            sample = {"image": np.zeros((6, 8, 3), np.uint8), "flow_fwd": const(6, 8, i, 1.0),
                      "flow_bwd": const(6, 8, -i, -1.0)}
            if valid:
                v = np.ones((6, 8, 2), bool)
                v[0, 0] = False
                sample["flow_valid"] = v
            if ids:
                sample["sample_id"] = f"pair-{i}"
            writer.add(sample)


def test_export_flo_writes_one_file_per_sample_that_opencv_reads(tmp_path):
    flow_shard(tmp_path / "s")
    result = CliRunner().invoke(main, ["shards", "export-flo", str(tmp_path / "s"), "--out", str(tmp_path / "o"),
                                       "--field", "both", "--limit", "2"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == [
        "pair-0_bwd.flo", "pair-0_fwd.flo", "pair-1_bwd.flo", "pair-1_fwd.flo"]
    fwd = cv2.readOpticalFlow(str(tmp_path / "o" / "pair-1_fwd.flo"))
    assert np.array_equal(fwd, const(6, 8, 1.0, 1.0))  # kept as is without --mark-invalid
    bwd = cv2.readOpticalFlow(str(tmp_path / "o" / "pair-1_bwd.flo"))
    assert np.array_equal(bwd, const(6, 8, -1.0, -1.0))


def test_export_flo_marks_invalid_and_names_samples_without_ids(tmp_path):
    flow_shard(tmp_path / "s", n=2, ids=False)
    result = CliRunner().invoke(main, ["shards", "export-flo", str(tmp_path / "s"), "--out", str(tmp_path / "o"),
                                       "--mark-invalid"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["sample-0000000.flo", "sample-0000001.flo"]
    flow = read_flo(tmp_path / "o" / "sample-0000001.flo")
    assert (flow[0, 0] == UNKNOWN_FLOW).all() and (flow[1:, :] == const(5, 8, 1.0, 1.0)).all()


def test_export_flo_of_shards_without_flow_is_one_line(tmp_path):
    with ShardWriter(tmp_path / "s", schema="blurgen.test/1", split="train", task_index=0, num_tasks=1,
                     seed=0, config_json="{}") as writer:
        writer.add({"image": np.zeros((6, 8, 3), np.uint8)})
    result = CliRunner().invoke(main, ["shards", "export-flo", str(tmp_path / "s"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"blurgen: error: {tmp_path / 's'}: the shards have no 'flow_fwd' field (flow fields: none)"]
