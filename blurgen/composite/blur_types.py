"""The six 2D motion-blur operators of ``blurgen composite`` and their parameter sampling.

Each operator blurs a premultiplied linear foreground ``F`` (H x W x C) and its coverage ``a``
(H x W) with the same linear operator, so ``F_b + (1 - a_b) * B`` composites correctly, and
reports the motion extent of the content arriving at every pixel. Motion conventions (paths,
angles, PSFs, mid-exposure centring) are those of :mod:`blurgen.composite.motion`.

Types (subtle-blur paper §3.2):

- ``straight``: constant velocity along ``angle_deg`` for ``extent_px`` pixels.
- ``curved``: a quadratic Bezier of arc length ``extent_px``; the Bezier parameter is time.
- ``random_walk``: a camera-shake trajectory (walk with inertia) of length ``extent_px``.
- ``zoom_rotation``: about the instance centre ``c`` (alpha centroid), the content at ``x``
  sits at ``c + exp((a + i b) t) (x - c)`` for t in [-1/2, 1/2] (complex notation, x + iy):
  log-scale ``a`` (``log_scale``: the scale goes from ``exp(-a/2)`` to ``exp(a/2)``) and
  rotation ``b`` (``rotation_deg``, clockwise on screen for positive values) change at constant
  rates. This exponential form of "scale interpolated linearly in t" (the two agree to first
  order) makes the warps a one-parameter group, which lets many copies be made from few warps.
  A point at radius r travels ``r * kappa`` px, ``kappa = |a + ib| sinh(a/2) / (a/2)``;
  ``extent_px`` is the largest travel over the instance's pixels.
- ``edge_ring``: the straight blur, blended with the original by a band weight that is 1 within
  ``band_px`` of the instance boundary (both sides) and falls smoothly to exactly 0 at
  ``band_px``; nothing outside the band changes.
- ``rolling``: a rolling shutter exposes row r over [r d, r d + T]; content moving at velocity v
  gives the straight blur of length L = |v| T shifted by ``v T readout (r - r_c) / H`` on row r
  (``readout`` = frame readout time over exposure time, r_c the instance's centroid row, H the
  image height). Stored as ``row_shift_px`` = ``readout * L / H`` along the motion per row.

``extent`` output: the coverage-weighted mean extent of the content arriving at each pixel,
``blur(a * E_src) / blur(a)`` where ``blur(a) > 1e-6`` (else 0; ``a_b`` and ``F_b`` are zeroed
there too, so ``a_b > 0`` exactly where the extent is defined). ``E_src`` is the path length
(constant for space-invariant types, where the ratio is that constant) and ``kappa * r`` for
zoom_rotation; edge_ring writes ``band weight * L`` at the destination pixel instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import cv2
import numpy as np

from blurgen.assets.noise import smoothstep
from blurgen.composite import motion
from blurgen.errors import BlurgenError

BLUR_TYPES = ("straight", "curved", "zoom_rotation", "random_walk", "edge_ring", "rolling")

# Blurred coverage at or below this is treated as no coverage (extent 0, foreground zeroed).
ALPHA_EPS = 1e-6
# zoom_rotation: at most this many time samples (copies); beyond it steps exceed 0.5 px.
MAX_ZOOM_COPIES = 1024
# zoom_rotation: above this many copies, make them with two levels of warps (see _zoom_rotation).
_ZOOM_DIRECT_COPIES = 8
# rolling: largest shift between neighbouring rows (px); above it rows would tear apart.
MAX_ROW_SHIFT_PX = 0.5


@dataclass(frozen=True)
class BlurShape:
    """Per-type shape ranges (uniform draws between the bounds, inclusive)."""

    curvature: tuple[float, float] = (0.15, 0.6)  # curved: control offset / chord (sign random)
    zoom_share: tuple[float, float] = (0.3, 0.8)  # zoom: |a| / (|a| + |b|), share of the motion from scaling
    shake_steps: tuple[int, int] = (8, 24)  # random_walk: trajectory vertices
    shake_momentum: tuple[float, float] = (0.5, 0.9)  # random_walk: velocity persistence per step
    band_px: tuple[float, float] = (2.0, 10.0)  # edge_ring: band width around the boundary
    readout: tuple[float, float] = (0.5, 3.0)  # rolling: readout time / exposure time

    def __post_init__(self) -> None:
        for name in ("curvature", "zoom_share", "shake_steps", "shake_momentum", "band_px", "readout"):
            lo, hi = getattr(self, name)
            if not lo <= hi:
                raise BlurgenError(f"blur shape {name}: range ({lo}, {hi}) must have low <= high")
        if self.shake_steps[0] < 2:
            raise BlurgenError(f"blur shape shake_steps: need at least 2 vertices, got {self.shake_steps}")
        if not (0.0 <= self.zoom_share[0] and self.zoom_share[1] <= 1.0):
            raise BlurgenError(f"blur shape zoom_share: must lie in [0, 1], got {self.zoom_share}")
        if not (0.0 <= self.shake_momentum[0] and self.shake_momentum[1] < 1.0):
            raise BlurgenError(f"blur shape shake_momentum: must lie in [0, 1), got {self.shake_momentum}")
        if self.curvature[0] < 0 or self.band_px[0] <= 0 or self.readout[0] < 0:
            raise BlurgenError("blur shape: curvature and readout must be >= 0, band_px > 0")


@dataclass(frozen=True)
class BlurResult:
    foreground: np.ndarray  # H x W x C float32 blurred premultiplied foreground
    alpha: np.ndarray  # H x W float32 blurred coverage in [0, 1]
    extent: np.ndarray  # H x W float32 mean motion extent (px) of the content arriving; 0 where alpha is 0


# --- parameter sampling -------------------------------------------------------------------------

def _uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return float(rng.uniform(bounds[0], bounds[1]))


def _centroid(alpha: np.ndarray) -> tuple[float, float] | None:
    """Alpha-weighted centroid (x, y) in pixel coordinates, None for an empty mask."""
    m = cv2.moments(np.ascontiguousarray(alpha, dtype=np.float32))
    if m["m00"] <= 0:
        return None
    return m["m10"] / m["m00"], m["m01"] / m["m00"]


def _max_radius(alpha: np.ndarray, centre: tuple[float, float]) -> float:
    """Largest distance from ``centre`` to a pixel centre with alpha > 0."""
    ys, xs = np.nonzero(alpha > 0)
    if len(xs) == 0:
        return 0.0
    return float(np.sqrt(((xs - centre[0]) ** 2 + (ys - centre[1]) ** 2).max()))


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


def sample_params(kind: str, rng: np.random.Generator, extent_px: float, alpha: np.ndarray,
                  shape: BlurShape = BlurShape()) -> dict:
    """JSON-serialisable params (plain floats/lists) fully determining the blur.

    Always ``type``, ``extent_px`` and ``angle_deg`` (zoom: ``center``, ``log_scale``,
    ``rotation_deg``). ``extent_px`` is the motion extent of the instance in px: the path length
    travelled by its content during the exposure (zoom_rotation: the largest over its pixels).
    ``alpha`` (H x W) is the instance's coverage; zoom_rotation takes its centre and radius from
    it, rolling its centroid row and the image height. An instance with no coverage cannot zoom
    and gets ``extent_px`` 0 (params describe what is applied).
    """
    if kind not in BLUR_TYPES:
        raise BlurgenError(f"unknown blur type {kind!r}; choose one of {', '.join(BLUR_TYPES)}")
    extent_px = float(extent_px)
    if not (math.isfinite(extent_px) and extent_px >= 0):
        raise BlurgenError(f"blur extent must be a finite number of pixels >= 0, got {extent_px}")
    alpha = np.asarray(alpha)
    if alpha.ndim != 2:
        raise BlurgenError(f"alpha must be an H x W array, got shape {alpha.shape}")
    params: dict = {"type": kind, "extent_px": extent_px}

    if kind in ("straight", "curved", "edge_ring", "rolling"):
        params["angle_deg"] = _uniform(rng, (0.0, 360.0))
    if kind == "curved":
        curvature = _uniform(rng, shape.curvature) * (1.0 if rng.random() < 0.5 else -1.0)
        points = motion.curved_control_points(extent_px, params["angle_deg"], curvature)
        params.update(curvature=curvature, chord_px=float(np.hypot(*(points[2] - points[0]))),
                      control_points=points.tolist())
    elif kind == "random_walk":
        steps = int(rng.integers(shape.shake_steps[0], shape.shake_steps[1] + 1))
        momentum = _uniform(rng, shape.shake_momentum)
        path = motion.random_walk_path(rng, extent_px, steps, momentum)
        # angle_deg: overall drift direction (first to last vertex), for reports only; the
        # walk's direction is already uniformly random.
        drift = path[-1] - path[0]
        params["angle_deg"] = float(math.degrees(math.atan2(drift[1], drift[0])) % 360.0)
        params.update(steps=steps, momentum=momentum, path=path.tolist())
    elif kind == "edge_ring":
        params["band_px"] = _uniform(rng, shape.band_px)
    elif kind == "rolling":
        height = alpha.shape[0]
        readout = _uniform(rng, shape.readout)
        if extent_px > 0:  # neighbouring rows must not tear apart
            readout = min(readout, MAX_ROW_SHIFT_PX * height / extent_px)
        centre = _centroid(alpha)
        params.update(readout=readout, image_height=height,
                      center_row=float(centre[1]) if centre else 0.5 * (height - 1),
                      row_shift_px=readout * extent_px / height)
    elif kind == "zoom_rotation":
        share = _uniform(rng, shape.zoom_share)
        zoom_sign = 1.0 if rng.random() < 0.5 else -1.0
        turn_sign = 1.0 if rng.random() < 0.5 else -1.0
        centre = _centroid(alpha)
        r_max = _max_radius(alpha, centre) if centre else 0.0
        if centre is None:
            centre = (0.5 * (alpha.shape[1] - 1), 0.5 * (alpha.shape[0] - 1))
        a = b = 0.0
        if r_max > 0 and extent_px > 0:
            a, b = _solve_zoom(extent_px, r_max, share)
            a, b = zoom_sign * a, turn_sign * b
        params.update(extent_px=r_max * zoom_kappa(a, b) if r_max > 0 else 0.0,
                      center=[float(centre[0]), float(centre[1])], log_scale=a,
                      rotation_deg=math.degrees(b), zoom_share=share)
    return params


# --- operators ----------------------------------------------------------------------------------

def psf_for(params: Mapping) -> np.ndarray:
    """PSF kernel of a space-invariant type (straight, curved, random_walk, edge_ring, rolling)."""
    return motion.path_psf(_path(params))


def _path(params: Mapping) -> np.ndarray:
    kind = params["type"]
    if kind in ("straight", "edge_ring", "rolling"):
        return motion.straight_path(float(params["extent_px"]), float(params["angle_deg"]))
    if kind == "curved":
        return motion.bezier_path(np.asarray(params["control_points"], dtype=np.float64))
    if kind == "random_walk":
        return np.asarray(params["path"], dtype=np.float64)
    raise BlurgenError(f"blur type {kind!r} has no single PSF")


@dataclass(frozen=True)
class _Window:
    """Rows y0:y1, columns x0:x1 of the image that an operator works on (may extend past the
    image when ``clip`` is off; outside the image there is no content).

    Foreground and alpha stay separate arrays throughout: OpenCV filters 3 + 1 channels as fast
    as 4, and interleaving them with numpy costs more than the blur itself."""

    y0: int
    y1: int
    x0: int
    x1: int

    @classmethod
    def around(cls, bbox: tuple[int, int, int, int], pad: int, shape: tuple[int, int],
               clip: bool = True) -> "_Window":
        y0, y1, x0, x1 = bbox[0] - pad, bbox[1] + pad, bbox[2] - pad, bbox[3] + pad
        if clip:
            y0, y1, x0, x1 = max(y0, 0), min(y1, shape[0]), max(x0, 0), min(x1, shape[1])
        return cls(y0, y1, x0, x1)

    def take(self, image: np.ndarray, bbox: tuple[int, int, int, int]) -> np.ndarray:
        """The bbox content of ``image`` on a window-sized float32 array, zeros around it."""
        by0, by1, bx0, bx1 = bbox
        return cv2.copyMakeBorder(image[by0:by1, bx0:bx1], by0 - self.y0, self.y1 - by1,
                                  bx0 - self.x0, self.x1 - bx1, cv2.BORDER_CONSTANT, value=0)

    def inside(self, shape: tuple[int, int]) -> tuple[tuple[slice, slice], tuple[slice, slice]]:
        """(image slices, window slices) of the part of the window inside the image."""
        y0, y1 = max(self.y0, 0), min(self.y1, shape[0])
        x0, x1 = max(self.x0, 0), min(self.x1, shape[1])
        return ((slice(y0, y1), slice(x0, x1)),
                (slice(y0 - self.y0, y1 - self.y0), slice(x0 - self.x0, x1 - self.x0)))


def _bbox(alpha: np.ndarray) -> tuple[int, int, int, int] | None:
    """(y0, y1, x0, x1), exclusive ends, of alpha > 0; None when empty."""
    covered = alpha > 0
    rows = np.flatnonzero(covered.any(axis=1))
    if len(rows) == 0:
        return None
    cols = np.flatnonzero(covered[rows[0]:rows[-1] + 1].any(axis=0))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def _finish(window: _Window, fg_w: np.ndarray, alpha_w: np.ndarray, fg_shape: tuple[int, ...],
            extent_src) -> BlurResult:
    """Full-size outputs from window-sized blurred foreground and alpha.

    Alpha is clipped to [0, 1] and set to 0 at or below ALPHA_EPS; the foreground is zeroed
    there. ``extent_src``: a constant (space-invariant types), or a function
    (alpha_w, keep) -> window-sized extent map (zoom)."""
    shape = fg_shape[:2]
    (iy, ix), (wy, wx) = window.inside(shape)
    alpha_w = cv2.threshold(alpha_w, 1.0, 1.0, cv2.THRESH_TRUNC)[1]
    keep = alpha_w > ALPHA_EPS
    full_fg = np.zeros(fg_shape, np.float32)
    full_alpha = np.zeros(shape, np.float32)
    full_ext = np.zeros(shape, np.float32)
    # OpenCV writes straight into the views of the full-size outputs (_into checks it did).
    _into(full_fg[iy, ix], cv2.copyTo(fg_w[wy, wx], keep[wy, wx].view(np.uint8), full_fg[iy, ix]))
    view = full_alpha[iy, ix]
    _into(view, cv2.threshold(alpha_w[wy, wx], ALPHA_EPS, 0.0, cv2.THRESH_TOZERO, dst=view)[1])
    if callable(extent_src):
        full_ext[iy, ix] = extent_src(alpha_w, keep)[wy, wx]
    else:
        view = full_ext[iy, ix]
        _into(view, cv2.threshold(alpha_w[wy, wx], ALPHA_EPS, float(extent_src),
                                  cv2.THRESH_BINARY, dst=view)[1])
    return BlurResult(full_fg, full_alpha, full_ext)


def _into(view: np.ndarray, result: np.ndarray) -> None:
    """Make sure an OpenCV result meant to be written into ``view`` landed there."""
    if not np.may_share_memory(view, result):
        view[...] = result


def _space_invariant(params: Mapping, fg: np.ndarray, alpha: np.ndarray,
                     bbox: tuple[int, int, int, int]) -> BlurResult:
    path = _path(params)
    psf = motion.path_psf(path)
    window = _Window.around(bbox, psf.shape[0] // 2 + 1, alpha.shape)
    fg_b = motion.convolve_psf(window.take(fg, bbox), psf, nonnegative=True)
    alpha_b = motion.convolve_psf(window.take(alpha, bbox), psf)
    return _finish(window, fg_b, alpha_b, fg.shape, motion.path_length(path))


def _rolling(params: Mapping, fg: np.ndarray, alpha: np.ndarray,
             bbox: tuple[int, int, int, int]) -> BlurResult:
    length = float(params["extent_px"])
    u = motion.direction(float(params["angle_deg"]))
    per_row = float(params["row_shift_px"])
    centre_row = float(params["center_row"])
    if abs(per_row * u[1]) >= 0.95:
        raise BlurgenError(f"rolling blur: row shift {per_row:.3f} px per row along the rows tears "
                           "the image apart; lower the readout or the extent")
    psf = motion.path_psf(motion.straight_path(length, float(params["angle_deg"])))
    radius = psf.shape[0] // 2 + 2
    # Rows far from the centre row shift most; pad for the largest shift, unclipped: content
    # blurred past the frame edge can be shifted back into it.
    reach = max(abs(bbox[0] - radius - centre_row), abs(bbox[1] + radius - centre_row))
    shift = per_row * reach / (1.0 - abs(per_row * u[1]))
    window = _Window.around(bbox, radius + math.ceil(shift) + 1, alpha.shape, clip=False)
    h, w = window.y1 - window.y0, window.x1 - window.x0
    s = per_row * (np.arange(window.y0, window.y1, dtype=np.float64) - centre_row)
    # output(x, r) = blurred(x - s(r) u): a row read out later sees the content further along.
    map_x = (np.arange(w, dtype=np.float64)[None, :] - (s * u[0])[:, None]).astype(np.float32)
    map_y = np.ascontiguousarray(np.broadcast_to(
        (np.arange(h) - s * u[1]).astype(np.float32)[:, None], (h, w)))
    map_xy, map_frac = cv2.convertMaps(map_x, map_y, cv2.CV_16SC2)  # shared by both remaps

    def blur_and_shift(image: np.ndarray, nonnegative: bool) -> np.ndarray:
        blurred = motion.convolve_psf(window.take(image, bbox), psf, nonnegative=nonnegative)
        return cv2.remap(blurred, map_xy, map_frac, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)

    return _finish(window, blur_and_shift(fg, True), blur_and_shift(alpha, False), fg.shape, length)


def edge_band_weight(inside: np.ndarray, band_px: float) -> np.ndarray:
    """Edge-ring blend weight (H x W float32): 1 within ``band_px`` of the boundary of the binary
    instance ``inside`` (either side), falling smoothly to exactly 0 at ``band_px``."""
    # Distance of every pixel centre to the boundary, either side. distanceTransform does not
    # treat the frame as background, so an instance cut by the frame gets no band along the
    # frame. One of the two is 0 at every pixel; the 5x5 mask is within ~2 % of the exact
    # Euclidean distance and 3x faster, plenty for a blend weight.
    inside = np.ascontiguousarray(inside).view(np.uint8)
    dist = cv2.distanceTransform(inside, cv2.DIST_L2, 5)
    dist += cv2.distanceTransform(1 - inside, cv2.DIST_L2, 5)
    dist -= 0.5
    fade = max(0.4 * band_px, min(1.0, band_px))  # smooth fall-off over the band's outer part
    weight = (1.0 - smoothstep(band_px - fade, band_px, dist)).astype(np.float32, copy=False)
    weight[dist >= band_px] = 0.0
    return weight


def _edge_ring(params: Mapping, fg: np.ndarray, alpha: np.ndarray,
               bbox: tuple[int, int, int, int]) -> BlurResult:
    length = float(params["extent_px"])
    band = float(params["band_px"])
    psf = motion.path_psf(motion.straight_path(length, float(params["angle_deg"])))
    window = _Window.around(bbox, max(psf.shape[0] // 2, math.ceil(band)) + 2, alpha.shape)
    alpha_w = window.take(alpha, bbox)
    weight = edge_band_weight(alpha_w > 0.5, band)
    band_mask = weight > 0.0  # nothing outside it changes
    out_fg, out_alpha = fg.copy(), alpha.copy()
    extent = np.zeros(alpha.shape, np.float32)
    if not band_mask.any():
        return BlurResult(out_fg, out_alpha, extent)

    # Blend with the original pixels (not the bbox-only window) and write only the band.
    (iy, ix), _ = window.inside(alpha.shape)  # the window is clipped: all of it is inside
    orig_fg, orig_alpha = fg[iy, ix], alpha[iy, ix]
    fg_b = motion.convolve_psf(window.take(fg, bbox), psf, nonnegative=True)
    alpha_b = motion.convolve_psf(alpha_w, psf)
    mixed_fg = orig_fg + (weight[..., None] if fg.ndim == 3 else weight) * (fg_b - orig_fg)
    np.maximum(mixed_fg, 0.0, out=mixed_fg)
    mixed_alpha = np.clip(orig_alpha + weight * (alpha_b - orig_alpha), 0.0, 1.0)
    mask = band_mask.view(np.uint8)
    _into(out_fg[iy, ix], cv2.copyTo(mixed_fg, mask, out_fg[iy, ix]))
    _into(out_alpha[iy, ix], cv2.copyTo(mixed_alpha, mask, out_alpha[iy, ix]))
    extent[iy, ix] = np.where(band_mask & (mixed_alpha > 0), weight * np.float32(length),
                              np.float32(0.0))
    return BlurResult(out_fg, out_alpha, extent)


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


def _zoom_rotation(params: Mapping, fg: np.ndarray, alpha: np.ndarray,
                   bbox: tuple[int, int, int, int]) -> BlurResult:
    a = float(params["log_scale"])
    b = math.radians(float(params["rotation_deg"]))
    cx, cy = (float(v) for v in params["center"])
    r_max = _max_radius(alpha[bbox[0]:bbox[1], bbox[2]:bbox[3]], (cx - bbox[2], cy - bbox[0]))
    kappa = zoom_kappa(a, b)
    # Copies: the fastest point (radius r_max, at the largest scale) moves <= 0.5 px per step.
    fastest = r_max * math.hypot(a, b) * math.exp(0.5 * abs(a))
    n = min(max(1, math.ceil(fastest / motion.MAX_STEP_PX)), MAX_ZOOM_COPIES)
    ts = np.linspace(-0.5, 0.5, 65)
    travel = r_max * np.abs(np.exp((a + 1j * b) * ts) - 1.0).max()
    window = _Window.around(bbox, math.ceil(travel) + 2, alpha.shape)
    fg_w, alpha_w = window.take(fg, bbox), window.take(alpha, bbox)
    centre = (cx - window.x0, cy - window.y0)

    # Two levels when many copies are needed: S = sum of m finely spaced copies, then the sum
    # of q coarsely spaced copies of S. The warps form a group (exp of t times a fixed
    # generator), so this gives exactly the n = m q uniformly spaced times of the direct sum,
    # with m + q warps instead of m q (at the price of one more bilinear resampling).
    if n <= _ZOOM_DIRECT_COPIES:
        m, q = n, 1
    else:
        m = math.ceil(math.sqrt(n))
        q = math.ceil(n / m)
    total = m * q
    # One stack [foreground, alpha, alpha * E_src] warped at once (one 5-channel warp is
    # cheaper than 3 + 2). E_src = kappa * |x - c| at the source pixel, so the extent map is a
    # coverage-weighted mean of source extents (never above extent_px).
    h, w = alpha_w.shape
    radius = np.hypot(np.arange(w, dtype=np.float32)[None, :] - np.float32(centre[0]),
                      np.arange(h, dtype=np.float32)[:, None] - np.float32(centre[1]))
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

    return _finish(window, acc_fg, acc_alpha, fg.shape, extent_map)


_OPERATORS = {"straight": _space_invariant, "curved": _space_invariant,
              "random_walk": _space_invariant, "rolling": _rolling, "edge_ring": _edge_ring,
              "zoom_rotation": _zoom_rotation}


def apply_blur(params: Mapping, foreground: np.ndarray, alpha: np.ndarray) -> BlurResult:
    """Blur a premultiplied linear foreground (H x W x C, or H x W) and its alpha (H x W).

    The same operator blurs foreground and alpha, so ``F_b + (1 - a_b) * B`` is the right
    composite. Only content where alpha > 0 is blurred (premultiplied: F is 0 elsewhere); the
    result depends only on ``params`` and the inputs. Zero motion (``extent_px`` 0) or an empty
    alpha returns copies of the inputs, bit-exact, with a zero extent map.
    """
    kind = params.get("type")
    if kind not in BLUR_TYPES:
        raise BlurgenError(f"unknown blur type {kind!r}; choose one of {', '.join(BLUR_TYPES)}")
    fg = np.asarray(foreground, dtype=np.float32)
    alpha = np.asarray(alpha, dtype=np.float32)
    if alpha.ndim != 2 or fg.ndim not in (2, 3) or fg.shape[:2] != alpha.shape:
        raise BlurgenError(f"foreground {np.shape(foreground)} and alpha {np.shape(alpha)} must be "
                           "H x W x C (or H x W) and H x W with the same H and W")
    bbox = _bbox(alpha)
    if float(params["extent_px"]) == 0.0 or bbox is None:
        return BlurResult(fg.copy(), alpha.copy(), np.zeros(alpha.shape, np.float32))
    # OpenCV returns single-channel images as H x W: work on those, restore the axis at the end.
    single = fg.ndim == 3 and fg.shape[2] == 1
    result = _OPERATORS[kind](params, fg[..., 0] if single else fg, alpha, bbox)
    if single:
        result = BlurResult(result.foreground[..., None], result.alpha, result.extent)
    return result
