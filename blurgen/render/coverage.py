"""The exact time-integrated coverage of a moving mesh: the alpha the labels use, without path tracing.

Cycles' alpha of a motion-blurred render estimates, per pixel, the integral over the shutter time
and the pixel filter of "the camera ray hits the object". Its estimate at S samples per pixel
misses a pixel the object covers for less than about 1/S of that integral (the faint tails of a
streak), so the support ``alpha > 0`` and every label built on it shrink at low S
(docs/render.md, Labels). Here the same integral is computed without samples, from what the job
already knows: the mesh's triangles (in the file's coordinates, exported once by Blender) and
the pose at any instant (``PreparedItem.camera_from_file``):

* time: the silhouette (the union of the projected triangles) is rasterised at M + 1 instants
  spread evenly over the interval, endpoints included, and averaged with the trapezoid rule, M
  chosen so that no vertex moves more than ``step_px`` pixels between two of them. With the
  endpoints in, the swept region's ends are where the motion puts them, not half a step short;
* space: each silhouette is point-sampled (:func:`fill_triangles`) at ``supersample`` x
  ``supersample`` points per pixel, then filtered with Cycles' pixel filter (Blackman-Harris, separable, nonzero for offsets of
  less than the filter width from the pixel centre: ``filter_width`` 1.5 px reaches 1.5 px) and
  read at the pixel centres;
* coverage below ``floor`` (1/256) is set to 0, so the support ``alpha > 0`` is that of a render
  that can see coverage down to about 1/256 (a 256-spp render's), not the ring of pixels that
  only the filter's faint tails reach.

Deterministic, independent of the colour samples, and only the object's bounding box (plus the
filter's reach) is rasterised. What remains is a discretisation error (M and the supersampling),
measured against Cycles in ``bench/render_labels.py`` and bounded in the tests.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from blurgen.render.flow import project, to_camera

_BH = (0.35875, -0.48829, 0.14128, -0.01168)  # Blackman-Harris coefficients


def fill_triangles(canvas: np.ndarray, tris: np.ndarray) -> None:
    """Set to 1 every sample of ``canvas`` (row y, column x: the point (x, y)) inside a triangle.

    Point sampling by scanlines: on every sample row a triangle crosses, its span [left, right]
    is where the row meets its edges, and the samples x with left <= x <= right are set. The
    spans of all triangles are marked at once in a difference image (+1 at the first sample, -1
    past the last) whose running sum along x counts the triangles over each sample: the cost
    follows the rows, not the triangles' boxes (a mesh's long thin triangles have large boxes).
    (OpenCV's polygon filler is not used: it fills each row from round(left) to round(right)
    inclusive, half a sample too wide on each side, a bias that shows in every label; several
    polygons in one call are filled by the even-odd rule, so overlaps would cancel.)
    """
    h, w = canvas.shape
    tris = np.asarray(tris, dtype=np.float64)
    y0 = np.maximum(np.ceil(tris[:, :, 1].min(axis=1)), 0).astype(np.int64)
    y1 = np.minimum(np.floor(tris[:, :, 1].max(axis=1)), h - 1).astype(np.int64)
    rows = np.maximum(y1 - y0 + 1, 0)
    if not rows.any():
        return
    which = np.repeat(np.arange(len(tris)), rows)
    y = (y0[which] + np.arange(int(rows.sum())) - np.repeat(np.cumsum(rows) - rows, rows)).astype(np.float64)
    left, right = np.full(len(y), np.inf), np.full(len(y), -np.inf)
    for k in range(3):
        a, b = tris[which, k], tris[which, (k + 1) % 3]
        dy = b[:, 1] - a[:, 1]
        crosses = (y - a[:, 1]) * (y - b[:, 1]) <= 0
        with np.errstate(divide="ignore", invalid="ignore"):
            x = np.where(dy != 0, a[:, 0] + (y - a[:, 1]) * (b[:, 0] - a[:, 0]) / dy, a[:, 0])
        flat = crosses & (dy == 0)  # an edge along the row: both its ends bound the span
        lo = np.where(flat, np.minimum(a[:, 0], b[:, 0]), x)
        hi = np.where(flat, np.maximum(a[:, 0], b[:, 0]), x)
        left = np.where(crosses, np.minimum(left, lo), left)
        right = np.where(crosses, np.maximum(right, hi), right)
    first = np.maximum(np.ceil(left), 0).astype(np.int64)
    last = np.minimum(np.floor(right), w - 1).astype(np.int64)
    keep = first <= last
    iy = y[keep].astype(np.int64)
    marks = np.zeros((h, w + 1), np.int32)
    np.add.at(marks, (iy, first[keep]), 1)
    np.add.at(marks, (iy, last[keep] + 1), -1)
    canvas[np.cumsum(marks[:, :w], axis=1) > 0] = 1


def blackman_harris(offset: np.ndarray, width: float) -> np.ndarray:
    """The pixel filter's 1D profile at ``offset`` pixels from the centre, zero from ``width`` on."""
    x = np.asarray(offset, dtype=np.float64) / (2.0 * width) + 0.5
    value = sum(c * np.cos(2.0 * math.pi * k * x) for k, c in enumerate(_BH))
    return np.where(np.abs(offset) < width, value, 0.0)


def filter_taps(supersample: int, width: float) -> tuple[np.ndarray, int]:
    """Normalised weights of the sub-pixel rows (or columns) around a pixel, and the reach in pixels.

    The taps cover ``reach`` whole pixels on each side of the pixel: sub-pixel ``a`` of the
    window sits at ``(a + 0.5) / supersample - reach - 0.5`` pixels from the pixel centre.
    """
    reach = max(0, math.ceil(width - 0.5))
    taps = np.arange((2 * reach + 1) * supersample)
    weights = blackman_harris((taps + 0.5) / supersample - reach - 0.5, width)
    return weights / weights.sum(), reach


