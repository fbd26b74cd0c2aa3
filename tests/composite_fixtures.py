"""Helpers shared by the composite tests."""

from __future__ import annotations

import cv2
import numpy as np


def grown_mask(mask: np.ndarray, px: int) -> np.ndarray:
    """``mask`` (bool) grown by ``px`` pixels (a square dilation), shrunk by ``-px`` when ``px``
    < 0 (erosion): e.g. a SAM-like mask that overshoots or misses an object's rim by that much."""
    if px == 0:
        return mask.copy()
    kernel = np.ones((2 * abs(px) + 1,) * 2, np.uint8)
    change = cv2.dilate if px > 0 else cv2.erode
    return change(np.ascontiguousarray(mask).view(np.uint8), kernel).astype(bool)
