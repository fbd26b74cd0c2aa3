"""Motion paths and point-spread functions (PSFs) for the 2D blur operators.

Conventions (shared by every blur type in :mod:`blurgen.composite.blurs`):

- Coordinates are pixels, ``(x, y)`` with x right and y down. An angle ``angle_deg`` is the
  direction ``(cos a, sin a)`` in these coordinates, so positive angles turn clockwise on screen.
- A *path* ``p(t)`` is the displacement of the content during the exposure, ``t`` in [0, 1]
  (normalised exposure time). It is stored as vertices at uniform times (vertex ``k`` of ``K``
  segments is ``p(k / K)``), linear in time between vertices. Paths are centred on mid-exposure,
  ``p(1/2) = 0``: the sharp image is the object at mid-exposure (as in GoPro-style data sets,
  where the sharp frame is the middle one), so blurring never moves an object as a whole.
- Temporal integration: ``blurred(x) = integral over t of F(x - p(t))``. For space-invariant
  motion this is a convolution with the PSF ``K``, the time density of ``p``:
  ``K[R + dy, R + dx]`` is the fraction of the exposure spent at displacement ``(dx, dy)``.
  "Enough copies that no gaps show": the path is sampled with steps of at most 0.5 px and each
  sample is splatted bilinearly (the same as summing bilinearly warped copies of ``F``, but done
  once on a small kernel). Kernels are odd-sized, centred, and sum to one.
- ``cv2.filter2D`` correlates; :func:`convolve_psf` flips the kernel so that a bright pixel at
  ``q`` becomes ``K`` placed with its centre on ``q`` (the content's path, not its mirror image).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

# Largest distance the content may travel between two consecutive samples of a path (px).
MAX_STEP_PX = 0.5

# cv2.filter2D switches to a DFT for kernels of at least 130 elements (float32 with SSE3; 50
# without it, per OpenCV's dftFilter2D). The DFT costs the same however sparse the kernel is;
# the direct path only visits non-zero taps, and motion PSFs are thin curves, so we cut big
# kernels into tiles below the threshold (see convolve_psf). The tiling is fixed, not read from
# this CPU's features: the same tiles on every farm node keep the rounding, and so the bytes,
# the same (on a CPU without SSE3, tiles of 50 to 129 taps would take OpenCV's DFT: slower, and
# rounded differently).
_DFT_MIN_AREA = 130
# Tile shapes tried for a sparse kernel (all below the DFT threshold); elongated ones cover a
# nearly horizontal or vertical streak in few passes.
_TILE_SHAPES = [(h, (_DFT_MIN_AREA - 1) // h) for h in (1, 2, 3, 5, 7)]
_TILE_SHAPES += [(w, h) for h, w in _TILE_SHAPES] + [(int(math.isqrt(_DFT_MIN_AREA - 1)),) * 2]
# Above this many tile passes a single DFT is cheaper (measured on 300x300x4 float32 crops).
_MAX_TILE_PASSES = 12


def direction(angle_deg: float) -> np.ndarray:
    """Unit vector ``(cos a, sin a)`` in image coordinates (x right, y down)."""
    a = math.radians(angle_deg)
    return np.array([math.cos(a), math.sin(a)])


def path_length(vertices: np.ndarray) -> float:
    """Length of the polyline through ``vertices`` (N x 2)."""
    v = np.asarray(vertices, dtype=np.float64)
    return float(np.hypot(*np.diff(v, axis=0).T).sum()) if len(v) > 1 else 0.0


def point_at_time(vertices: np.ndarray, t: float) -> np.ndarray:
    """Position on a time-uniform polyline at normalised time ``t`` in [0, 1]."""
    v = np.asarray(vertices, dtype=np.float64)
    segments = len(v) - 1
    if segments == 0:
        return v[0].copy()
    s = min(max(t, 0.0), 1.0) * segments
    k = min(int(s), segments - 1)
    return v[k] + (s - k) * (v[k + 1] - v[k])


def centre_on_mid_exposure(vertices: np.ndarray) -> np.ndarray:
    """Shift a time-uniform path so that ``p(1/2) = 0``."""
    v = np.asarray(vertices, dtype=np.float64)
    return v - point_at_time(v, 0.5)


def straight_path(extent_px: float, angle_deg: float) -> np.ndarray:
    """Constant velocity from ``-L/2 * u`` to ``+L/2 * u``: two vertices."""
    half = 0.5 * extent_px * direction(angle_deg)
    return np.stack([-half, half])


def bezier_points(control_points: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Quadratic Bezier ``B(t)`` for control points (3 x 2) at parameters ``t`` (shape (n,))."""
    p0, p1, p2 = np.asarray(control_points, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)[:, None]
    return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2


