"""Ground truth and filters from an image's alpha: bbox, blur severity and level, coverage, IoU.

``alpha`` is the time-integrated coverage of the object over the exposure (H, W), linear, in
[0, 1]; outside the object's swept region it is exactly 0 (transparent film).

Blur severity (blur-retrieval paper, Eq. 4-5)::

    BS = 1 - sum(beta * alpha) / sum(beta),    beta = erode(alpha > 0, e pixels)

i.e. one minus the mean alpha over the support shrunk by e pixels (the paper: e = 3), which drops
the boundary pixels where alpha fades because of anti-aliasing rather than motion. A sharp
opaque object has BS = 0; the longer the motion, the lower its mean coverage and the higher BS.
Blur level (Eq. 6): ``BL = ceil(10 * BS)`` clamped to 1..10.

Filters (paper §4.1): an image is dropped when the object covers less than 1.5 % of the pixels
("small"), or when the sharp silhouettes at the window's first and last instants, aligned at
their centroids, overlap with IoU < 0.2 ("appearance_change"). blurgen's own label ``truncated``
(the coverage reaches the image border) can drop images too ("truncated"), when asked.
"""

from __future__ import annotations

import math
from typing import Literal

import cv2
import numpy as np

Reason = Literal["small", "appearance_change", "truncated"]
REASONS: tuple[Reason, ...] = ("small", "appearance_change", "truncated")

# Blur severities are stored as float32, whose rounding moves 10 * BS by up to ~3e-7: a BS that
# is a bin edge (0.3) must stay in its bin (3), not spill into the next.
_LEVEL_TOLERANCE = 1e-6


