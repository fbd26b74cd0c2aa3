"""What the blur operators share: their result, the window they work in, and drawing helpers.

Each operator blurs a premultiplied linear foreground ``F`` (H x W x C) and its coverage ``a``
(H x W) with the same linear operator, so ``F_b + (1 - a_b) * B`` composites correctly, and
reports the motion extent of the content arriving at every pixel. Motion conventions (paths,
angles, PSFs, mid-exposure centring) are those of :mod:`blurgen.composite.motion`.

``extent`` output: the coverage-weighted mean extent of the content arriving at each pixel,
``blur(a * E_src) / blur(a)`` where ``blur(a) > ALPHA_EPS`` (else 0; ``a_b`` and ``F_b`` are
zeroed there too, so ``a_b > 0`` exactly where the extent is defined). ``E_src`` is the path
length for space-invariant types (where the ratio is that constant); see each type's module
for the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

from blurgen.composite import motion

# Blurred coverage at or below this is treated as no coverage (extent 0, foreground zeroed).
ALPHA_EPS = 1e-6

BBox = tuple[int, int, int, int]  # (y0, y1, x0, x1) of alpha > 0, exclusive ends


@dataclass(frozen=True)
class BlurResult:
    foreground: np.ndarray  # H x W x C float32 blurred premultiplied foreground
    alpha: np.ndarray  # H x W float32 blurred coverage in [0, 1]
    extent: np.ndarray  # H x W float32 mean motion extent (px) of the content arriving; 0 where alpha is 0


# --- drawing parameters ----------------------------------------------------------------------------

def uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return float(rng.uniform(bounds[0], bounds[1]))


def draw_angle(rng: np.random.Generator) -> float:
    """A uniformly random direction of motion, degrees."""
    return uniform(rng, (0.0, 360.0))


def random_sign(rng: np.random.Generator) -> float:
    return 1.0 if rng.random() < 0.5 else -1.0


def centroid(alpha: np.ndarray) -> tuple[float, float] | None:
    """Alpha-weighted centroid (x, y) in pixel coordinates, None for an empty mask."""
    m = cv2.moments(np.ascontiguousarray(alpha, dtype=np.float32))
    if m["m00"] <= 0:
        return None
    return m["m10"] / m["m00"], m["m01"] / m["m00"]


def max_radius(alpha: np.ndarray, centre: tuple[float, float]) -> float:
    """Largest distance from ``centre`` to a pixel centre with alpha > 0."""
    ys, xs = np.nonzero(alpha > 0)
    if len(xs) == 0:
        return 0.0
    return float(np.sqrt(((xs - centre[0]) ** 2 + (ys - centre[1]) ** 2).max()))


# --- the window an operator works in ---------------------------------------------------------------

@dataclass(frozen=True)
class Window:
    """Rows y0:y1, columns x0:x1 of the image that an operator works on (may extend past the
    image when ``clip`` is off; outside the image there is no content).

    Foreground and alpha stay separate arrays throughout: OpenCV filters 3 + 1 channels as fast
    as 4, and interleaving them with numpy costs more than the blur itself."""

    y0: int
    y1: int
    x0: int
    x1: int

    @classmethod
    def around(cls, bbox: BBox, pad: int, shape: tuple[int, int], clip: bool = True) -> "Window":
        y0, y1, x0, x1 = bbox[0] - pad, bbox[1] + pad, bbox[2] - pad, bbox[3] + pad
        if clip:
            y0, y1, x0, x1 = max(y0, 0), min(y1, shape[0]), max(x0, 0), min(x1, shape[1])
        return cls(y0, y1, x0, x1)

    def take(self, image: np.ndarray, bbox: BBox) -> np.ndarray:
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


def bbox_of(alpha: np.ndarray) -> BBox | None:
    """(y0, y1, x0, x1), exclusive ends, of alpha > 0; None when empty."""
    covered = alpha > 0
    rows = np.flatnonzero(covered.any(axis=1))
    if len(rows) == 0:
        return None
    cols = np.flatnonzero(covered[rows[0]:rows[-1] + 1].any(axis=0))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def finish(window: Window, fg_w: np.ndarray, alpha_w: np.ndarray, fg_shape: tuple[int, ...],
           extent_src: float | Callable[[np.ndarray, np.ndarray], np.ndarray]) -> BlurResult:
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
    # Written straight into the views of the full-size outputs.
    copy_where(full_fg[iy, ix], fg_w[wy, wx], keep[wy, wx])
    view = full_alpha[iy, ix]
    into(view, cv2.threshold(alpha_w[wy, wx], ALPHA_EPS, 0.0, cv2.THRESH_TOZERO, dst=view)[1])
    if callable(extent_src):
        full_ext[iy, ix] = extent_src(alpha_w, keep)[wy, wx]
    else:
        view = full_ext[iy, ix]
        into(view, cv2.threshold(alpha_w[wy, wx], ALPHA_EPS, float(extent_src),
                                 cv2.THRESH_BINARY, dst=view)[1])
    return BlurResult(full_fg, full_alpha, full_ext)


def into(view: np.ndarray, result: np.ndarray) -> None:
    """Make sure an OpenCV result meant to be written into ``view`` landed there."""
    if not np.may_share_memory(view, result):
        view[...] = result


def copy_where(dst: np.ndarray, src: np.ndarray, mask: np.ndarray) -> None:
    """``dst[mask] = src[mask]`` in place (``mask``: bool, ``dst``'s height and width; ``src``
    cast to ``dst``'s dtype), by OpenCV's masked copy: numpy's boolean gather and scatter, or a
    mask broadcast over the channels, cost about 4x as much."""
    into(dst, cv2.copyTo(np.asarray(src, dtype=dst.dtype), mask.view(np.uint8), dst))


def space_invariant(path: np.ndarray, fg: np.ndarray, alpha: np.ndarray, bbox: BBox) -> BlurResult:
    """The blur along a time-uniform ``path``: one PSF for every pixel, extent = its length."""
    psf = motion.path_psf(path)
    window = Window.around(bbox, psf.shape[0] // 2 + 1, alpha.shape)
    fg_b = motion.convolve_psf(window.take(fg, bbox), psf, nonnegative=True)
    alpha_b = motion.convolve_psf(window.take(alpha, bbox), psf)
    return finish(window, fg_b, alpha_b, fg.shape, motion.path_length(path))