class MeshCoverage:
    """The coverage of one mesh moving on one trajectory, for any interval of its instants.

    ``vertices`` (N, 3) and ``faces`` (F, 3) in the mesh file's coordinates; ``pose_at(t)``: the
    4x4 camera_from_file pose (OpenCV axes) at instant t; ``intrinsics``: K; ``size``: (W, H).
    """

    def __init__(self, vertices: np.ndarray, faces: np.ndarray, pose_at: Callable[[float], np.ndarray],
                 intrinsics: np.ndarray, size: tuple[int, int], *, filter_width: float = 1.5,
                 supersample: int = 4, step_px: float = 0.5, floor: float = 1.0 / 256):
        self.vertices = np.asarray(vertices, dtype=np.float64)
        self.faces = np.asarray(faces, dtype=np.int64)
        if self.vertices.ndim != 2 or self.vertices.shape[1] != 3 or self.faces.ndim != 2 \
                or self.faces.shape[1] != 3 or (self.faces.size and self.faces.max() >= len(self.vertices)):
            raise ValueError(f"need (N, 3) vertices and (F, 3) faces indexing them, got "
                             f"{self.vertices.shape} and {self.faces.shape}")
        if supersample < 1 or step_px <= 0:
            raise ValueError("supersample must be >= 1 and step_px > 0")
        self.pose_at, self.intrinsics = pose_at, np.asarray(intrinsics, dtype=np.float64)
        self.width, self.height = size
        self.supersample, self.step_px, self.floor = supersample, step_px, floor
        self.taps, self.reach = filter_taps(supersample, filter_width)

    def points(self, t: float) -> np.ndarray:
        """(N, 2) pixel coordinates of the vertices at instant t (NaN behind the camera)."""
        return project(to_camera(self.vertices, self.pose_at(t)), self.intrinsics)[0]

    def instants(self, t0: float, t1: float) -> np.ndarray:
        """t0..t1 in M equal steps, M the fewest that keep every vertex within ``step_px`` a step."""
        if t1 <= t0:
            return np.array([t0])
        # the path of a vertex is bent by the rotation: its length over 4 chords is a close bound
        marks = [self.points(t0 + (t1 - t0) * q / 4) for q in range(5)]
        travel = sum(np.linalg.norm(b - a, axis=1) for a, b in zip(marks, marks[1:]))
        steps = max(1, math.ceil(float(np.nanmax(travel)) / self.step_px))
        return np.linspace(t0, t1, steps + 1)

    def alpha(self, t0: float, t1: float | None = None) -> np.ndarray:
        """(H, W) float32 coverage averaged over [t0, t1] (t1 None or t0: the sharp instant t0)."""
        times = self.instants(t0, t0 if t1 is None else t1)
        frames = [self.points(t) for t in times]
        out = np.zeros((self.height, self.width), np.float32)
        every = np.concatenate(frames)
        if not np.isfinite(every).all():
            raise ValueError("the mesh crosses the camera plane: its coverage is not a projection")
        # output pixels whose filter can reach the object, clipped to the image
        x0 = max(0, math.floor(every[:, 0].min()) - self.reach - 1)
        y0 = max(0, math.floor(every[:, 1].min()) - self.reach - 1)
        x1 = min(self.width, math.ceil(every[:, 0].max()) + self.reach + 1)
        y1 = min(self.height, math.ceil(every[:, 1].max()) + self.reach + 1)
        if x1 <= x0 or y1 <= y0:
            return out
        s, r = self.supersample, self.reach
        # canvas sample (i, j) is the point ((j + 0.5) / s, (i + 0.5) / s) pixels from the canvas
        # origin, the corner of pixel (y0 - r, x0 - r)
        origin = np.array([x0 - r, y0 - r], np.float64)
        canvas = np.zeros(((y1 - y0 + 2 * r) * s, (x1 - x0 + 2 * r) * s), np.uint8)
        total = np.zeros(canvas.shape, np.uint16 if len(times) < 30000 else np.uint32)
        for m, uv in enumerate(frames):
            canvas.fill(0)
            fill_triangles(canvas, ((uv - origin) * s - 0.5)[self.faces])
            # trapezoid rule: the two endpoints weigh half an inner instant
            weight = 1 if (m in (0, len(times) - 1) and len(times) > 1) else 2
            np.add(total, canvas if weight == 1 else canvas * np.uint8(2), out=total, casting="unsafe")
        # weights 1, 2, ..., 2, 1 sum to 2 M (one instant alone: 2)
        covered = total.astype(np.float32) * np.float32(1.0 / (2 * max(1, len(times) - 1)))
        out[y0:y1, x0:x1] = self._filter(covered, y1 - y0, x1 - x0)
        return out

    def _filter(self, covered: np.ndarray, rows: int, cols: int) -> np.ndarray:
        """The pixel filter over the supersampled coverage, read at each output pixel's centre."""
        s = self.supersample
        across = np.zeros((rows, covered.shape[1]), np.float32)
        for a, w in enumerate(self.taps):
            across += np.float32(w) * covered[a:a + rows * s:s]
        out = np.zeros((rows, cols), np.float32)
        for a, w in enumerate(self.taps):
            out += np.float32(w) * across[:, a:a + cols * s:s]
        # below the floor: the far tails of the filter (Blackman-Harris weighs offsets beyond
        # about 1.1 px by less than 1e-3), coverage no render at practical samples shows; without
        # the floor the support alpha > 0 would grow by a ring of such pixels (docs/render.md)
        out[out < self.floor] = 0.0
        return np.clip(out, 0.0, 1.0, out=out)