def bbox_of(alpha: np.ndarray, threshold: float = 0.0) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) of the pixels with alpha > threshold, x1 and y1 exclusive; None if none."""
    mask = np.asarray(alpha) > threshold
    cols = np.flatnonzero(mask.any(axis=0))
    if cols.size == 0:
        return None
    rows = np.flatnonzero(mask.any(axis=1))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def support_eroded(alpha: np.ndarray, erosion_px: int = 3) -> np.ndarray:
    """beta of Eq. 5: (alpha > 0) eroded by a (2e+1) x (2e+1) square, as uint8 0/1.

    A pixel stays when every pixel within Chebyshev distance e (diagonals included) is in the
    support. The square rather than a disc: the anti-aliased fringe of a silhouette reaches
    diagonal neighbours too, the square removes a superset of what a disc of radius e removes
    (it is the conservative choice at corners), it equals e passes of the common 3x3 erosion,
    and OpenCV runs it separably. Outside the image counts as support (OpenCV's default border
    for erosion): where the object is cut by the image border its alpha does not fade, so that
    border is not an edge to erode.
    """
    support = (np.asarray(alpha) > 0).view(np.uint8)
    if erosion_px < 0:
        raise ValueError(f"erosion_px must be >= 0, got {erosion_px}")
    if erosion_px == 0:
        return support
    size = 2 * erosion_px + 1
    return cv2.erode(support, cv2.getStructuringElement(cv2.MORPH_RECT, (size, size)))


def blur_severity(alpha: np.ndarray, erosion_px: int = 3) -> float | None:
    """BS of Eq. 5 in [0, 1] (see module doc), or None when the eroded support is empty.

    None marks an invalid sample (nothing is left after erosion; the paper drops it). Alpha a
    hair above 1 (render noise) could push BS below 0; the result is clamped to [0, 1].
    """
    alpha = np.asarray(alpha, dtype=np.float32)
    beta = support_eroded(alpha, erosion_px).view(bool)
    count = int(np.count_nonzero(beta))
    if count == 0:
        return None
    mean_alpha = float(np.sum(alpha, where=beta, dtype=np.float64)) / count
    return min(1.0, max(0.0, 1.0 - mean_alpha))


def blur_level(bs: float) -> int:
    """BL of Eq. 6: ceil(10 * BS) clamped to 1..10 (BS = 0 gives 1).

    A BS within 1e-6 / 10 above a bin edge counts as the edge (float32 storage of 0.3 is
    0.30000001, which must stay level 3).
    """
    bs = float(bs)
    if math.isnan(bs):
        raise ValueError("blur severity is NaN")
    return min(10, max(1, math.ceil(10.0 * bs - _LEVEL_TOLERANCE)))


def touches_border(alpha: np.ndarray) -> bool:
    """The object's coverage (alpha > 0) reaches the first or last row or column of the image.

    Such an object may be cut by the frame (its swept region continues outside the image); one
    whose coverage stops short of every border is wholly inside it.
    """
    alpha = np.asarray(alpha)
    return bool((alpha[0] > 0).any() or (alpha[-1] > 0).any() or (alpha[:, 0] > 0).any()
                or (alpha[:, -1] > 0).any())


def coverage(alpha: np.ndarray) -> float:
    """Fraction of the pixels with alpha > 0."""
    alpha = np.asarray(alpha)
    return np.count_nonzero(alpha > 0) / alpha.size if alpha.size else 0.0


def _silhouette(s: np.ndarray) -> np.ndarray:
    """uint8 0/1 mask: booleans as they are, other arrays (rendered alpha) > 0.5."""
    s = np.asarray(s)
    return (s if s.dtype == bool else s > 0.5).view(np.uint8)


def aligned_silhouette_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of silhouettes ``a`` and ``b`` after moving ``b`` so that its centroid meets ``a``'s.

    Boolean masks are used as they are; other arrays (rendered alpha) are thresholded at 0.5,
    i.e. pixels at least half covered. ``b`` is shifted by the centroid offset rounded to whole
    pixels (halves up): exact (no resampling of a binary mask), and the at most half-pixel
    misalignment is negligible at the 0.2 threshold for objects that pass the 1.5 % coverage
    rule (>= 1150 pixels at 320x240). Pixels of ``b`` shifted past the image border still count
    in the union (IoU of the shapes, not of their visible parts). Either silhouette empty: 0.
    """
    a, b = _silhouette(a), _silhouette(b)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"silhouettes must be 2D of one shape, got {a.shape} and {b.shape}")
    # Masks are already 0/1, so plain moments are the binary ones (4x faster than
    # binaryImage=True); 8-bit moments are exact integer sums.
    ma, mb = cv2.moments(a), cv2.moments(b)
    if ma["m00"] == 0 or mb["m00"] == 0:
        return 0.0
    dx = math.floor((ma["m10"] / ma["m00"] - mb["m10"] / mb["m00"]) + 0.5)
    dy = math.floor((ma["m01"] / ma["m00"] - mb["m01"] / mb["m00"]) + 0.5)
    h, w = a.shape
    # Overlap of a with b moved by (dy, dx): a[y, x] & b[y - dy, x - dx] over the common window
    # (centroids lie inside the image, so |dy| < h and |dx| < w).
    a_win = a[max(0, dy):h + min(0, dy), max(0, dx):w + min(0, dx)]
    b_win = b[max(0, -dy):h + min(0, -dy), max(0, -dx):w + min(0, -dx)]
    inter = int(np.count_nonzero(a_win & b_win))
    return inter / (ma["m00"] + mb["m00"] - inter)


def filter_reason(alpha: np.ndarray, sil_first: np.ndarray | None, sil_last: np.ndarray | None, *,
                  min_coverage: float = 0.015, min_iou: float = 0.2,
                  drop_truncated: bool = False) -> Reason | None:
    """Why the filters drop this image, or None to keep it.

    "small": coverage(alpha) < min_coverage. "appearance_change": the silhouettes at the window's
    first and last instants have aligned IoU < min_iou. Pass None for both silhouettes (the sharp
    image) to apply only the coverage rule. "truncated" (only with ``drop_truncated``): the
    coverage touches the image border; checked last here, after the paper's two filters, so
    "small" and "appearance_change" count the same images whether or not it is on. Checks made
    after this one (``samples.judge_image``: "no_support", "above_max_level") do see fewer
    images with it on.
    """
    if (sil_first is None) != (sil_last is None):
        raise ValueError("pass both silhouettes or neither")
    if coverage(alpha) < min_coverage:
        return "small"
    if sil_first is not None and aligned_silhouette_iou(sil_first, sil_last) < min_iou:
        return "appearance_change"
    if drop_truncated and touches_border(alpha):
        return "truncated"
    return None
