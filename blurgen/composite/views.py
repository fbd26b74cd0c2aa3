"""The part of a photo a sample shows, resized to the sample size.

Mask-centric samples crop around one instance at a random scale and aspect (paper §3.1); the
crop is then resized to the sample size, so its aspect changes: that is the augmentation.
Image-centric samples take the largest centred crop of the sample's aspect (no distortion).
Resampling happens in linear light; masks are resampled as coverage and thresholded at one half.
Blur is applied after resizing, so blur extents are in sample pixels.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np


@dataclasses.dataclass
class View:
    image: np.ndarray       # HxWx3 float32 linear
    masks: np.ndarray       # NxHxW bool
    names: list[str]
    crop: tuple[int, int, int, int]  # x0, y0, x1, y1 in source pixels (x1, y1 exclusive)


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """x0, y0, x1, y1 (exclusive) of a non-empty mask."""
    ys, xs = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
    return int(xs[0]), int(ys[0]), int(xs[-1]) + 1, int(ys[-1]) + 1


def instance_crop(rng: np.random.Generator, mask: np.ndarray, scale: tuple[float, float],
                  aspect: tuple[float, float]) -> tuple[int, int, int, int]:
    """A crop around ``mask``'s box: side = box side x scale, random aspect, random placement
    that keeps the box inside when it fits, clamped to the photo."""
    height, width = mask.shape
    x0, y0, x1, y1 = mask_box(mask)
    side = max(x1 - x0, y1 - y0) * rng.uniform(*scale)
    ratio = float(np.exp(rng.uniform(np.log(aspect[0]), np.log(aspect[1]))))
    w = int(round(min(width, max(x1 - x0, side * np.sqrt(ratio)))))
    h = int(round(min(height, max(y1 - y0, side / np.sqrt(ratio)))))
    left = _place(rng, x0, x1, w, width)
    top = _place(rng, y0, y1, h, height)
    return left, top, left + w, top + h


def _place(rng: np.random.Generator, lo: int, hi: int, size: int, limit: int) -> int:
    """Start of a window of ``size`` that holds [lo, hi) where possible, within [0, limit)."""
    first, last = hi - size, lo  # starts that keep [lo, hi) inside the window
    if first > last:  # the instance is larger than the window: centre on it
        first = last = (lo + hi - size) // 2
    start = int(rng.integers(first, last + 1))
    return int(np.clip(start, 0, limit - size))


def centred_crop(shape: tuple[int, int], width: int, height: int) -> tuple[int, int, int, int]:
    """The largest centred crop of a ``shape`` (h, w) photo with the aspect width:height."""
    h, w = shape
    if w * height > h * width:  # photo wider than the sample
        cw, ch = max(1, round(h * width / height)), h
    else:
        cw, ch = w, max(1, round(w * height / width))
    left, top = (w - cw) // 2, (h - ch) // 2
    return left, top, left + cw, top + ch


def cut_view(image: np.ndarray, masks: np.ndarray, names: list[str], crop: tuple[int, int, int, int],
             width: int, height: int, only: int | None = None) -> View:
    """Crop ``image`` and ``masks`` and resize them to width x height.

    ``only``: resample just that mask (a mask-centric sample uses no other); the rest stay empty.
    """
    x0, y0, x1, y1 = crop
    out_image = resize(image[y0:y1, x0:x1], width, height)
    out_masks = np.zeros((len(masks), height, width), bool)
    for i, mask in enumerate(masks):
        if only is not None and i != only:
            continue
        part = mask[y0:y1, x0:x1]
        if part.any():  # most instances of a photo lie outside a mask-centric crop
            out_masks[i] = resize_mask(part, width, height)
    return View(out_image, out_masks, list(names), crop)


def resize_mask(mask: np.ndarray, width: int, height: int) -> np.ndarray:
    """A binary mask resampled as 8-bit coverage and thresholded at one half.

    Down to half size, bilinear interpolation puts the half-coverage boundary within a
    fraction of a pixel of where area averaging puts it, at a quarter of the cost (this runs
    for every instance of every sample); beyond that, area averaging keeps thin parts.
    """
    h, w = mask.shape
    coverage = mask.view(np.uint8) * np.uint8(255)
    if width * 2 >= w and height * 2 >= h:
        return cv2.resize(coverage, (width, height), interpolation=cv2.INTER_LINEAR) >= 128
    return resize(coverage, width, height) >= 128


def resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Area averaging when shrinking (no aliasing), bilinear when enlarging, per axis; dtype kept."""
    h, w = image.shape[:2]
    image = np.ascontiguousarray(image)
    if (w, h) == (width, height):
        return image
    if (width < w and height > h) or (width > w and height < h):
        # One axis shrinks, the other grows (a stretched crop): OpenCV's area mode would then
        # interpolate unevenly; resample each axis with its own method.
        return resize(resize(image, width, h), width, height)
    shrink = width < w or height < h
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
