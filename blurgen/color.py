"""sRGB transfer functions (IEC 61966-2-1), shared by every generator.

Images on disk and in shards are 8-bit sRGB; light adds up (blur, compositing, resampling) only
in linear light. The standard's piecewise curve, with ``s`` the encoded and ``l`` the linear
value, both in [0, 1]::

    l = s / 12.92                          if s <= 0.04045
    l = ((s + 0.055) / 1.055) ** 2.4       otherwise

    s = 12.92 * l                          if l <= 0.0031308
    s = 1.055 * l ** (1 / 2.4) - 0.055     otherwise

8-bit values are ``round(255 * s)`` with halves rounded up.
"""

from __future__ import annotations

import cv2
import numpy as np

_DECODE_KNEE = 0.04045     # encoded value where the linear segment ends
_ENCODE_KNEE = 0.0031308   # the same point in linear light


def _decode(s: np.ndarray) -> np.ndarray:
    # np.maximum keeps the power's base positive on the branch np.where discards.
    return np.where(s <= _DECODE_KNEE, s / 12.92, ((np.maximum(s, _DECODE_KNEE) + 0.055) / 1.055) ** 2.4)


def _encode(l: np.ndarray) -> np.ndarray:
    return np.where(l <= _ENCODE_KNEE, 12.92 * l, 1.055 * np.maximum(l, _ENCODE_KNEE) ** (1.0 / 2.4) - 0.055)


# Exact decoding of every 8-bit value (computed in float64, stored as float32).
_U8_TO_LINEAR = _decode(np.arange(256, dtype=np.float64) / 255.0).astype(np.float32)
_U8_TO_LINEAR.flags.writeable = False

# Encoding to uint8, exactly and without a power per pixel. Output k is the number of
# thresholds t_1..t_255 that x reaches, t_k = decode((k - 0.5) / 255) (round half up).
# A 16384-bin table gives, for the bin holding x, the output at the bin's start and the one
# threshold that may follow inside the bin: the curve's steepest slope is 12.92 * 255
# = 3295 LSB per unit, i.e. 0.2 LSB per bin, so no bin holds two thresholds. One compare
# against that threshold then makes the result exact (tests check all bins and 1e6 random values).
_BINS = 16384
_CHUNK = 16384  # values per block in linear_to_srgb_uint8
_THRESHOLDS = _decode((np.arange(1, 256, dtype=np.float64) - 0.5) / 255.0)
_BIN_START = np.searchsorted(_THRESHOLDS, np.arange(_BINS + 1) / _BINS, side="right").astype(np.uint8)
# Threshold of output BIN_START + 1; infinite (never reached) once the output is 255.
_BIN_NEXT = np.append(_THRESHOLDS, np.inf)[_BIN_START.astype(np.intp)]
# The same thresholds rounded up to float32: for a float32 x, x >= t exactly when x >= that
# value, so float32 input is compared in float32 (half the memory traffic) and stays exact.
_BIN_NEXT_F32 = _BIN_NEXT.astype(np.float32)
_BIN_NEXT_F32 = np.where(_BIN_NEXT_F32 < _BIN_NEXT, np.nextafter(_BIN_NEXT_F32, np.float32(np.inf)), _BIN_NEXT_F32)
for _table in (_BIN_START, _BIN_NEXT, _BIN_NEXT_F32):
    _table.flags.writeable = False


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    """sRGB-encoded values to linear light.

    uint8 (0..255): exact table lookup, float32. uint16 (0..65535): the formula on x / 65535,
    float32. Floats in [0, 1]: the formula, in float32 for float32 input, float64 otherwise.
    """
    x = np.asarray(x)
    if x.dtype == np.uint8:
        if x.size == 0:
            return _U8_TO_LINEAR[x]
        # OpenCV's LUT: the same lookup, ~6x faster than numpy's fancy indexing.
        return cv2.LUT(np.ascontiguousarray(x).reshape(-1, 1), _U8_TO_LINEAR).reshape(x.shape)
    if x.dtype == np.uint16:
        return _decode(x.astype(np.float32) / np.float32(65535.0)).astype(np.float32)
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"srgb_to_linear takes uint8, uint16 or float arrays, got {x.dtype}")
    dtype = np.float32 if x.dtype == np.float32 else np.float64
    return _decode(x.astype(dtype, copy=False)).astype(dtype, copy=False)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    """Linear light to sRGB-encoded values, float to float (no clipping; float32 stays float32)."""
    x = np.asarray(x)
    dtype = np.float32 if x.dtype == np.float32 else np.float64
    return _encode(x.astype(dtype, copy=False)).astype(dtype, copy=False)


def linear_to_srgb_uint8(x: np.ndarray) -> np.ndarray:
    """Linear light to 8-bit sRGB: clip to [0, 1], encode, round half up.

    Exactly ``floor(255 * encode(clip(x)) + 0.5)`` (up to the float64 evaluation of the curve at
    a tie), by a table lookup and one comparison per value. NaN becomes 0.
    """
    x = np.asarray(x)
    if x.dtype == np.float32:
        next_threshold = _BIN_NEXT_F32
    else:
        x, next_threshold = x.astype(np.float64), _BIN_NEXT
    flat = x.reshape(-1)
    out = np.empty(flat.size, dtype=np.uint8)
    # Blocks small enough for the temporaries to stay in cache (2-4x faster than whole-image
    # arrays at 320x240x3). Only the upper clip is done in floats (it also keeps the index cast
    # in range); take(mode="clip") clamps the index below, which maps negatives, -inf and NaN
    # (cast to the most negative integer on x86, to 0 on ARM) to bin 0, whose threshold they
    # do not reach: 0.
    with np.errstate(invalid="ignore"):
        for lo in range(0, flat.size, _CHUNK):
            part = np.minimum(flat[lo:lo + _CHUNK], 1.0)
            index = (part * _BINS).astype(np.intp)
            reached = part >= next_threshold.take(index, mode="clip")
            np.add(_BIN_START.take(index, mode="clip"), reached.view(np.uint8), out=out[lo:lo + _CHUNK])
    return out.reshape(x.shape)
