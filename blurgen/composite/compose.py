"""Blurring one instance of an image in place (DESIGN.md "2D masked blur").

In linear light with premultiplied alpha, for an instance with (feathered) mask ``m`` on the
current image ``I``: the foreground ``F = m * I`` and ``m`` are blurred by the same operator to
``F_b`` and ``m_b``, and composited over ``B``, the image with the instance removed:
``F_b + (1 - m_b) * B``. Without the removal a sharp ghost of the instance would show through
its own streaks.

The sharp reference is a composite too: the unblurred instance over the same ``B``,
``F + (1 - m) * B``. Image and sharp then differ only by the motion: the removal margin around
the instance (filled where neither the instance nor its streak is seen) is the same fill in
both, so a detector cannot learn "an inpainted rim is blur".

The mask is feathered (a box filter: soft, yet of compact support) by a radius that grows with
the instance's motion extent, so the boundary is as soft as the blur around it and no hard seam
gives the blur away; zero-extent motion gets no feathering and changes nothing.

The returned ``changed`` mask is where the motion is seen: where the blurred coverage is above
``ALPHA_EPS`` (content arrives) or the sharp instance covers the pixel (content left it),
times a partial or band weight above 0. Everywhere else image and sharp get the same value,
bit for bit, so ``blur_mask`` holds every pixel where they differ, and every pixel of it has a
positive motion extent. (Inside it they may still agree: a flat patch moving along itself, a
blend weight of a few ulps.)
"""

from __future__ import annotations

import dataclasses
from typing import Mapping

import cv2
import numpy as np

from blurgen.composite.blurs import blur_type
from blurgen.composite.blurs.base import copy_where
from blurgen.composite.blurs.dispatch import apply_blur, blur_reach, in_window, source_extent
from blurgen.composite.fill import fill_region
from blurgen.composite.views import mask_box

# Blurred coverage below this (about 1/2 of an 8-bit step) counts as untouched: the streak's
# outermost fringe would change no 8-bit pixel by more than half a step.
ALPHA_EPS = 1.0 / 512.0


