"""Blurred images from sub-interval layers, composited over a background in linear light.

Image formation (blur-retrieval paper, Eq. 3): ``I = H*F + (1 - H*M) B``. Blender renders each
of the trajectory's sub-intervals with motion blur on a transparent film, which gives the time
integral over that sub-interval of the premultiplied colour (``H*F``) and of the coverage
(``H*M``, alpha), in linear light. All sub-intervals last equally long, so the integral over a
window of k consecutive sub-intervals is the mean of their k layers, and::

    rgb = premult_rgb + (1 - alpha) * background          (linear light)

then encoded to 8-bit sRGB. Compositing the 8-bit sRGB values instead, as published generators
do, is wrong at every semi-transparent pixel: half-covered white over black is linear 0.5,
sRGB 188, not 128.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from blurgen._blender_scripts.contract import SUB_INTERVALS
from blurgen.color import linear_to_srgb_uint8, srgb_to_linear
from blurgen.errors import BlurgenError

_BLOCK_PIXELS = 12288  # pixels per block of rows in window_layer and composite


def window_starts(count: int, mode: str, num_sub: int = SUB_INTERVALS) -> list[int]:
    """First sub-interval of each window of ``count`` consecutive sub-intervals (of ``num_sub``).

    ``"centred"``: the one window centred on the trajectory, start ``(num_sub - count) // 2``.
    When ``num_sub - count`` is odd (even ``count`` for 23 sub-intervals) no window is exactly
    centred and the floor puts it half a sub-interval early (count 2: sub-intervals 10 and 11,
    instants 10..12). Either way every centred window contains the middle sub-interval
    (``num_sub // 2``), so it contains the trajectory centre ``num_sub / 2`` where the sharp image
    is rendered. ``"all"``: every start ``0 .. num_sub - count``.
    """
    if not 1 <= count <= num_sub:
        raise ValueError(f"window count must be in 1..{num_sub}, got {count}")
    if mode == "centred":
        return [(num_sub - count) // 2]
    if mode == "all":
        return list(range(num_sub - count + 1))
    raise ValueError(f"window mode must be 'centred' or 'all', got {mode!r}")


def blurred_windows(max_window: int, mode: str) -> list[tuple[int, int]]:
    """(start sub-interval, count) of every blurred image of a trajectory, in sample order:
    counts 1..``max_window``, each at the starts ``mode`` gives (:func:`window_starts`)."""
    return [(start, count) for count in range(1, max_window + 1) for start in window_starts(count, mode)]


def window_layer(layers: np.ndarray, start: int, count: int) -> np.ndarray:
    """Mean (H, W, 4) float32 of ``layers[start:start + count]`` (premultiplied linear RGBA).

    ``layers`` is (S, H, W, 4): sub-interval s integrates the exposure from instant s to s + 1.
    """
    if count < 1 or start < 0 or start + count > len(layers):
        raise ValueError(f"window {start}+{count} outside the {len(layers)} layers")
    if count == 1:
        return np.array(layers[start], dtype=np.float32)
    window = layers[start:start + count]
    total = np.empty(window.shape[1:], dtype=np.float32)
    # Running sum in place, block of rows by block of rows: the block's sum stays in cache while
    # the count layers stream past it (memory-bound: count x 1.2 MB at 320x240).
    rows = max(1, _BLOCK_PIXELS // max(1, window.shape[2]))
    for r in range(0, window.shape[1], rows):
        block = total[r:r + rows]
        np.add(window[0, r:r + rows], window[1, r:r + rows], out=block, dtype=np.float32)
        for layer in window[2:]:
            np.add(block, layer[r:r + rows], out=block)
    total *= np.float32(1.0 / count)
    return total


def composite(premult_rgba: np.ndarray, background_linear: np.ndarray) -> np.ndarray:
    """Linear RGB (H, W, 3) float32: ``premult_rgb + (1 - alpha) * background`` (Eq. 3)."""
    if premult_rgba.shape[:2] != background_linear.shape[:2] or premult_rgba.shape[2:] != (4,) \
            or background_linear.shape[2:] != (3,):
        raise ValueError(f"composite needs (H, W, 4) over (H, W, 3), got {premult_rgba.shape} "
                         f"over {background_linear.shape}")
    premult = np.ascontiguousarray(premult_rgba, dtype=np.float32)
    background = np.ascontiguousarray(background_linear, dtype=np.float32)
    out = np.empty(background.shape, dtype=np.float32)
    # OpenCV's channel conversions and arithmetic do the same float32 operations as the numpy
    # expression without broadcasting over a strided channel axis; blocks of rows keep the
    # temporaries small, so they are neither page-faulted in afresh nor evicted from cache on
    # every call (3-4x faster than whole-image numpy at 320x240).
    rows = max(1, _BLOCK_PIXELS // max(1, background.shape[1]))
    for r in range(0, background.shape[0], rows):
        p, o = premult[r:r + rows], out[r:r + rows]
        cv2.multiply(background[r:r + rows], cv2.cvtColor(1.0 - p[..., 3], cv2.COLOR_GRAY2BGR), dst=o)
        cv2.add(o, cv2.cvtColor(p, cv2.COLOR_BGRA2BGR), dst=o)  # BGRA2BGR only drops the 4th channel
    return out


def crop_background(image_rgb: np.ndarray, width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """A ``height`` x ``width`` RGB uint8 crop of ``image_rgb`` at a random position.

    Takes the largest crop with the target aspect ratio (never stretches) at a uniformly random
    offset (always two uniform draws from ``rng``, whatever the image's shape), then resamples it
    to the target size in linear light, so that fine bright detail (foliage against sky) keeps
    its brightness: ``INTER_AREA`` when shrinking; ``INTER_CUBIC`` when the source is smaller
    than the target (upscaled: soft, but never stretched); no resampling at equal size.
    """
    h, w = image_rgb.shape[:2]
    if width < 1 or height < 1 or h < 1 or w < 1:
        raise ValueError(f"cannot crop {w}x{h} to {width}x{height}")
    if w * height >= h * width:  # source wider than the target: full height
        crop_h, crop_w = h, min(w, max(1, round(h * width / height)))
    else:
        crop_w, crop_h = w, min(h, max(1, round(w * height / width)))
    # rng.integers(0, 1) draws nothing, so two uniforms keep the draw count fixed.
    ux, uy = rng.random(2)
    x0 = min(int(ux * (w - crop_w + 1)), w - crop_w)
    y0 = min(int(uy * (h - crop_h + 1)), h - crop_h)
    crop = image_rgb[y0:y0 + crop_h, x0:x0 + crop_w]
    if (crop_w, crop_h) == (width, height):
        return np.ascontiguousarray(crop)
    shrink = crop_w >= width and crop_h >= height
    resized = cv2.resize(srgb_to_linear(crop), (width, height),
                         interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)
    return linear_to_srgb_uint8(resized)  # clips the cubic's overshoot


def load_background(path: str | Path) -> np.ndarray:
    """An image file as RGB uint8 (H, W, 3), EXIF orientation applied.

    Gray becomes three equal channels, an alpha channel is dropped, 16-bit values are rounded to
    8 bits (x / 257), float images (EXR, HDR: linear light by convention) are encoded to sRGB.
    Raises BlurgenError naming the file when it is missing or cannot be decoded.
    """
    path = Path(path)
    if not path.is_file():
        raise BlurgenError(f"background image not found: {path}")
    # IMREAD_COLOR (not UNCHANGED) so that OpenCV applies the EXIF orientation; ANYDEPTH keeps
    # 16-bit and float data instead of truncating them.
    image = cv2.imread(str(path), cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH)
    if image is None or image.size == 0:
        raise BlurgenError(f"cannot read background image {path} (not an image OpenCV can decode)")
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.dtype == np.uint16:
        image = ((image.astype(np.uint32) + 128) // 257).astype(np.uint8)
    elif image.dtype != np.uint8:
        image = linear_to_srgb_uint8(image.astype(np.float32))
    return cv2.cvtColor(image[:, :, :3], cv2.COLOR_BGR2RGB)
