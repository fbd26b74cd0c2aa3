"""The flow task's parts against independent oracles: the multi-scale loss on hand values, the
metrics on hand-made flows (plain Python loops), the cost volume and warping against brute force
and OpenCV, the network's pieces (identity STN, bilinear flow upsampling), the pad/crop round
trip, and the data path's crop and mirror."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from blurgen.config import resolve_config
from blurgen.errors import BlurgenError
from blurgen.flow.warp import warp_backward
from blurgen.train.flow import center_crop, flow_split_files, flow_targets, network_input
from blurgen.train.flow_config import KIND, FlowConfig, check_flow_config
from blurgen.train.flow_eval import score_image, summarise
from blurgen.train.flow_losses import downsample_flow, flow_loss, multiscale_epe
from blurgen.train.flow_model import BlurFlowNet, SpatialTransformer, backward_warp, cost_volume, flow_upsampler
from blurgen.train.padding import crop_to, pad_to_multiple
from blurgen.train.data import DeviceAugment, augment_generator, validation_files


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny networks run fastest on one thread; on a busy shared machine two threads waiting for each
    other were 10-30x slower. The results do not depend on it (tests compare runs made alike)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny(*sets: str) -> FlowConfig:
    return resolve_config(FlowConfig, KIND, preset="demo", overrides=[
        "model.levels=2", "model.widths=[4, 6]", "model.dense_widths=[6, 4]", "model.search_range=1",
        "model.context_widths=[4, 4, 4, 4, 4, 4]", "model.stn_width=4", "loss.level_weights=[0.005, 0.01]", *sets])


def uniform(u: float, v: float, h: int = 4, w: int = 4) -> torch.Tensor:
    return torch.tensor([float(u), float(v)]).view(1, 2, 1, 1).expand(1, 2, h, w).clone()


# ------------------------------------------------------------------ the loss (hand values)

def test_multiscale_epe_on_hand_values():
    # a uniform flow of (4, 0) input px; zero predictions at 1/2 (2x2) and 1/4 (1x1): the truth is
    # (2, 0) px of level 1 and (1, 0) px of level 2, so the loss is 0.005 * 2 + 0.01 * 1
    valid = torch.ones(1, 4, 4, dtype=torch.bool)
    preds = [torch.zeros(1, 2, 2, 2), torch.zeros(1, 2, 1, 1)]
    total, levels = multiscale_epe(preds, uniform(4, 0), valid, (0.005, 0.01))
    assert [float(e) for e in levels] == pytest.approx([2.0, 1.0])
    assert float(total) == pytest.approx(0.02)
    # a prediction of (1, 1) at level 1 against (2, 0): |(-1, 1)| = sqrt 2 at every pixel
    _, levels = multiscale_epe([torch.ones(1, 2, 2, 2), torch.zeros(1, 2, 1, 1)], uniform(4, 0), valid, (1, 1))
    assert float(levels[0]) == pytest.approx(math.sqrt(2))


def test_invalid_pixels_neither_count_nor_leak_into_coarse_levels():
    flow = uniform(4, 0)
    flow[:, :, 2:, :] = 1000.0  # garbage where invalid, and a NaN: neither may reach the loss
    flow[0, 0, 3, 3] = float("nan")
    valid = torch.zeros(1, 4, 4, dtype=torch.bool)
    valid[:, :2, :] = True  # the top half: level-1 blocks (0, 0), (0, 1) valid; level 2: exactly half
    down, ok = downsample_flow(flow, valid, 2)
    assert ok.tolist() == [[[True, True], [False, False]]]
    assert down[0, :, 0, 0].tolist() == [2.0, 0.0]
    down4, ok4 = downsample_flow(flow, valid, 4)
    assert ok4.tolist() == [[[True]]] and down4[0, :, 0, 0].tolist() == [1.0, 0.0]  # 8 of 16 valid: kept
    preds = [torch.zeros(1, 2, 2, 2), torch.zeros(1, 2, 1, 1)]
    total, levels = multiscale_epe(preds, flow, valid, (0.005, 0.01))
    assert [float(e) for e in levels] == pytest.approx([2.0, 1.0]) and math.isfinite(float(total))
    valid[:, :1, :1] = False  # now under half of the 4x4 block: level 2 has no valid pixel, EPE 0
    _, levels = multiscale_epe(preds, flow, valid, (0.005, 0.01))
    assert float(levels[1]) == 0.0


def test_block_means_match_a_numpy_oracle():
    rng = np.random.default_rng(3)
    flow = rng.normal(size=(2, 2, 8, 12)).astype(np.float32)
    valid = rng.random((2, 8, 12)) < 0.7
    down, ok = downsample_flow(torch.from_numpy(flow), torch.from_numpy(valid), 4)
    for n in range(2):
        for by in range(2):
            for bx in range(3):
                block = valid[n, 4 * by:4 * by + 4, 4 * bx:4 * bx + 4]
                assert bool(ok[n, by, bx]) == (block.sum() >= 8)
                if block.any():
                    for c in range(2):
                        values = flow[n, c, 4 * by:4 * by + 4, 4 * bx:4 * bx + 4][block]
                        assert float(down[n, c, by, bx]) == pytest.approx(values.mean() / 4, abs=1e-5)


def test_min_direction_loss_takes_the_closer_direction_per_sample():
    valid = torch.ones(2, 2, 4, 4, dtype=torch.bool)
    fwd = torch.cat([uniform(4, 0), uniform(4, 0)])
    bwd = -fwd
    # sample 0 predicts the backward flow exactly, sample 1 the forward one
    preds = [torch.cat([uniform(-2, 0, 2, 2), uniform(2, 0, 2, 2)]), torch.cat([uniform(-1, 0, 1, 1),
                                                                             uniform(1, 0, 1, 1)])]
    loss_min, _ = flow_loss(preds, fwd, bwd, valid, (0.005, 0.01), "min")
    assert float(loss_min) == pytest.approx(0.0)
    loss_fwd, parts = flow_loss(preds, fwd, bwd, valid, (0.005, 0.01), "forward")
    # sample 0 is 4 px (level 1) and 2 px (level 2) off the forward flow, sample 1 exact
    assert float(loss_fwd) == pytest.approx((0.005 * 4 + 0.01 * 2) / 2)
    assert parts == pytest.approx({"epe_level_1": 2.0, "epe_level_2": 1.0})


# ------------------------------------------------------------------ metrics (plain-loop oracle)

def loop_scores(pred, gt, valid, threshold):
    errors = [math.hypot(pred[y][x][0] - gt[y][x][0], pred[y][x][1] - gt[y][x][1])
              for y in range(len(gt)) for x in range(len(gt[0])) if valid[y][x]]
    return sum(errors) / len(errors), sum(e < threshold for e in errors) / len(errors)


def test_image_scores_match_a_plain_loop():
    rng = np.random.default_rng(0)
    pred = rng.normal(0, 3, (5, 6, 2)).astype(np.float32)
    fwd = rng.normal(0, 3, (5, 6, 2)).astype(np.float32)
    bwd = pred + rng.normal(0, 0.8, (5, 6, 2)).astype(np.float32)  # the prediction is near the backward flow
    valid = rng.random((5, 6, 2)) < 0.8
    s = score_image(pred, fwd, bwd, valid)
    epe_f, _ = loop_scores(pred.tolist(), fwd.tolist(), valid[..., 0].tolist(), 1)
    epe_b, _ = loop_scores(pred.tolist(), bwd.tolist(), valid[..., 1].tolist(), 1)
    assert s["epe_fwd"] == pytest.approx(epe_f) and s["epe_bwd"] == pytest.approx(epe_b)
    assert s["direction"] == "backward" and s["epe_min"] == pytest.approx(min(epe_f, epe_b))
    for t in (1, 3, 5):
        assert s[f"acc_{t}"] == pytest.approx(loop_scores(pred.tolist(), bwd.tolist(), valid[..., 1].tolist(), t)[1])


def test_scores_on_hand_made_flows_and_undefined_images():
    gt = np.zeros((1, 3, 2), np.float32)
    pred = np.array([[[0.5, 0], [3, 4], [0, 2]]], np.float32)  # errors 0.5, 5, 2
    s = score_image(pred, gt, gt + 100, None)
    assert s["epe_fwd"] == pytest.approx(2.5) and s["direction"] == "forward"
    assert (s["acc_1"], s["acc_3"], s["acc_5"]) == pytest.approx((1 / 3, 2 / 3, 2 / 3))  # below, not at, 5 px
    nothing = score_image(pred, gt, gt, np.zeros((1, 3, 2), bool))
    assert math.isnan(nothing["epe_min"]) and math.isnan(nothing["acc_3"])
    summary = summarise([s, nothing])
    assert summary["epe_min"] == pytest.approx(2.5) and summary["images"] == 2  # undefined ones left out
    assert summary["backward_share"] == 0.0


# ------------------------------------------------------------------ the network's pieces

def test_cost_volume_matches_brute_force():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(2, 1, 3, 4, 5)).astype(np.float32)
    got = cost_volume(torch.from_numpy(a), torch.from_numpy(b), 1).numpy()
    assert got.shape == (1, 9, 4, 5)
    k = 0
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            for y in range(4):
                for x in range(5):
                    inside = 0 <= y + dy < 4 and 0 <= x + dx < 5
                    want = float(np.mean(a[0, :, y, x] * b[0, :, y + dy, x + dx])) if inside else 0.0
                    assert got[0, k, y, x] == pytest.approx(want, abs=1e-6)
            k += 1


def test_feature_warping_agrees_with_opencv_remap():
    rng = np.random.default_rng(2)
    image = rng.random((9, 11, 3)).astype(np.float32)
    flow = rng.uniform(-2, 2, (9, 11, 2)).astype(np.float32)
    want = warp_backward(image, flow, border="constant", fill=0.0)
    got = backward_warp(torch.from_numpy(image).permute(2, 0, 1)[None],
                        torch.from_numpy(flow).permute(2, 0, 1)[None])[0].permute(1, 2, 0).numpy()
    # remap's weights are fixed point (1/32 px): agreement to that resolution, everywhere
    assert np.abs(got - want).max() < 0.05 and np.abs(got - want).mean() < 0.01


def test_flow_upsampling_starts_as_bilinear_doubling_and_stn_as_identity():
    flow = torch.randn(1, 2, 5, 6)
    want = 2 * torch.nn.functional.interpolate(flow, scale_factor=2, mode="bilinear", align_corners=False)
    got = flow_upsampler()(flow)
    assert torch.allclose(got[..., 1:-1, 1:-1], want[..., 1:-1, 1:-1], atol=1e-5)
    x = torch.randn(2, 3, 6, 8)
    assert torch.allclose(SpatialTransformer(3, 4)(x), x, atol=1e-5)


def test_pad_and_crop_round_trip_and_the_network_accepts_any_size():
    x = torch.randn(1, 3, 21, 37)
    padded = pad_to_multiple(x, 8)
    assert padded.shape[-2:] == (24, 40)
    assert torch.equal(crop_to(padded, (21, 37)), x)  # the original is untouched in the corner
    assert torch.equal(padded[..., 21:, :37], x[..., 20:21, :].expand(1, 3, 3, 37))  # edge repeated
    labels = pad_to_multiple(torch.ones(1, 2, 21, 37), 8, mode="constant")
    assert labels[..., 21:, :].abs().sum() == 0 and labels[..., :, 37:].abs().sum() == 0
    assert pad_to_multiple(padded, 8) is padded  # a multiple already: unchanged
    config = tiny("model.levels=3", "model.widths=[4, 4, 6]", "loss.level_weights=[1, 1, 1]")
    net = BlurFlowNet(config)
    out = net(padded)
    assert [tuple(f.shape[-2:]) for f in out.levels] == [(12, 20), (6, 10), (3, 5)]
    assert crop_to(out.flow, (21, 37)).shape == (1, 2, 21, 37)
    with pytest.raises(ValueError, match="not a multiple of 8"):
        net(x)


# ------------------------------------------------------------------ the data path and config

def test_crop_and_mirror_of_images_and_flows():
    images = torch.arange(2 * 6 * 10 * 3, dtype=torch.int64).remainder(256).to(torch.uint8).view(2, 6, 10, 3)
    assert torch.equal(center_crop(images, (4, 2)), images[:, 2:4, 3:7])
    batch = {"image": images, "flow_fwd": torch.tensor([3.0, 1.0]).expand(2, 6, 10, 2).clone(),
             "flow_bwd": torch.tensor([-3.0, -1.0]).expand(2, 6, 10, 2).clone(),
             "flow_valid": torch.zeros(2, 6, 10, 2, dtype=torch.bool)}
    batch["flow_valid"][:, :, 0, 0] = True  # the left column only, forward channel
    config = tiny("augment.hflip=1.0")
    a = config.augment
    x, flipped, size = network_input(images, config, 4, augment=DeviceAugment(a.hflip), generator=augment_generator(
        0, 0, 0, "cpu"))
    assert flipped.all() and size == (6, 10) and x.shape == (2, 3, 8, 12)
    fwd, bwd, valid = flow_targets(batch, config, 4, flipped)
    # mirrored: a uniform (3, 1) becomes (-3, 1); the valid left column becomes the right one
    assert torch.equal(fwd[:, :, :6, :10], torch.tensor([-3.0, 1.0]).view(1, 2, 1, 1).expand(2, 2, 6, 10))
    assert torch.equal(bwd[:, :, :6, :10], torch.tensor([3.0, -1.0]).view(1, 2, 1, 1).expand(2, 2, 6, 10))
    assert valid[:, 0, :6, 9].all() and valid[:, 0].sum() == 2 * 6 and not valid[:, 1].any()
    assert fwd[:, :, 6:, :].abs().sum() == 0 and not valid[:, :, 6:, :].any()  # padding: zero and invalid
    with pytest.raises(BlurgenError, match="larger than the stored images"):
        center_crop(images, (12, 4))


def test_per_level_lists_must_match_the_levels():
    with pytest.raises(BlurgenError, match="model.widths has 2 entries for model.levels=3"):
        check_flow_config(tiny("model.levels=3"))
    with pytest.raises(BlurgenError, match="loss.level_weights has 2 entries"):
        check_flow_config(tiny("model.levels=3", "model.widths=[4, 4, 4]"))
    with pytest.raises(BlurgenError, match="context_widths needs 6 entries"):
        check_flow_config(tiny("model.context_widths=[4, 4, 4, 4, 4, 4, 4]"))
    for preset in ("demo", "paper"):
        check_flow_config(resolve_config(FlowConfig, KIND, preset=preset))


# ------------------------------------------------------------------ the validation split

FLOWPAIRS_GOLDEN = Path(__file__).parent / "golden" / "flowpairs_synth"  # train, val and test shards


def test_no_val_split_means_no_validation_but_a_broken_one_is_one_line(tmp_path):
    def validation(data: Path) -> list[str] | None:  # what the flow run validates on without --val
        return validation_files(data, None, "val", flow_split_files)

    whole, no_val = tmp_path / "whole", tmp_path / "no_val"
    shutil.copytree(FLOWPAIRS_GOLDEN, whole)
    no_val.mkdir()
    for name in ("train-00000-of-00001.h5", "test-00000-of-00001.h5"):
        shutil.copyfile(whole / name, no_val / name)
    assert validation(no_val) is None
    assert [Path(f).name for f in validation(whole)] == ["val-00000-of-00001.h5"]
    (whole / "val-00000-of-00001.h5").chmod(0o644)
    (whole / "val-00000-of-00001.h5").write_bytes(b"truncated")  # listed in the manifest, unreadable
    with pytest.raises(BlurgenError, match="val-00000-of-00001.h5 is not a readable HDF5 file") as err:
        validation(whole)
    assert "\n" not in str(err.value)
