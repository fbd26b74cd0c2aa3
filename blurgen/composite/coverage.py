"""Coverage modes of a chosen instance (paper §3.2): sharp, full, or partial sub-regions.

Partial coverage blurs random blobs of the instance. The blobs are a thresholded smooth noise
field; the threshold is the quantile that makes the blurred share of the instance the sampled
one. The transition between blurred and sharp parts is a smoothstep over the signed distance
to the blob boundary, ``transition_px`` wide: soft (no seam gives the blur away) yet exactly 0
beyond it, so the blur mask can be exact.
"""

from __future__ import annotations

import cv2
import numpy as np

from blurgen.assets.noise import fractal_noise, smoothstep
from blurgen.composite.views import mask_box

COVERAGE_MODES = ("sharp", "full", "partial")


def partial_weight(rng: np.random.Generator, mask: np.ndarray, share: float,
                   transition_px: float, reach: int = 0) -> np.ndarray:
    """HxW float32 weight in [0, 1]: 1 where the instance is blurred, 0 where it stays sharp.

    About ``share`` of the instance's pixels get weight >= 1/2. The weight is also defined
    (and smooth) outside the instance, up to ``reach`` px beyond its box, where the blur's
    streaks reach: a blob at the instance's edge carries on along its streak.
    """
    height, width = mask.shape
    x0, y0, x1, y1 = mask_box(mask)
    x0, y0, x1, y1 = max(0, x0 - reach), max(0, y0 - reach), min(width, x1 + reach), min(height, y1 + reach)
    # Blobs a few per instance: noise on a coarse grid over the instance's box, upsampled.
    grid = 24
    noise = fractal_noise(rng, (grid, grid), beta=3.0)
    field = cv2.resize(noise, (x1 - x0, y1 - y0), interpolation=cv2.INTER_CUBIC)
    threshold = float(np.quantile(field[mask[y0:y1, x0:x1]], 1.0 - share))
    # Signed distance to the blob boundary, positive inside; beyond the box it is outside.
    # Only the box plus half the transition can be non-zero: compute there.
    half = transition_px / 2.0
    pad = int(np.ceil(half)) + 1
    wy0, wy1, wx0, wx1 = max(0, y0 - pad), min(height, y1 + pad), max(0, x0 - pad), min(width, x1 + pad)
    inside = np.zeros((wy1 - wy0, wx1 - wx0), np.uint8)
    inside[y0 - wy0:y1 - wy0, x0 - wx0:x1 - wx0] = field > threshold
    d_in = cv2.distanceTransform(inside, cv2.DIST_L2, 5)
    d_out = cv2.distanceTransform(1 - inside, cv2.DIST_L2, 5)
    signed = np.where(inside > 0, d_in - 0.5, 0.5 - d_out)
    weight = np.zeros((height, width), np.float32)
    weight[wy0:wy1, wx0:wx1] = smoothstep(-half, half, signed)
    return weight
