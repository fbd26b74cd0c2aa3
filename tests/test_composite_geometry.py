"""Composite building blocks that need no blur operator: views, fill, partial coverage, photometric."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from blurgen.composite.coverage import partial_weight
from blurgen.composite.fill import fill_region
from blurgen.composite.photometric import apply_photometric
from blurgen.composite.views import centred_crop, cut_view, instance_crop, mask_box, resize


def disc(h: int, w: int, cx: int, cy: int, r: int) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    cv2.circle(m, (cx, cy), r, 1, -1)
    return m.astype(bool)


def test_mask_box_is_exclusive():
    m = np.zeros((10, 12), bool)
    m[2:5, 3:9] = True
    assert mask_box(m) == (3, 2, 9, 5)


@pytest.mark.parametrize("seed", range(20))
def test_instance_crop_holds_the_instance_at_the_sampled_scale(seed):
    rng = np.random.default_rng(seed)
    m = np.zeros((480, 640), bool)
    m[200:260, 300:340] = True  # 40 x 60 box
    x0, y0, x1, y1 = instance_crop(rng, m, (1.5, 3.0), (0.75, 1.333))
    assert 0 <= x0 < x1 <= 640 and 0 <= y0 < y1 <= 480
    assert x0 <= 300 and x1 >= 340 and y0 <= 200 and y1 >= 260  # the whole instance is inside
    side = np.sqrt((x1 - x0) * (y1 - y0))  # geometric mean side = box side * scale
    assert 1.5 * 60 - 2 <= side <= 3.0 * 60 + 2


def test_instance_crop_is_clamped_to_the_photo():
    m = np.zeros((100, 100), bool)
    m[0:60, 50:100] = True
    for seed in range(10):
        x0, y0, x1, y1 = instance_crop(np.random.default_rng(seed), m, (2.0, 4.0), (1.0, 1.0))
        assert (x0, y0, x1, y1) == (0, 0, 100, 100)  # larger than the photo: the whole photo


@pytest.mark.parametrize("shape, size, expected", [
    ((480, 640), (512, 512), (80, 0, 560, 480)),
    ((480, 640), (640, 240), (0, 120, 640, 360)),
    ((300, 300), (300, 300), (0, 0, 300, 300)),
])
def test_centred_crop_keeps_the_sample_aspect(shape, size, expected):
    assert centred_crop(shape, *size) == expected


def test_cut_view_resizes_image_in_linear_light_and_masks_as_coverage():
    image = np.zeros((40, 40, 3), np.float32)
    image[:, ::2] = 1.0  # 1-px stripes: area averaging must give 0.5, not aliasing
    masks = np.zeros((1, 40, 40), bool)
    masks[0, 10:30, 10:30] = True
    view = cut_view(image, masks, ["a"], (0, 0, 40, 40), 20, 20)
    assert view.image.shape == (20, 20, 3) and view.masks.shape == (1, 20, 20)
    np.testing.assert_allclose(view.image, 0.5, atol=1e-6)
    assert view.masks[0].sum() == 100 and view.masks[0, 5:15, 5:15].all()


def test_fill_keeps_outside_bit_exact_and_removes_the_object():
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:128, 0:128].astype(np.float32)
    background = np.stack([x / 128, y / 128, 0.5 + 0 * x], -1).astype(np.float32)
    image = background + rng.normal(0, 0.01, background.shape).astype(np.float32)
    region = disc(128, 128, 64, 64, 20)
    image[region] = [1.0, 0.0, 1.0]  # a magenta object
    out = fill_region(image, region)
    assert np.array_equal(out[~region], image[~region])
    # the fill continues the smooth background (it is smooth, not exact: 0.31 of gradient
    # across the hole) and no trace of the magenta object is left
    err = np.abs(out[region] - background[region]).max()
    assert err < 0.08, err
    assert out[region][:, 1].min() > 0.1


def test_fill_of_an_empty_region_is_a_copy():
    image = np.random.default_rng(1).random((16, 16, 3)).astype(np.float32)
    assert np.array_equal(fill_region(image, np.zeros((16, 16), bool)), image)


@pytest.mark.parametrize("share", [0.3, 0.5, 0.7])
def test_partial_weight_blurs_the_sampled_share_with_a_soft_compact_transition(share):
    mask = disc(200, 200, 100, 100, 60)
    w = partial_weight(np.random.default_rng(3), mask, share, transition_px=8.0)
    assert w.dtype == np.float32 and w.min() == 0.0 and w.max() == 1.0
    assert abs((w[mask] >= 0.5).mean() - share) < 0.03
    # soft: a transition band exists; compact: exactly 0 beyond half the transition outside the
    # instance's box (the blobs cover the box, where the instance's streaks can reach)
    assert ((w > 0) & (w < 1)).sum() > 0
    outside = np.ones_like(mask)
    outside[40 - 5:160 + 5, 40 - 5:160 + 5] = False
    assert (w[outside] == 0).all()


def test_partial_weight_transition_grows_with_its_width():
    mask = disc(200, 200, 100, 100, 70)
    soft = [((w > 0) & (w < 1)).sum() for w in
            (partial_weight(np.random.default_rng(5), mask, 0.5, transition_px=t) for t in (4.0, 16.0))]
    # same blobs (same seed), 4x the width: about 4x the soft band's area
    assert 3.0 < soft[1] / soft[0] < 5.0


def test_photometric_changes_image_and_sharp_identically_where_they_agree():
    rng = np.random.default_rng(0)
    sharp = rng.random((32, 32, 3)).astype(np.float32)
    image = sharp.copy()
    image[8:16, 8:16] = 0.3
    (a, b), params = apply_photometric(np.random.default_rng(7), [image, sharp], (-1.0, 1.0), (0.01, 0.02))
    same = np.ones((32, 32), bool)
    same[8:16, 8:16] = False
    assert np.array_equal(a[same], b[same]) and not np.array_equal(a, image)
    gain = 2.0 ** params["exposure_ev"]
    # noise has zero mean: the mean follows the exposure
    assert abs(b.mean() - np.clip(sharp * gain, 0, 1).mean()) < 0.01


def test_a_stretched_crop_is_resampled_evenly_along_the_growing_axis():
    ramp = np.tile(np.arange(30, dtype=np.float32)[:, None, None] / 30, (1, 90, 3))  # varies along y
    out = resize(ramp, 50, 40)  # x shrinks (area averaging), y grows (bilinear); fewer pixels in all
    steps = np.diff(out[5:35, 20, 0])
    # OpenCV's area mode on a mixed resize steps unevenly along the growing axis
    np.testing.assert_allclose(steps, (1.0 / 30) * (30 / 40), atol=1e-5)  # the ramp, 30 -> 40 rows


def test_partial_weight_reaches_as_far_as_the_blur_does():
    mask = disc(120, 200, 100, 60, 25)  # box x 75..125
    near = partial_weight(np.random.default_rng(2), mask, 0.95, 4.0)
    far = partial_weight(np.random.default_rng(2), mask, 0.95, 4.0, reach=20)
    cols = lambda w: np.flatnonzero((w > 0.5).any(axis=0))  # noqa: E731
    assert cols(near)[0] >= 75 - 3 and cols(near)[-1] <= 125 + 3
    # a streak leaving the instance keeps its blur up to the reach (blobs cover the padded box)
    assert cols(far)[0] <= 75 - 15 and cols(far)[-1] >= 125 + 15
