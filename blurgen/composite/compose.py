"""Blurring one instance of an image in place (DESIGN.md "2D masked blur").

In linear light with premultiplied alpha, for an instance with (feathered) mask ``m`` on the
current image ``I``: the foreground ``F = m * I`` and ``m`` are blurred by the same operator to
``F_b`` and ``m_b``, and composited over ``B``, the image with the instance removed:
``F_b + (1 - m_b) * B``. Without the removal a sharp ghost of the instance would show through
its own streaks.

The mask is feathered (a box filter: soft, yet of compact support) by a radius that grows with
the instance's motion extent, so the boundary is as soft as the blur around it and no hard seam
gives the blur away; zero-extent motion gets no feathering and changes nothing.

The pixels this changes are exactly the returned ``changed`` mask: wherever the blurred
coverage is above ``ALPHA_EPS`` or the instance was removed. Everything else is the input,
bit for bit, so ``blur_mask`` is exact.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping

import cv2
import numpy as np

from blurgen.composite.blur_types import apply_blur
from blurgen.composite.fill import fill_region

# Blurred coverage below this (about 1/2 of an 8-bit step) counts as untouched: the streak's
# outermost fringe would change no 8-bit pixel by more than half a step.
ALPHA_EPS = 1.0 / 512.0


@dataclasses.dataclass
class InstanceOutcome:
    image: np.ndarray     # HxWx3 float32 linear: the input with this instance blurred
    changed: np.ndarray   # HxW bool: pixels that differ from the input's (the blur mask)
    extent: np.ndarray    # HxW float32: motion extent (px) of the content at each changed pixel


def feather_radius(extent_px: float, share: float, max_px: int) -> int:
    """Feather radius in pixels for an instance whose motion extent is ``extent_px``."""
    return int(min(max_px, round(share * extent_px)))


def blur_instance(image: np.ndarray, mask: np.ndarray, params: Mapping, *, feather_px: int,
                  fill_margin_px: int, weight: np.ndarray | None = None) -> InstanceOutcome:
    """Blur the instance ``mask`` (HxW bool) of ``image`` (HxWx3 float32 linear) by ``params``.

    ``weight`` (HxW in [0, 1], partial coverage) blends the blurred result with the input per
    pixel; where it is 0 nothing changes.
    """
    if float(params["extent_px"]) <= 0.0 or not mask.any():
        return InstanceOutcome(image.copy(), np.zeros(mask.shape, bool), np.zeros(mask.shape, np.float32))
    alpha = mask.astype(np.float32)
    if feather_px > 0:
        size = 2 * feather_px + 1
        alpha = cv2.blur(alpha, (size, size), borderType=cv2.BORDER_REPLICATE)
    removed = alpha > 0.0
    if fill_margin_px > 0:
        size = 2 * fill_margin_px + 1
        removed = cv2.dilate(removed.view(np.uint8), np.ones((size, size), np.uint8)).astype(bool)
    background = fill_region(image, removed)
    blurred = apply_blur(params, image * alpha[..., None], alpha)
    composite = blurred.foreground + (1.0 - blurred.alpha)[..., None] * background
    changed = (blurred.alpha > ALPHA_EPS) | removed
    extent = np.where(changed, blurred.extent, 0.0).astype(np.float32)
    if weight is not None:
        changed &= weight > 0.0
        w = weight[..., None]
        composite = w * composite + (1.0 - w) * image
        extent = np.where(changed, weight * extent, 0.0).astype(np.float32)
    out = np.where(changed[..., None], composite, image).astype(np.float32)
    return InstanceOutcome(out, changed, extent)
