"""``zoom_rotation``: scale and rotation about the instance centre at constant rates.

About the instance centre ``c`` (alpha centroid), the content at ``x`` sits at
``c + exp((a + i b) t) (x - c)`` for t in [-1/2, 1/2] (complex notation, x + iy): log-scale
``a`` (``log_scale``: the scale goes from ``exp(-a/2)`` to ``exp(a/2)``) and rotation ``b``
(``rotation_deg``, clockwise on screen for positive values) change at constant rates. This
exponential form of "scale interpolated linearly in t" (the two agree to first order) makes the
warps a one-parameter group, which lets many copies be made from few warps. A point at radius r
travels ``r * kappa`` px, ``kappa = |a + ib| sinh(a/2) / (a/2)``; ``extent_px`` is the largest
travel over the instance's pixels, and the extent map is the coverage-weighted mean of
``kappa * r`` over the content arriving at each pixel. ``zoom_share`` (from ``blur.zoom_share``)
is the share ``|a| / (|a| + |b|)`` of the motion from scaling. An instance with no coverage
cannot zoom and gets ``extent_px`` 0 (params describe what is applied).
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import cv2
import numpy as np

from blurgen.composite import motion
from blurgen.composite.blurs.base import (BBox, BlurResult, Window, centroid, finish, max_radius, random_sign,
                                          uniform)

# At most this many time samples (copies); beyond it steps exceed 0.5 px.
MAX_ZOOM_COPIES = 1024
# Above this many copies, make them with two levels of warps (see apply).
ZOOM_DIRECT_COPIES = 8


def zoom_kappa(log_scale: float, rotation_rad: float) -> float:
    """Path length per unit radius of zoom_rotation: ``|a + ib| * sinh(a/2) / (a/2)``."""
    half = 0.5 * log_scale
    sinhc = math.sinh(half) / half if half != 0 else 1.0
    return math.hypot(log_scale, rotation_rad) * sinhc


def _solve_zoom(extent_px: float, r_max: float, share: float) -> tuple[float, float]:
    """(|a|, |b|) with |a| / (|a| + |b|) = share and r_max * kappa(a, b) = extent_px."""
    a0, b0 = share, 1.0 - share
    target = extent_px / r_max
    lo, hi = 0.0, math.sqrt(2.0) * target + 1e-12  # kappa >= |(a, b)| >= lam / sqrt(2)
    for _ in range(200):  # bisection: kappa grows monotonically with lam
        mid = 0.5 * (lo + hi)
        if zoom_kappa(mid * a0, mid * b0) < target:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-15 * max(hi, 1.0):
            break
    lam = 0.5 * (lo + hi)
    return lam * a0, lam * b0


def draw(rng: np.random.Generator, extent_px: float, alpha: np.ndarray, ranges: Any) -> dict:
    share = uniform(rng, ranges.zoom_share)
    zoom_sign = random_sign(rng)
    turn_sign = random_sign(rng)
    centre = centroid(alpha)
    r_max = max_radius(alpha, centre) if centre else 0.0
    if centre is None:
        centre = (0.5 * (alpha.shape[1] - 1), 0.5 * (alpha.shape[0] - 1))
    a = b = 0.0
    if r_max > 0 and extent_px > 0:
        a, b = _solve_zoom(extent_px, r_max, share)
        a, b = zoom_sign * a, turn_sign * b
    return {"extent_px": r_max * zoom_kappa(a, b) if r_max > 0 else 0.0,
            "center": [float(centre[0]), float(centre[1])], "log_scale": a,
            "rotation_deg": math.degrees(b), "zoom_share": share}


def in_window(params: Mapping, x0: int, y0: int) -> dict:
    return dict(params, center=[float(params["center"][0]) - x0, float(params["center"][1]) - y0])


# The mean distance from its centre over a unit square, (sqrt(2) + asinh(1)) / 6: the mean radius
# of the content of a pixel centred on the zoom centre.
CENTRE_PIXEL_MEAN_RADIUS = np.float32((math.sqrt(2.0) + math.asinh(1.0)) / 6.0)


def _radius(shape: tuple[int, int], centre: tuple[float, float]) -> np.ndarray:
    """Distance of every pixel centre of an H x W window from ``centre`` (x, y), float32.

    Never below the centre pixel's mean radius: the distance of the pixel centre stands for the
    pixel's content, which is fine away from the zoom centre but would read 0 (no motion) for a
    pixel centred on it, whose content moves (by up to 0.7 px times kappa) and is blurred.
    """
    h, w = shape
    r = np.hypot(np.arange(w, dtype=np.float32)[None, :] - np.float32(centre[0]),
                 np.arange(h, dtype=np.float32)[:, None] - np.float32(centre[1]))
    return np.maximum(r, CENTRE_PIXEL_MEAN_RADIUS, out=r)


def source_extent(params: Mapping, shape: tuple[int, int]) -> np.ndarray:
    """The path length ``kappa * r`` of the content at each pixel (``center`` in window coordinates)."""
    kappa = zoom_kappa(float(params["log_scale"]), math.radians(float(params["rotation_deg"])))
    return np.float32(kappa) * _radius(shape, (float(params["center"][0]), float(params["center"][1])))


def _zoom_warp(image: np.ndarray, centre: tuple[float, float], log_scale: float, rot: float,
               t: float) -> np.ndarray:
    """``dst(y) = image(c + exp(-(a + ib) t) (y - c))``: the content as it is at time t."""
    s = math.exp(-log_scale * t)
    zr, zi = s * math.cos(-rot * t), s * math.sin(-rot * t)
    cx, cy = centre
    m = np.array([[zr, -zi, cx - zr * cx + zi * cy], [zi, zr, cy - zi * cx - zr * cy]])
    h, w = image.shape[:2]
    return cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT)


def apply(params: Mapping, fg: np.ndarray, alpha: np.ndarray,
                   bbox: BBox) -> BlurResult:
    a = float(params["log_scale"])
    b = math.radians(float(params["rotation_deg"]))
    cx, cy = (float(v) for v in params["center"])
    r_max = max_radius(alpha[bbox[0]:bbox[1], bbox[2]:bbox[3]], (cx - bbox[2], cy - bbox[0]))
    kappa = zoom_kappa(a, b)
    # Copies: the fastest point (radius r_max, at the largest scale) moves <= 0.5 px per step.
    fastest = r_max * math.hypot(a, b) * math.exp(0.5 * abs(a))
    n = min(max(1, math.ceil(fastest / motion.MAX_STEP_PX)), MAX_ZOOM_COPIES)
    ts = np.linspace(-0.5, 0.5, 65)
    travel = r_max * np.abs(np.exp((a + 1j * b) * ts) - 1.0).max()
    window = Window.around(bbox, math.ceil(travel) + 2, alpha.shape)
    fg_w, alpha_w = window.take(fg, bbox), window.take(alpha, bbox)
    centre = (cx - window.x0, cy - window.y0)

    # Two levels when many copies are needed: S = sum of m finely spaced copies, then the sum
    # of q coarsely spaced copies of S. The warps form a group (exp of t times a fixed
    # generator), so this gives exactly the n = m q uniformly spaced times of the direct sum,
    # with m + q warps instead of m q (at the price of one more bilinear resampling).
    if n <= ZOOM_DIRECT_COPIES:
        m, q = n, 1
    else:
        m = math.ceil(math.sqrt(n))
        q = math.ceil(n / m)
    total = m * q
    # One stack [foreground, alpha, alpha * E_src] warped at once (one 5-channel warp is
    # cheaper than 3 + 2). E_src = kappa * |x - c| at the source pixel, so the extent map is a
    # coverage-weighted mean of source extents (never above extent_px).
    radius = _radius(alpha_w.shape, centre)
    stack = cv2.merge([fg_w, alpha_w, alpha_w * (np.float32(kappa) * radius)])
    acc = np.zeros_like(stack)
    for j in range(m):
        acc += _zoom_warp(stack, centre, a, b, (j + 0.5 - 0.5 * m) / total)
    if q > 1:
        fine, acc = acc, np.zeros_like(stack)
        for i in range(q):
            acc += _zoom_warp(fine, centre, a, b, -0.5 + (i + 0.5) / q)
    acc *= np.float32(1.0 / total)
    channels = 1 if fg_w.ndim == 2 else fg_w.shape[2]
    # Contiguous copies: OpenCV would copy the strided channel views anyway, more slowly.
    acc_fg = np.ascontiguousarray(acc[..., 0] if channels == 1 else acc[..., :channels])
    acc_alpha = np.ascontiguousarray(acc[..., channels])
    acc_extent = acc[..., channels + 1]

    def extent_map(alpha_b: np.ndarray, keep: np.ndarray) -> np.ndarray:
        return np.divide(acc_extent, alpha_b, out=np.zeros_like(alpha_b), where=keep)

    return finish(window, acc_fg, acc_alpha, fg.shape, extent_map)
