"""Labels and filters against analytic cases: bbox, blur severity / level, coverage, aligned IoU.

The moving-disc cases: a disc of radius R whose centre moves a distance D along +x during the
exposure. At a point (x, y) with half-chord h = sqrt(R^2 - (y - y0)^2), the disc covers the point
while its centre is in [x - h, x + h], so the time-integrated alpha is

    alpha(x, y) = |[x - h, x + h] ∩ [x0, x0 + D]| / D        (D > 0; the disc's indicator for D = 0)

averaged here over 8x8 sub-pixel samples per pixel. The integral of alpha is the disc's area
pi R^2 (each instant contributes one disc), and alpha > 0 on the swept stadium of area
S = pi R^2 + 2 R D, so with no erosion

    BS = 1 - pi R^2 / (pi R^2 + 2 R D) = 2 D / (pi R + 2 D).

Pixelisation adds the partly covered boundary pixels to the support: a band of about half a
pixel along the perimeter P = 2 pi R + 2 D, so the measured BS exceeds the analytic one by about
(1 - BS) * P / (2 S); the tests allow (1 - BS) * P / S.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from blurgen.render.compose import window_layer
from blurgen.render.labels import (REASONS, aligned_silhouette_iou, bbox_of, blur_level, blur_severity, coverage,
                                   filter_reason, support_eroded, touches_border)

H, W = 120, 240
X0, Y0 = 60.0, 60.3  # start centre, off the pixel grid


def moving_disc_alpha(radius: float, distance: float, x0: float = X0, y0: float = Y0, ss: int = 8) -> np.ndarray:
    """Time-integrated alpha (H, W) of the disc moving ``distance`` pixels along +x (see module doc)."""
    offsets = (np.arange(ss) + 0.5) / ss
    ys = (np.arange(H)[:, None] + offsets).ravel()[:, None]
    xs = (np.arange(W)[:, None] + offsets).ravel()[None, :]
    half = np.sqrt(np.maximum(radius ** 2 - (ys - y0) ** 2, 0.0))
    if distance > 0:
        frac = np.clip(np.minimum(xs + half, x0 + distance) - np.maximum(xs - half, x0), 0, None) / distance
    else:
        frac = (np.abs(xs - x0) <= half).astype(np.float64)
    frac = np.where(half > 0, frac, 0.0)
    return frac.reshape(H, ss, W, ss).mean(axis=(1, 3)).astype(np.float32)


# --- bbox -------------------------------------------------------------------------------------

def test_bbox_is_exclusive_and_exact():
    alpha = np.zeros((10, 12), np.float32)
    alpha[2, 3] = 0.01
    alpha[6, 9] = 1.0
    alpha[4, 5] = 0.5
    assert bbox_of(alpha) == (3, 2, 10, 7)
    assert bbox_of(alpha, threshold=0.2) == (5, 4, 10, 7)
    full = np.ones((4, 5))
    assert bbox_of(full) == (0, 0, 5, 4)
    assert bbox_of(np.zeros((4, 5))) is None


# --- blur severity ----------------------------------------------------------------------------

@pytest.mark.parametrize("distance", [10.0, 40.0, 100.0])
@pytest.mark.parametrize("radius", [20.0, 30.0])
def test_severity_of_a_moving_disc_matches_the_analytic_value(radius, distance):
    alpha = moving_disc_alpha(radius, distance)
    area, swept = math.pi * radius ** 2, math.pi * radius ** 2 + 2 * radius * distance
    assert alpha.sum() == pytest.approx(area, rel=1e-3)  # the integral of alpha is the disc's area
    analytic = 2 * distance / (math.pi * radius + 2 * distance)
    perimeter = 2 * math.pi * radius + 2 * distance
    measured = blur_severity(alpha, erosion_px=0)
    assert 0 <= measured - analytic <= (1 - analytic) * perimeter / swept


def test_time_samples_of_an_antialiased_disc_give_the_same_alpha():
    # The render pipeline's way: average many instants (here 40 shifted anti-aliased discs).
    steps = 40
    instants = np.stack([moving_disc_alpha(25.0, 0.0, x0=X0 + 50.0 * (i + 0.5) / steps, ss=4)
                         for i in range(steps)])
    layers = np.zeros((steps, H, W, 4), np.float32)
    layers[..., 3] = instants
    alpha = window_layer(layers, 0, steps)[..., 3]
    exact = moving_disc_alpha(25.0, 50.0)
    assert np.abs(alpha - exact).max() <= 1.5 / steps + 1e-6
    assert blur_severity(alpha) == pytest.approx(blur_severity(exact), abs=0.01)


def test_a_static_disc_has_no_blur():
    alpha = moving_disc_alpha(30.0, 0.0)
    assert blur_severity(alpha, erosion_px=3) == 0.0  # the eroded interior is fully covered
    assert blur_level(blur_severity(alpha)) == 1
    assert blur_severity(alpha, erosion_px=0) > 0.0  # the anti-aliased rim is why the paper erodes


def test_severity_grows_with_the_motion():
    severities = [blur_severity(moving_disc_alpha(25.0, d)) for d in (0, 3, 8, 20, 40, 80, 150)]
    assert all(b > a for a, b in zip(severities, severities[1:]))
    assert severities[-1] < 1.0


def test_constant_alpha_inside_a_box():
    alpha = np.zeros((40, 40), np.float32)
    alpha[5:35, 5:35] = 0.25
    alpha[5:35, 5] = 0.01  # a faint rim that the erosion removes
    assert blur_severity(alpha, erosion_px=3) == pytest.approx(0.75)
    assert blur_level(blur_severity(alpha)) == 8


def test_erosion_uses_a_square_and_keeps_the_image_border():
    alpha = np.zeros((20, 20), np.float32)
    alpha[3:14, 3:14] = 1.0
    beta = support_eroded(alpha, 3)
    assert beta.sum() == 5 * 5 and beta[6:11, 6:11].all()  # 11x11 square eroded by 3 -> 5x5
    cut = np.zeros((20, 20), np.float32)
    cut[:, :8] = 1.0  # object cut by the left image border: only the inner edge is eroded
    assert (support_eroded(cut, 3)[:, :5] == 1).all() and support_eroded(cut, 3)[:, 5:].sum() == 0
    assert np.array_equal(support_eroded(cut, 0), (cut > 0).astype(np.uint8))
    disc = moving_disc_alpha(10.0, 0.0) > 0
    # A square element removes everything within Chebyshev distance 3 of the outside.
    eroded = support_eroded(disc.astype(np.float32), 3).astype(bool)
    padded = np.pad(disc, 3, constant_values=True)
    windows = np.lib.stride_tricks.sliding_window_view(padded, (7, 7))
    assert np.array_equal(eroded, windows.all(axis=(2, 3)))


def test_nothing_left_after_erosion_is_invalid():
    alpha = np.zeros((30, 30), np.float32)
    alpha[10:15, 10:15] = 0.5  # 5x5: an erosion by 3 leaves nothing
    assert blur_severity(alpha, erosion_px=3) is None
    assert blur_severity(np.zeros((30, 30)), erosion_px=0) is None
    assert blur_severity(alpha, erosion_px=2) == pytest.approx(0.5)


def test_severity_is_clamped_to_0_1():
    alpha = np.full((20, 20), 1.0 + 1e-4, np.float32)
    assert blur_severity(alpha) == 0.0


# --- blur level -------------------------------------------------------------------------------

def test_blur_level_bin_edges():
    assert blur_level(0.0) == 1
    for k in range(1, 11):
        edge = k / 10
        assert blur_level(edge) == k, edge
        assert blur_level(np.float32(edge)) == k, edge            # float32(0.3) = 0.30000001
        assert blur_level(1.0 - (1.0 - edge)) == k, edge          # arithmetic noise on the edge
        assert blur_level(edge + 1e-4) == min(k + 1, 10), edge
        assert blur_level(edge - 1e-4) == k, edge
    assert blur_level(1 - 0.7) == 3  # 1 - 0.7 is 0.30000000000000004 in floats: a bare ceil says 4
    assert [blur_level(x) for x in (1e-9, 0.05, 0.55, 0.999, 1.0)] == [1, 1, 6, 10, 10]
    assert blur_level(-0.01) == 1 and blur_level(1.5) == 10
    with pytest.raises(ValueError):
        blur_level(float("nan"))


# --- coverage and filters ---------------------------------------------------------------------

def test_coverage():
    alpha = np.zeros((10, 10))
    alpha[:3, :5] = 0.001
    assert coverage(alpha) == pytest.approx(0.15)


def square_alpha(side_h: int, side_w: int, top: int = 10, left: int = 10, shape=(240, 320)) -> np.ndarray:
    alpha = np.zeros(shape, np.float32)
    alpha[top:top + side_h, left:left + side_w] = 1.0
    return alpha


def test_a_one_percent_object_is_small():
    one_percent = square_alpha(24, 32)  # 768 / 76800 pixels
    assert coverage(one_percent) == pytest.approx(0.01)
    assert filter_reason(one_percent, None, None) == "small"
    assert filter_reason(square_alpha(40, 40), None, None) is None  # 2.1 %


def test_same_silhouette_elsewhere_is_kept():
    a = moving_disc_alpha(20.0, 0.0, x0=50.0, y0=50.0) > 0.5
    b = moving_disc_alpha(20.0, 0.0, x0=170.0, y0=75.0) > 0.5
    assert aligned_silhouette_iou(a, b) == 1.0
    assert filter_reason(square_alpha(40, 40, shape=(120, 240)), a, b) is None


def test_a_bar_turned_by_90_degrees_is_an_appearance_change():
    bar = square_alpha(4, 60, top=50, left=40, shape=(120, 240)).astype(bool)
    turned = square_alpha(60, 4, top=20, left=150, shape=(120, 240)).astype(bool)
    iou = aligned_silhouette_iou(bar, turned)
    assert iou == pytest.approx(16 / (240 + 240 - 16))
    big = square_alpha(40, 40, shape=(120, 240))
    assert filter_reason(big, bar, turned) == "appearance_change"
    assert filter_reason(big, bar, turned, min_iou=0.0) is None
    assert set(REASONS) == {"small", "appearance_change", "truncated"}


def test_aligned_iou_details():
    a = square_alpha(10, 10, top=0, left=0, shape=(30, 30)).astype(bool)
    b = square_alpha(10, 20, top=15, left=5, shape=(30, 30)).astype(bool)
    assert aligned_silhouette_iou(a, b) == pytest.approx(100 / 200)
    assert aligned_silhouette_iou(a, np.zeros_like(a)) == 0.0
    # Float silhouettes (rendered alpha) are thresholded at 0.5.
    assert aligned_silhouette_iou(a * 0.9, b * 0.6) == pytest.approx(0.5)
    assert aligned_silhouette_iou(a * 0.9, b * 0.4) == 0.0
    # A shift that pushes part of b past the border still counts all of b in the union.
    wide = square_alpha(2, 30, top=0, left=0, shape=(30, 30)).astype(bool)
    corner = square_alpha(2, 2, top=28, left=28, shape=(30, 30)).astype(bool)
    assert aligned_silhouette_iou(corner, wide) == pytest.approx(4 / 60)


def test_filter_needs_both_silhouettes_or_neither():
    with pytest.raises(ValueError):
        filter_reason(np.ones((4, 4)), np.ones((4, 4), bool), None)


@pytest.mark.parametrize("row, col, expected", [
    (10, 10, False),   # wholly inside
    (0, 10, True), (47, 10, True), (10, 0, True), (10, 63, True),   # each border
    (0, 0, True), (47, 63, True),   # corners
    (1, 1, False), (46, 62, False),   # one pixel in from the border
])
def test_truncated_is_any_coverage_on_the_first_or_last_row_or_column(row, col, expected):
    alpha = np.zeros((48, 64), np.float32)
    alpha[20:30, 20:30] = 1.0
    alpha[row, col] = 0.002  # the faintest streak tail counts: it is coverage the frame cut
    assert touches_border(alpha) is expected


def test_drop_truncated_drops_only_images_touching_the_border_and_after_the_papers_filters():
    inside = np.zeros((48, 64), np.float32)
    inside[10:30, 10:30] = 1.0
    cut = np.zeros((48, 64), np.float32)
    cut[10:30, 50:64] = 1.0
    assert filter_reason(cut, None, None) is None  # off by default: the paper names no such filter
    assert filter_reason(cut, None, None, drop_truncated=True) == "truncated"
    assert filter_reason(inside, None, None, drop_truncated=True) is None
    tiny = np.zeros((48, 64), np.float32)
    tiny[0, 0:5] = 1.0
    assert filter_reason(tiny, None, None, drop_truncated=True) == "small"  # the paper's reason wins