def bezier_path(control_points: np.ndarray) -> np.ndarray:
    """Time-uniform vertices of a quadratic Bezier whose parameter is the exposure time.

    The speed |B'(t)| is at most ``2 * max(|P1 - P0|, |P2 - P1|)`` (B' is a linear Bezier of
    those two vectors), so that many segments per unit time keep every step <= MAX_STEP_PX.
    """
    p = np.asarray(control_points, dtype=np.float64)
    max_speed = 2.0 * max(np.hypot(*(p[1] - p[0])), np.hypot(*(p[2] - p[1])))
    segments = max(1, math.ceil(max_speed / MAX_STEP_PX))
    return bezier_points(p, np.linspace(0.0, 1.0, segments + 1))


def unit_bezier_arc_length(curvature: float) -> float:
    """Arc length of the quadratic Bezier with chord 1 and control point ``curvature`` off the
    chord's midpoint (perpendicular). Scale-invariant: the arc for chord ``c`` is ``c`` times it."""
    p = np.array([[-0.5, 0.0], [0.0, curvature], [0.5, 0.0]])
    return path_length(bezier_points(p, np.linspace(0.0, 1.0, 4097)))


def curved_control_points(extent_px: float, angle_deg: float, curvature: float) -> np.ndarray:
    """Control points (3 x 2) of a quadratic Bezier of arc length ``extent_px``.

    The chord runs along ``angle_deg``; the control point sits ``curvature * chord`` off the
    chord's midpoint, to the right of the motion for positive curvature (y down). The curve is
    then shifted so that its mid-exposure point B(1/2) is the origin.
    """
    chord = extent_px / unit_bezier_arc_length(curvature) if extent_px > 0 else 0.0
    u = direction(angle_deg)
    normal = np.array([-u[1], u[0]])
    p = np.stack([-0.5 * chord * u, curvature * chord * normal, 0.5 * chord * u])
    return p - bezier_points(p, np.array([0.5]))[0]


def random_walk_path(rng: np.random.Generator, extent_px: float, steps: int,
                     momentum: float) -> np.ndarray:
    """Camera-shake trajectory: ``steps`` vertices of a walk with inertia, length ``extent_px``.

    Velocity is an AR(1) process, ``v_k = momentum * v_(k-1) + sqrt(1 - momentum^2) * a_k`` with
    Gaussian accelerations ``a_k``: a hand does not change direction instantly, so the path
    wanders smoothly instead of zig-zagging like white noise. Scaled to the requested length
    and centred on mid-exposure.
    """
    if steps < 2:
        raise ValueError(f"a random walk needs at least 2 vertices, got {steps}")
    accel = rng.standard_normal((steps - 1, 2))
    velocity = np.empty_like(accel)
    v = accel[0]
    velocity[0] = v
    gain = math.sqrt(max(1.0 - momentum**2, 0.0))
    for k in range(1, steps - 1):
        v = momentum * v + gain * accel[k]
        velocity[k] = v
    vertices = np.concatenate([np.zeros((1, 2)), np.cumsum(velocity, axis=0)])
    length = path_length(vertices)
    vertices = vertices * (extent_px / length) if length > 0 else vertices * 0.0
    return centre_on_mid_exposure(vertices)


def resample_path(vertices: np.ndarray, max_step: float = MAX_STEP_PX) -> tuple[np.ndarray, np.ndarray]:
    """Dense time samples of a time-uniform path: ``(points N x 2, weights N)``, weights sum to 1.

    Each segment is the same share of the exposure; it is cut into enough sub-steps that the
    content moves at most ``max_step`` per sub-step, sampled at the sub-steps' midpoints (the
    midpoint rule for the time integral), each weighted by its duration.
    """
    v = np.asarray(vertices, dtype=np.float64)
    if len(v) == 1:
        return v.copy(), np.ones(1)
    seg = np.diff(v, axis=0)
    counts = np.maximum(1, np.ceil(np.hypot(*seg.T) / max_step)).astype(np.int64)
    owner = np.repeat(np.arange(len(seg)), counts)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    frac = (np.arange(counts.sum()) - first[owner] + 0.5) / counts[owner]
    points = v[owner] + frac[:, None] * seg[owner]
    weights = 1.0 / (len(seg) * counts[owner])
    return points, weights