@dataclasses.dataclass
class InstanceOutcome:
    """What blurring one instance did, within ``window`` of the image (nothing changed outside)."""

    window: tuple[slice, slice]
    image: np.ndarray     # window x 3 float32 linear: the input with this instance blurred
    sharp: np.ndarray     # window x 3 float32 linear: the sharp input with this instance over the same fill
    changed: np.ndarray   # window bool: where image and sharp may differ because of this instance
    removed: np.ndarray   # window bool: the removal region, filled alike in image and sharp
    extent: np.ndarray    # window float32: motion extent (px) of the content at each changed pixel, > 0 there

    def full(self, image: np.ndarray, sharp: np.ndarray | None = None
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Full-size image, sharp, changed mask and extent map, given the full-size inputs."""
        out = image.copy()
        out_sharp = (image if sharp is None else sharp).copy()
        changed = np.zeros(image.shape[:2], bool)
        extent = np.zeros(image.shape[:2], np.float32)
        out[self.window], out_sharp[self.window] = self.image, self.sharp
        changed[self.window], extent[self.window] = self.changed, self.extent
        return out, out_sharp, changed, extent


def feather_radius(extent_px: float, share: float, max_px: int) -> int:
    """Feather radius in pixels for an instance whose motion extent is ``extent_px``."""
    return int(min(max_px, round(share * extent_px)))


def blur_instance(image: np.ndarray, mask: np.ndarray, params: Mapping, *, feather_px: int,
                  fill_margin_px: int, weight: np.ndarray | None = None,
                  sharp: np.ndarray | None = None) -> InstanceOutcome:
    """Blur the instance ``mask`` (HxW bool) of ``image`` (HxWx3 float32 linear) by ``params``.

    ``sharp`` (default: ``image``) is the sharp reference so far, equal to ``image`` wherever
    no earlier instance changed it; the instance's sharp composite is made over it, with the
    fill ``B`` taken from it (one background for both). ``weight`` (HxW in [0, 1], partial
    coverage) blends both composites with their inputs per pixel; where it is 0 nothing
    changes. A type that works in a band (edge ring) is blended the same way by its band
    weight, so that only the band is blurred, removed and labelled.
    """
    if float(params["extent_px"]) <= 0.0 or not mask.any():
        return _nothing(image)
    # All per-pixel work happens in a window that holds everything the blur can reach, not over
    # the whole frame: an instance is often a small part of the sample (docs/benchmarks.md).
    # Where that window sticks out of the frame it is filled by replicating the border: an
    # instance cut by the frame continues beyond it (it does not end there), so its streaks
    # keep full coverage up to the frame edge instead of fading into the background.
    x0, y0, x1, y1 = mask_box(mask)
    height, width = mask.shape
    pad = feather_px + fill_margin_px + blur_reach(params)
    wy0, wy1, wx0, wx1 = y0 - pad, y1 + pad, x0 - pad, x1 + pad
    inner = (slice(max(0, wy0), min(height, wy1)), slice(max(0, wx0), min(width, wx1)))
    border = (inner[0].start - wy0, wy1 - inner[0].stop, inner[1].start - wx0, wx1 - inner[1].stop)
    crop = _extend(image[inner], border)
    # The sharp input differs from the image only where an earlier instance changed pixels.
    crop_sharp = crop if sharp is None or sharp is image else _extend(sharp[inner], border)
    binary = _extend(mask[inner].view(np.uint8), border)
    blend = None if weight is None else _extend(weight[inner], border)
    entry = blur_type(params["type"])
    if entry.band:
        band, params = entry.impl.band(binary.astype(bool), params)
        blend = band if blend is None else blend * band
    alpha = binary.astype(np.float32)
    if feather_px > 0:
        size = 2 * feather_px + 1
        alpha = cv2.blur(alpha, (size, size), borderType=cv2.BORDER_REPLICATE)
    # A box filter of a binary mask is exactly 0 outside the mask dilated by its radius (sums of
    # whole numbers): alpha > 0 is the sharp instance's support, no round-off fringe.
    support = alpha > 0.0
    removed = support
    if fill_margin_px > 0:
        size = 2 * fill_margin_px + 1
        removed = cv2.dilate(support.view(np.uint8), np.ones((size, size), np.uint8)).astype(bool)
    foreground = crop * alpha[..., None]
    blurred = apply_blur(in_window(params, wx0, wy0), foreground, alpha)
    moving = blurred.alpha > ALPHA_EPS
    # Beyond the removal region and the streak both outputs are their inputs: the per-pixel
    # work below happens in the box of those pixels inside the frame (the window is padded by
    # the whole reach on every side; the streak reaches out along the motion only).
    frame_rows = (border[0], border[0] + inner[0].stop - inner[0].start)
    frame_cols = (border[2], border[2] + inner[1].stop - inner[1].start)
    bx0, by0, bx1, by1 = mask_box(moving | removed)
    by0, by1 = max(by0, frame_rows[0]), min(by1, frame_rows[1])
    bx0, bx1 = max(bx0, frame_cols[0]), min(bx1, frame_cols[1])
    if by1 <= by0 or bx1 <= bx0:  # all of it beyond the frame
        return _nothing(image)
    box = (slice(by0, by1), slice(bx0, bx1))
    background_sharp = fill_region(crop_sharp, removed)[box]
    one_input = crop_sharp is crop
    crop, alpha, support, moving, removed = crop[box], alpha[box], support[box], moving[box], removed[box]
    crop_sharp = crop if one_input else crop_sharp[box]
    sharp_foreground = foreground[box] if one_input else crop_sharp * alpha[..., None]
    # The removed region gets the same fill in both; beyond it each keeps its own pixels (the
    # image an earlier instance's streaks).
    background = background_sharp if one_input else _select(removed, background_sharp, crop)
    changed = moving | support
    # Where content arrives, its mean extent; where the sharp instance was but (almost) nothing
    # arrives, the extent of the content that left: both are the motion seen at the pixel.
    left = source_extent(in_window(params, wx0 + bx0, wy0 + by0), alpha.shape)
    extent = np.where(moving, blurred.extent[box], np.where(support, left, np.float32(0.0)))
    composite = blurred.foreground[box] + (1.0 - blurred.alpha[box])[..., None] * background
    # The sharp composite differs from its background only on the instance's support: make it
    # in the support's box (elsewhere F = 0 and 1 - m = 1 give the background bit for bit).
    sx0, sy0, sx1, sy1 = mask_box(support)
    held = (slice(sy0, sy1), slice(sx0, sx1))
    composite_sharp = sharp_foreground[held] + (1.0 - alpha[held])[..., None] * background_sharp[held]
    base, base_sharp = background, background_sharp
    if blend is not None:
        blend = blend[box]
        changed &= blend > 0.0
        # x + w (y - x), not w y + (1 - w) x: exactly x where w is 0 or y equals x (outside the
        # removal the fill is the input), so nothing changes by round-off.
        weight3 = blend[..., None]
        composite = crop + weight3 * (composite - crop)
        composite_sharp = crop_sharp[held] + weight3[held] * (composite_sharp - crop_sharp[held])
        base = crop + weight3 * (background - crop)
        base_sharp = base if one_input else crop_sharp + weight3 * (background_sharp - crop_sharp)
        extent = blend * extent
    # Outside ``changed`` both get the same background (filled in the removal margin), from the
    # same inputs by the same operations: equal bit for bit wherever the inputs were.
    out = _select(changed, composite, base)
    out_sharp = np.array(base_sharp, dtype=np.float32, order="C")
    out_sharp[held] = _select(changed[held] & support[held], composite_sharp, out_sharp[held])
    extent = np.where(changed, extent, np.float32(0.0)).astype(np.float32, copy=False)
    window = (slice(wy0 + by0, wy0 + by1), slice(wx0 + bx0, wx0 + bx1))
    return InstanceOutcome(window, out, out_sharp, changed, removed, extent)


def _select(where: np.ndarray, yes: np.ndarray, no: np.ndarray) -> np.ndarray:
    """``np.where(where[..., None], yes, no)`` as float32 (by copy_where: 4x faster)."""
    out = np.array(no, dtype=np.float32, order="C")
    copy_where(out, yes, where)
    return out


def _nothing(image: np.ndarray) -> InstanceOutcome:
    """The outcome of an instance that changes no pixel."""
    window = (slice(0, 0), slice(0, 0))
    empty = image[window].copy()
    return InstanceOutcome(window, empty, empty.copy(), np.zeros((0, 0), bool), np.zeros((0, 0), bool),
                           np.zeros((0, 0), np.float32))


def _extend(array: np.ndarray, border: tuple[int, int, int, int]) -> np.ndarray:
    """``array`` with ``border`` (top, bottom, left, right) pixels replicated around it."""
    if not any(border):
        return array
    return cv2.copyMakeBorder(np.ascontiguousarray(array), *border, cv2.BORDER_REPLICATE)
