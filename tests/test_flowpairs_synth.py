"""Synthetic flow pairs: procedural scenes with exact flow, interpolation along flow, the paper's
frame-count and discard rules, user pairs on disk, and backward warping."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from blurgen.color import srgb_to_linear
from blurgen.errors import BlurgenError
from blurgen.flow.warp import forward_backward_consistent, in_bounds, sample, warp_backward
from blurgen.flowpairs.interpolate import (Discard, check_displacement, dominant_motion, frame_count,
                                           interpolate_frame, interpolate_frames, invert_flow, max_displacement,
                                           synth_from_pair, synth_from_scene)
from blurgen.flowpairs.synth import Layer, Motion, Scene, polygon_mask, procedural_scene
from blurgen.flowpairs.user_pairs import SkipPair, list_user_pairs, load_user_pair
from blurgen.rng import item_rng

W, H = 96, 72
# Seeds of item_rng(11, k) chosen to cover a static and a moving background, 1-4 layers.
SCENE_SEEDS = (0, 1, 2, 3)


def _scene(k: int, max_displacement: float = 60.0) -> Scene:
    return procedural_scene(item_rng(11, k), W, H, max_displacement)


def _away_from_edges(scene: Scene, flow: np.ndarray, valid: np.ndarray, t0=0.0, t1=1.0, r=2) -> np.ndarray:
    """Valid pixels whose surface is the same within ``r`` px both at t0 (around x) and at t1
    (around x + flow): there, colours are not mixed by the anti-aliased rims of layers."""
    kernel = np.ones((2 * r + 1, 2 * r + 1), np.uint8)

    def uniform(owner):
        o = owner.astype(np.float32)
        return cv2.erode(o, kernel) == cv2.dilate(o, kernel)

    end = warp_backward(uniform(scene.owner(t1)), flow, interpolation="nearest")
    return valid & uniform(scene.owner(t0)) & end


def _smooth_image(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    return cv2.GaussianBlur(rng.random((h, w, 3)).astype(np.float32), (0, 0), 2.0)


# --- the paper's rules -------------------------------------------------------------------

@pytest.mark.parametrize("s, n", [(0.0, 5), (0.3, 5), (4.9, 5), (5.0, 5), (5.01, 6), (12.2, 13),
                                  (13.0, 13), (-12.2, 13), (99.2, 100), (100.0, 100)])
def test_frame_count_is_max_of_rounded_up_displacement_and_five(s, n):
    assert frame_count(s) == n


def test_frame_count_minimum_is_configurable_and_nan_refused():
    assert frame_count(2.0, min_frames=3) == 3
    assert frame_count(2.0, min_frames=2) == 2
    with pytest.raises(ValueError):
        frame_count(float("nan"))


def test_discard_rule_keeps_100_and_drops_above():
    check_displacement(100.0)
    with pytest.raises(Discard) as info:
        check_displacement(100.5)
    assert "100.5" in info.value.reason


def test_discard_rule_on_pairs():
    first = np.zeros((4, 4, 3), np.float32)
    flow = np.zeros((4, 4, 2), np.float32)
    flow[..., 0], flow[..., 1] = 60.0, 80.0  # |s| = 100 exactly: kept, with 100 frames
    sample_ = synth_from_pair(first, first, flow)
    assert sample_.max_displacement == pytest.approx(100.0)
    assert sample_.frames == 100
    flow[..., 0], flow[..., 1] = 100.5, 0.0
    with pytest.raises(Discard):
        synth_from_pair(first, first, flow)
    flow[..., 0] = 3.0  # a lower limit applies too
    with pytest.raises(Discard):
        synth_from_pair(first, first, flow, max_allowed=2.0)


def test_discard_rule_on_scenes():
    scene = _scene(0)
    fast = Scene(W, H, scene.background, background_motion=Motion(translation=(150.0, 0.0)))
    with pytest.raises(Discard):
        synth_from_scene(fast)
    slow = Scene(W, H, scene.background, background_motion=Motion(translation=(3.0, 4.0)))
    result = synth_from_scene(slow)
    assert result.max_displacement == pytest.approx(5.0, abs=1e-4)
    assert result.frames == 5


def test_max_displacement_skips_unknown_and_invalid_vectors():
    flow = np.zeros((3, 3, 2), np.float32)
    flow[0, 0] = (3.0, 4.0)
    flow[1, 1] = (1e10, 0.0)  # .flo "unknown"
    flow[2, 2] = (np.nan, 0.0)
    flow[2, 0] = (30.0, 40.0)
    assert max_displacement(flow) == pytest.approx(50.0)
    valid = np.ones((3, 3), bool)
    valid[2, 0] = False
    assert max_displacement(flow, valid) == pytest.approx(5.0)
    assert max_displacement(flow, np.zeros((3, 3), bool)) == 0.0


# --- procedural scenes: exact flow -------------------------------------------------------

@pytest.mark.parametrize("k", SCENE_SEEDS)
def test_scene_flow_warps_last_onto_first(k):
    """warp_backward(last, flow_fwd) reproduces first on valid pixels.

    Measured over these seeds: mean abs error on all valid pixels <= 0.008 (the rims of layers
    mix colours), <= 0.003 away from them (what remains is bilinear resampling, mostly of a
    panning/zooming background: a sub-pixel shift low-passes it twice, render and warp);
    shifting the flow by two pixels raises the latter at least five-fold.
    """
    scene = _scene(k)
    first, last = scene.render(0.0), scene.render(1.0)
    flow, valid = scene.flow(0.0, 1.0)
    assert valid.mean() > 0.3
    err = np.abs(warp_backward(last, flow) - first).mean(axis=2)
    clean = _away_from_edges(scene, flow, valid)
    assert clean.mean() > 0.2
    assert err[valid].mean() < 1e-2
    assert err[clean].mean() < 3e-3
    off_by_two = np.abs(warp_backward(last, flow + np.float32([2.0, 0.0])) - first).mean(axis=2)
    assert off_by_two[clean].mean() > 3 * err[clean].mean()


def test_scene_covers_moving_background_and_several_layers():
    """The seeds above are not all alike (else the flow test would miss a case)."""
    scenes = [_scene(k) for k in SCENE_SEEDS]
    assert {s.background_motion == Motion() for s in scenes} == {True, False}
    assert max(len(s.layers) for s in scenes) >= 2


@pytest.mark.parametrize("k", SCENE_SEEDS)
def test_scene_backward_flow_inverts_forward_flow(k):
    scene = _scene(k)
    fwd, valid_fwd = scene.flow(0.0, 1.0)
    bwd, valid_bwd = scene.flow(1.0, 0.0)
    clean = _away_from_edges(scene, fwd, valid_fwd)
    round_trip = fwd + warp_backward(bwd, fwd)
    assert np.abs(round_trip[clean]).max() < 0.05
    # Where the forward flow is valid, its end point sees the same surface, whose backward
    # vector is valid (away from rims, and from the 1 px image border, where the nearest
    # pixel's vector may point just outside).
    inner = clean.copy()
    inner[[0, -1], :] = inner[:, [0, -1]] = False
    assert warp_backward(valid_bwd, fwd, interpolation="nearest")[inner].mean() > 0.99
    # The forward-backward check agrees with the exact visibility on nearly every pixel.
    assert (forward_backward_consistent(fwd, bwd) == valid_fwd).mean() > 0.95
    # And the backward flow warps first onto last.
    err = np.abs(warp_backward(scene.render(0.0), bwd) - scene.render(1.0)).mean(axis=2)
    assert err[valid_bwd].mean() < 1e-2


def _square_scene(dx: float) -> Scene:
    """A 21 x 21 px square (vertices at +-10 px, pixel rows 14..34) over a static background."""
    square = np.array([[-10.0, -10.0], [10.0, -10.0], [10.0, 10.0], [-10.0, 10.0]])
    tex = np.zeros((8, 8, 3), np.float32)
    tex[..., 0] = np.linspace(0.2, 0.9, 8)[None, :]
    layer = Layer(texture=tex, mask=polygon_mask(square, 12.0), centre=(30.0, 24.0),
                  motion=Motion(centre=(30.0, 24.0), translation=(dx, 0.0)))
    return Scene(64, 48, np.full((48, 64, 3), 0.1, np.float32), layers=[layer])


def test_scene_occlusion_masks_exactly_the_covered_background():
    scene = _square_scene(10.0)
    flow, valid = scene.flow(0.0, 1.0)
    owner = scene.owner(0.0)
    assert (owner == 0).sum() == 21 * 21
    assert np.all(flow[owner == 0] == np.float32([10.0, 0.0]))
    assert np.all(flow[owner == -1] == 0.0)
    # The square slides 10 px right: it hides a 10 x 21 px strip of background to its right.
    hidden = ~valid
    assert hidden.sum() == 10 * 21
    ys, xs = np.nonzero(hidden)
    assert (ys.min(), ys.max(), xs.min(), xs.max()) == (14, 34, 41, 50)
    assert np.all(owner[hidden] == -1)
    # Backward: the strip it uncovers on the left was not visible in the first frame.
    _, valid_bwd = scene.flow(1.0, 0.0)
    ys, xs = np.nonzero(~valid_bwd)
    assert (ys.min(), ys.max(), xs.min(), xs.max(), len(xs)) == (14, 34, 20, 29, 210)


def test_scene_leaving_the_image_is_invalid():
    scene = _scene(0)
    pan = Scene(W, H, scene.background, background_motion=Motion(translation=(-7.0, 0.0)))
    flow, valid = pan.flow(0.0, 1.0)
    assert np.allclose(flow, [-7.0, 0.0], atol=1e-4)
    assert np.array_equal(valid, np.broadcast_to(np.arange(W) >= 7, (H, W)))


def test_scene_motion_is_affine_interpolated_in_time():
    m = Motion(centre=(10.0, 5.0), translation=(4.0, -2.0), rotation=0.3, scale=1.2)
    assert np.allclose(m.matrix(0.0), np.eye(3))
    half = m.matrix(0.5)
    c = np.array([10.0, 5.0])
    # The centre moves by t * translation; a point 1 px right of it turns by 0.15 rad, scale 1.1.
    assert np.allclose(half[:2, :2] @ c + half[:2, 2], c + [2.0, -1.0])
    p = half[:2, :2] @ (c + [1.0, 0.0]) + half[:2, 2]
    assert np.allclose(p - (c + [2.0, -1.0]), 1.1 * np.array([np.cos(0.15), np.sin(0.15)]))
    assert np.allclose(m.between(0.25, 0.75) @ m.matrix(0.25), m.matrix(0.75))


def test_scene_is_deterministic():
    a, b = _scene(2), _scene(2)
    assert a.render(0.3).tobytes() == b.render(0.3).tobytes()
    fa, va = a.flow(0.0, 1.0)
    fb, vb = b.flow(0.0, 1.0)
    assert fa.tobytes() == fb.tobytes() and va.tobytes() == vb.tobytes()
    sa, sb = synth_from_scene(a), synth_from_scene(b)
    assert sa.blurred.tobytes() == sb.blurred.tobytes()
    assert _scene(3).render(0.3).tobytes() != a.render(0.3).tobytes()


@pytest.mark.slow
def test_scene_displacements_are_spread_and_bounded():
    s = []
    for k in range(40):
        scene = procedural_scene(item_rng(12, k), 64, 48, 100.0)
        fwd, _ = scene.flow(0.0, 1.0)
        bwd, _ = scene.flow(1.0, 0.0)
        s.append(max(max_displacement(fwd), max_displacement(bwd)))
    s = np.array(s)
    assert s.max() <= 100.0
    assert np.sum(s < 5.0) >= 2  # some nearly still scenes
    assert np.mean((s >= 5.0) & (s <= 60.0)) >= 0.5  # most in 5-60 px
    assert np.sum(s > 60.0) >= 1  # and a tail


# --- samples -----------------------------------------------------------------------------

def test_synth_from_scene_averages_exact_renders():
    scene = _scene(1, max_displacement=12.0)
    result = synth_from_scene(scene)
    n = result.frames
    assert n == frame_count(result.max_displacement)
    times = [i / (n - 1) for i in range(n)]
    expected = np.mean([scene.render(t).astype(np.float64) for t in times], axis=0)
    assert np.abs(result.blurred - expected).max() < 1e-6
    assert np.array_equal(result.first, scene.render(0.0))
    assert np.array_equal(result.last, scene.render(1.0))
    assert np.array_equal(result.sharp, scene.render(0.5))
    fwd, valid = scene.flow(0.0, 1.0)
    assert np.array_equal(result.flow_fwd, fwd)
    assert np.array_equal(result.flow_valid[..., 0], valid)
    assert result.flow_valid.shape == (H, W, 2) and result.flow_valid.dtype == bool
    assert result.max_displacement <= scene.max_motion() + 1e-3
    assert not np.array_equal(result.blurred, result.sharp)


def _dot_pair():
    first = np.zeros((6, 12, 3), np.float32)
    first[3, 2] = 1.0
    last = np.zeros_like(first)
    last[3, 6] = 1.0
    flow = np.zeros((6, 12, 2), np.float32)
    flow[..., 0] = 4.0
    return first, last, flow


@pytest.mark.parametrize("with_backward", [True, False])
def test_blurred_dot_is_the_hand_computed_streak(with_backward):
    """A dot moving 4 px: s = 4 -> 5 frames at t = 0, 1/4, ..., 1, i.e. the dot at x = 2..6,
    each frame weighing 1/5."""
    first, last, flow = _dot_pair()
    result = synth_from_pair(first, last, flow, -flow if with_backward else None)
    assert result.frames == 5
    expected = np.zeros_like(first)
    expected[3, 2:7] = 0.2
    assert np.abs(result.blurred - expected).max() < 1e-6
    sharp = np.zeros_like(first)
    sharp[3, 4] = 1.0
    assert np.abs(result.sharp - sharp).max() < 1e-6


def test_interpolated_endpoints_are_exact_and_translation_is_reproduced():
    big = _smooth_image(item_rng(13, 0), 50, 60)
    d = (4, 2)  # first(x) = last(x + d)
    first = big[10:40, 10:50]
    last = big[10 - d[1]:40 - d[1], 10 - d[0]:50 - d[0]]
    flow = np.zeros((30, 40, 2), np.float32)
    flow[...] = d
    middle = big[10 - 1:40 - 1, 10 - 2:50 - 2]  # shifted by d / 2
    for bwd in (-flow, None):
        frames = interpolate_frames(first, last, flow, -flow if bwd is None else bwd, 3)
        assert len(frames) == 3
        assert np.array_equal(frames[0], first) and np.array_equal(frames[2], last)
        inner = (slice(4, -4), slice(4, -4))
        assert np.abs(frames[1][inner] - middle[inner]).max() < 1e-5
        assert np.abs(frames[1][inner] - first[inner]).max() > 0.01  # it did move
    with pytest.raises(ValueError):
        interpolate_frames(first, last, flow, -flow, 1)


@pytest.mark.parametrize("backward", [True, False])
def test_interpolation_beats_blending_on_a_scene(backward):
    """Frames interpolated from a scene's endpoints and flows come close to its exact renders:
    measured 3-6x closer than blending first and last (4 layers moving up to 33 px)."""
    scene = _scene(1, max_displacement=40.0)
    exact = synth_from_scene(scene)
    assert exact.max_displacement > 20.0
    pair = synth_from_pair(exact.first, exact.last, exact.flow_fwd, exact.flow_bwd if backward else None)
    assert pair.frames == exact.frames
    blend = 0.5 * (exact.first + exact.last)
    assert np.abs(pair.sharp - exact.sharp).mean() < 0.4 * np.abs(blend - exact.sharp).mean()
    assert np.abs(pair.blurred - exact.blurred).mean() < 0.4 * np.abs(blend - exact.blurred).mean()
    # Validity derived from the pair (forward-backward or photometric check, projection)
    # matches the scene's exact visibility on nearly every pixel.
    assert (pair.flow_valid == exact.flow_valid).mean() > 0.95


def test_inverted_flow_of_a_translation():
    h, w = 20, 30
    fwd = np.zeros((h, w, 2), np.float32)
    fwd[...] = (3.0, -2.0)
    bwd, valid = invert_flow(fwd)
    # Last-frame pixels with x < 3 or y > h - 3 were never seen in the first frame.
    expected = np.zeros((h, w), bool)
    expected[: h - 2, 3:] = True
    assert np.array_equal(valid, expected)
    assert np.allclose(bwd[valid], (-3.0, 2.0))
    assert np.allclose(bwd, (-3.0, 2.0))  # holes filled from the nearest reached pixel


def _block_pair(h=30, w=60, x0=10, size=10, dx=30):
    """A bright block (rows 10..19, columns x0..x0+size-1) moving dx px right over a static
    textured background that stays visible at both ends wherever the block is not."""
    rng = item_rng(15, 0)
    bg = (0.1 + 0.2 * rng.random((h, w, 1)).repeat(3, axis=2)).astype(np.float32)
    first, last = bg.copy(), bg.copy()
    first[10:20, x0:x0 + size] = 1.0
    last[10:20, x0 + dx:x0 + dx + size] = 1.0
    fwd = np.zeros((h, w, 2), np.float32)
    fwd[10:20, x0:x0 + size, 0] = dx
    bwd = np.zeros((h, w, 2), np.float32)
    bwd[10:20, x0 + dx:x0 + dx + size, 0] = -dx
    valid_fwd = np.ones((h, w), bool)
    valid_fwd[10:20, x0 + dx:x0 + dx + size] = False  # background the block covers at the end
    valid_bwd = np.ones((h, w), bool)
    valid_bwd[10:20, x0:x0 + size] = False  # background it uncovers
    return bg, first, last, fwd, bwd, valid_fwd, valid_bwd


def test_object_crossing_the_background_stays_in_front():
    """The block moves 3x its width; at t = 0.5 it lands on background that is visible in both
    frames. The splat priorities (moving against the dominant motion = in front) keep it whole."""
    bg, first, last, fwd, bwd, valid_fwd, valid_bwd = _block_pair()
    middle = interpolate_frame(first, last, fwd, bwd, 0.5, valid_fwd, valid_bwd)
    expected = bg.copy()
    expected[10:20, 25:35] = 1.0
    assert np.abs(middle - expected).max() < 1e-5
    # Without the backward flow and the masks (derived from the forward flow) as well.
    assert np.abs(synth_from_pair(first, last, fwd).sharp - expected).max() < 1e-5


def test_inverted_flow_gives_uncovered_background_the_dominant_motion():
    _, _, _, fwd, bwd, valid_fwd, valid_bwd = _block_pair()
    derived, valid = invert_flow(fwd, valid_fwd)
    assert np.array_equal(valid, valid_bwd)
    assert np.array_equal(derived, bwd)  # block -30 px, background (uncovered or not) 0


def test_dominant_motion_ignores_independent_objects():
    h, w = 40, 50
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
    camera = np.stack([0.05 * (gx - 25) + 3.0, 0.05 * (gy - 20) - 1.0], axis=2)  # zoom and pan
    flow = camera.copy()
    flow[5:25, 5:30] = (-12.0, 7.0)  # an object covering a quarter of the image
    model = dominant_motion(flow)
    assert np.abs(model - camera).max() < 1e-3


def test_pair_flows_validity_from_forward_backward_check():
    first, last, flow = _dot_pair()
    result = synth_from_pair(first, last, flow, -flow)
    # Moving 4 px right, the 4 right-most columns leave the image; the 4 left-most of the last
    # frame come from outside.
    assert np.array_equal(result.flow_valid[..., 0], np.broadcast_to(np.arange(12) < 8, (6, 12)))
    assert np.array_equal(result.flow_valid[..., 1], np.broadcast_to(np.arange(12) >= 4, (6, 12)))


def test_pair_unknown_flow_is_invalid_and_zeroed():
    first, last, flow = _dot_pair()
    flow[0, 0] = (1e10, 1e10)
    result = synth_from_pair(first, last, flow)
    assert not result.flow_valid[0, 0, 0]
    assert np.all(result.flow_fwd[0, 0] == 0.0)
    assert result.max_displacement == pytest.approx(4.0)
    with pytest.raises(ValueError):
        synth_from_pair(first, last[:5], flow)


# --- warping -----------------------------------------------------------------------------

def test_warp_backward_samples_at_x_plus_flow():
    image = np.arange(5 * 7 * 2, dtype=np.float32).reshape(5, 7, 2)
    flow = np.zeros((5, 7, 2), np.float32)
    flow[..., 0], flow[..., 1] = 2.0, -1.0
    out = warp_backward(image, flow)
    assert np.array_equal(out[1:, :5], image[:4, 2:])
    assert np.array_equal(in_bounds(flow), np.pad(np.ones((4, 5), bool), ((1, 0), (0, 2))))
    flow[..., 0], flow[..., 1] = 0.5, 0.0  # half way between two pixels
    assert np.allclose(warp_backward(image, flow)[:, :6], 0.5 * (image[:, :6] + image[:, 1:]))


def test_sample_handles_points_of_any_shape_and_many_of_them():
    image = np.arange(12, dtype=np.float32).reshape(3, 4)
    x = np.array([0.0, 3.0, 1.5])
    y = np.array([0.0, 2.0, 1.0])
    assert np.allclose(sample(image, x, y), [0.0, 11.0, 5.5])
    many = np.full(40000, 1.0)
    assert sample(image, many, many).shape == (40000,)
    assert np.all(sample(image[..., None], many, many) == 5.0)


# --- user pairs on disk ------------------------------------------------------------------

def _write_image(path, rgb_u8):
    assert cv2.imwrite(str(path), np.ascontiguousarray(rgb_u8[..., ::-1]))


def _pair_files(tmp_path):
    rng = item_rng(14, 0)
    img = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
    img[0, 0] = (255, 0, 128)
    flow = rng.normal(0.0, 2.0, (12, 16, 2)).astype(np.float32)
    _write_image(tmp_path / "a_1.png", img)
    _write_image(tmp_path / "a_2.png", img)
    cv2.writeOpticalFlow(str(tmp_path / "a_fwd.flo"), flow)
    cv2.writeOpticalFlow(str(tmp_path / "a_bwd.flo"), -flow)
    (tmp_path / "chairs").mkdir()
    _write_image(tmp_path / "chairs" / "00001_img1.ppm", img)
    _write_image(tmp_path / "chairs" / "00001_img2.ppm", img)
    cv2.writeOpticalFlow(str(tmp_path / "chairs" / "00001_flow.flo"), flow)
    _write_image(tmp_path / "0000007-img_0.png", img)
    _write_image(tmp_path / "0000007-img_1.png", img)
    cv2.writeOpticalFlow(str(tmp_path / "0000007-flow_01.flo"), flow)
    (tmp_path / "notes.txt").write_text("not a pair")
    return img, flow


def test_user_pairs_are_listed_in_three_layouts(tmp_path):
    _pair_files(tmp_path)
    pairs = list_user_pairs(tmp_path)
    assert [(p.name, p.layout) for p in pairs] == [
        ("0000007", "flyingchairs2"), ("a", "blurgen"), ("chairs/00001", "flyingchairs")]
    assert pairs[1].flow_bwd == tmp_path / "a_bwd.flo"
    assert pairs[0].flow_bwd is None and pairs[2].flow_bwd is None
    assert pairs[2].first == tmp_path / "chairs" / "00001_img1.ppm"


def test_user_pair_loads_as_linear_rgb_with_flows(tmp_path):
    img, flow = _pair_files(tmp_path)
    pair = next(p for p in list_user_pairs(tmp_path) if p.name == "a")
    first, last, fwd, bwd = load_user_pair(pair)
    assert first.shape == (12, 16, 3) and first.dtype == np.float32
    assert np.array_equal(first[0, 0], srgb_to_linear(np.array([255, 0, 128], np.uint8)))  # RGB, decoded
    assert np.array_equal(fwd, flow) and np.array_equal(bwd, -flow)
    chairs = next(p for p in list_user_pairs(tmp_path) if p.layout == "flyingchairs")
    assert load_user_pair(chairs)[3] is None
    result = synth_from_pair(*load_user_pair(pair))
    assert result.blurred.shape == (12, 16, 3)


def test_bad_user_pairs_are_skipped_with_a_reason(tmp_path):
    img, flow = _pair_files(tmp_path)
    _write_image(tmp_path / "a_2.png", img[:10])  # last image of another size
    cv2.writeOpticalFlow(str(tmp_path / "0000007-flow_01.flo"), flow[:, :8])  # flow of another size
    (tmp_path / "chairs" / "00001_flow.flo").write_bytes(b"PIEH garbage")  # corrupt flow
    _write_image(tmp_path / "b_1.png", img)  # last image missing
    cv2.writeOpticalFlow(str(tmp_path / "b_fwd.flo"), flow)
    reasons = {}
    for pair in list_user_pairs(tmp_path):
        with pytest.raises(SkipPair) as info:
            load_user_pair(pair)
        reasons[pair.name] = info.value.reason
    assert "differ in size" in reasons["a"]
    assert "flow is 8x12" in reasons["0000007"]
    assert "cannot read flow" in reasons["chairs/00001"]
    assert "no last image" in reasons["b"]


def test_no_pairs_is_a_one_line_user_error(tmp_path):
    with pytest.raises(BlurgenError, match="no frame pairs"):
        list_user_pairs(tmp_path)
    with pytest.raises(BlurgenError, match="does not exist"):
        list_user_pairs(tmp_path / "missing")