def splat_psf(points: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """PSF kernel (odd square, float32, sums to 1) from weighted displacement samples.

    Each sample is split bilinearly over its four neighbouring integer displacements, so a
    sub-pixel path gives a smooth kernel. ``K[R + dy, R + dx]`` holds displacement (dx, dy).
    """
    pts = np.asarray(points, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    radius = int(math.floor(np.abs(pts).max(initial=0.0))) + 1
    size = 2 * radius + 1
    shifted = pts + radius
    base = np.floor(shifted).astype(np.int64)
    fx, fy = (shifted - base).T
    bx, by = base.T
    kernel = np.zeros(size * size)
    for dx, dy, share in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)),
                          (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
        kernel += np.bincount((by + dy) * size + bx + dx, weights=w * share, minlength=size * size)
    kernel = kernel.reshape(size, size)
    return (kernel / kernel.sum()).astype(np.float32)


def path_psf(vertices: np.ndarray) -> np.ndarray:
    """PSF of a time-uniform path (dense resampling + bilinear splat)."""
    return splat_psf(*resample_path(vertices))


def trim_psf(kernel: np.ndarray) -> np.ndarray:
    """Smallest odd, centred kernel holding all non-zero taps of ``kernel`` (same PSF)."""
    radius = kernel.shape[0] // 2
    ys, xs = np.nonzero(kernel)
    if len(ys) == 0:
        return kernel
    r = int(max(np.abs(ys - radius).max(), np.abs(xs - radius).max()))
    return kernel[radius - r:radius + r + 1, radius - r:radius + r + 1]


def _tiles(corr: np.ndarray) -> list[tuple[np.ndarray, int, int, int, int]]:
    """Cut a correlation kernel into sub-kernels small enough for filter2D's direct path.

    Returns (sub_kernel, top, left, anchor_y, anchor_x) per non-empty tile, trimmed to its
    non-zero taps, using the tile shape that needs the fewest passes.
    """
    ys, xs = np.nonzero(corr)
    best = None
    for th, tw in _TILE_SHAPES:
        ids = np.unique((ys // th) * (corr.shape[1] // tw + 1) + xs // tw)
        if best is None or len(ids) < len(best[2]):
            best = (th, tw, ids)
    th, tw, _ = best
    ay, ax = corr.shape[0] // 2, corr.shape[1] // 2
    tiles = []
    for ty in range(0, corr.shape[0], th):
        for tx in range(0, corr.shape[1], tw):
            sub = corr[ty:ty + th, tx:tx + tw]
            sy, sx = np.nonzero(sub)
            if len(sy) == 0:
                continue
            top, left = ty + sy.min(), tx + sx.min()
            piece = np.ascontiguousarray(corr[top:ty + sy.max() + 1, left:tx + sx.max() + 1])
            # Anchor inside the piece, as close as possible to the kernel's anchor: the shift
            # left over then only ever reads values that lie outside the image (zeros anyway),
            # so no margin is needed for the result to be exact.
            tiles.append((piece, top, left, min(max(ay - top, 0), piece.shape[0] - 1),
                          min(max(ax - left, 0), piece.shape[1] - 1)))
    return tiles


# One slot holding (key, tiles) of the last kernel, replaced whole (safe if threads share it).
_LAST_TILES: list = [None]


def _cached_tiles(corr: np.ndarray) -> list[tuple[np.ndarray, int, int, int, int]]:
    """``_tiles(corr)``, remembered for the last kernel: every operator convolves foreground
    and coverage with the same PSF one after the other, and cutting it costs ~1 ms."""
    key = (corr.shape, corr.tobytes())
    cached = _LAST_TILES[0]
    if cached is None or cached[0] != key:
        cached = (key, _tiles(corr))
        _LAST_TILES[0] = cached
    return cached[1]


def _shift_add(out: np.ndarray, part: np.ndarray, oy: int, ox: int) -> None:
    """``out[y, x] += part[y + oy, x + ox]`` where both exist."""
    h, w = out.shape[:2]
    y0, y1 = max(0, -oy), min(h, h - oy)
    x0, x1 = max(0, -ox), min(w, w - ox)
    if y1 > y0 and x1 > x0:
        out[y0:y1, x0:x1] += part[y0 + oy:y1 + oy, x0 + ox:x1 + ox]


def convolve_psf(image: np.ndarray, kernel: np.ndarray, nonnegative: bool = False) -> np.ndarray:
    """Convolve ``image`` (H x W or H x W x C float32) with a centred odd PSF, zeros outside.

    A bright pixel at q becomes ``kernel`` centred on q. filter2D correlates, so it gets the
    flipped kernel. Large sparse kernels are split into tiles that stay on filter2D's direct
    path (cost ~ number of non-zero taps, exact); if that would take too many passes, one
    DFT-based filter2D is used instead (rounding noise ~1e-7 of the largest value; with
    ``nonnegative`` the result is clipped at 0, for inputs known to be >= 0).
    """
    kernel = trim_psf(np.asarray(kernel, dtype=np.float32))
    corr = np.ascontiguousarray(kernel[::-1, ::-1])
    image = np.ascontiguousarray(image, dtype=np.float32)
    if corr.size < _DFT_MIN_AREA:
        return cv2.filter2D(image, -1, corr, borderType=cv2.BORDER_CONSTANT)
    tiles = _cached_tiles(corr)
    if len(tiles) > _MAX_TILE_PASSES:
        out = cv2.filter2D(image, -1, corr, borderType=cv2.BORDER_CONSTANT)
        return np.maximum(out, 0.0, out=out) if nonnegative else out
    ay, ax = corr.shape[0] // 2, corr.shape[1] // 2
    out = np.zeros_like(image)
    for piece, top, left, py, px in tiles:
        part = cv2.filter2D(image, -1, piece, anchor=(px, py), borderType=cv2.BORDER_CONSTANT)
        _shift_add(out, part, top + py - ay, left + px - ax)
    return out
