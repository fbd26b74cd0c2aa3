"""Averaging 8-bit frames in linear light: how a longer exposure would have recorded the scene.

A camera sensor integrates light, so a blurred frame is the mean of the sharp frames *in linear
light*, not of their 8-bit sRGB codes: decode each frame, average, encode (``transfer="srgb"``,
IEC 61966-2-1, via :mod:`blurgen.color`). ``transfer="gamma22"`` uses a pure power law
``l = s ** 2.2`` instead, as some deblurring datasets did (GoPro, Nah et al. 2017).
Averaging the codes directly darkens every edge that moves: a pixel half black, half white over
the window is 188 in linear light but 128 in sRGB-code averaging.

Exact and order-free sums
-------------------------
Decoded values are rounded to multiples of 2^-24 (an error below 3e-8, four orders of magnitude
under the 3e-4 linear step between the darkest 8-bit codes). Sums of such values are exact in
float64 while they stay below 2^29, i.e. for over 500 million frames of running total. So a window's sum taken as the
difference of two running totals (:class:`RunningSum`) is *bit-identical* to summing its frames
directly (:func:`average_frames`), whatever frame the running total started at. That lets the
video pipeline average windows of any length and any overlap with one addition per decoded frame,
and a task that starts mid-video gives the same bytes as one that started at frame 0.
"""

from __future__ import annotations

from typing import Iterable

import cv2
import numpy as np

from blurgen.color import linear_to_srgb_uint8, srgb_to_linear
from blurgen.flowpairs.config import TRANSFERS  # the names; here is what they mean
_QUANTUM = 2.0 ** -24


def _table(transfer: str) -> np.ndarray:
    codes = np.arange(256, dtype=np.float64) / 255.0
    if transfer == "srgb":
        linear = srgb_to_linear(codes)
    elif transfer == "gamma22":
        linear = codes ** 2.2
    else:
        raise ValueError(f"unknown transfer {transfer!r}; choose one of {', '.join(TRANSFERS)}")
    quantised = np.round(linear / _QUANTUM) * _QUANTUM
    # Multiples of 2^-24 in [0, 1] fit float32's 24-bit significand exactly, so the lookup can
    # output float32 (half the memory traffic of float64) without changing a value.
    table = quantised.astype(np.float32)
    table.flags.writeable = False
    return table


DECODE_TABLES = {t: _table(t) for t in TRANSFERS}


def decode(frame: np.ndarray, transfer: str = "srgb") -> np.ndarray:
    """uint8 codes to linear light, float32, same shape (the quantised table: see module doc)."""
    frame = np.asarray(frame)
    if frame.dtype != np.uint8:
        raise ValueError(f"frames must be uint8, got {frame.dtype}")
    table = DECODE_TABLES[transfer] if transfer in DECODE_TABLES else _table(transfer)
    return cv2.LUT(np.ascontiguousarray(frame).reshape(-1, 1), table).reshape(frame.shape)


def encode(linear: np.ndarray, transfer: str = "srgb") -> np.ndarray:
    """Linear light to uint8 codes: clip to [0, 1], encode with ``transfer``, round half up."""
    linear = np.asarray(linear)
    if transfer == "srgb":
        return linear_to_srgb_uint8(linear.astype(np.float32, copy=False))
    if transfer == "gamma22":
        clipped = np.clip(np.nan_to_num(linear.astype(np.float64), nan=0.0), 0.0, 1.0)
        return np.floor(255.0 * clipped ** (1.0 / 2.2) + 0.5).astype(np.uint8)
    raise ValueError(f"unknown transfer {transfer!r}; choose one of {', '.join(TRANSFERS)}")


class RunningSum:
    """The running float64 sum of decoded frames; ``snapshot()`` copies the total so far.

    A window's frames ``a .. b-1`` sum to ``snapshot after b`` minus ``snapshot after a``
    (exactly: see the module doc); :func:`mean_of` turns that into the averaged uint8 frame.
    """

    def __init__(self, transfer: str = "srgb") -> None:
        if transfer not in DECODE_TABLES:
            raise ValueError(f"unknown transfer {transfer!r}; choose one of {', '.join(TRANSFERS)}")
        self.transfer = transfer
        self.count = 0
        self._total: np.ndarray | None = None
        self._shape: tuple[int, ...] | None = None

    def add(self, frame: np.ndarray) -> None:
        frame = np.asarray(frame)
        if frame.dtype != np.uint8:
            raise ValueError(f"frames must be uint8, got {frame.dtype}")
        flat = np.ascontiguousarray(frame).reshape(-1, 1)
        if self._total is None:
            self._shape = frame.shape
            self._total = np.zeros(flat.shape, np.float64)
        elif frame.shape != self._shape:
            raise ValueError(f"frame of shape {frame.shape} after frames of shape {self._shape}")
        # cv2.add widens the float32 lookup to float64 as it adds: no float64 temporary
        cv2.add(self._total, cv2.LUT(flat, DECODE_TABLES[self.transfer]), dst=self._total, dtype=cv2.CV_64F)
        self.count += 1

    def mean_since(self, start: np.ndarray | None, n: int) -> np.ndarray:
        """The uint8 mean of the last ``n`` frames added, given the snapshot taken before the first
        of them (None: they are all the frames added); no copy of the running total."""
        if self._total is None:
            raise ValueError("no frame added yet")
        return mean_of(self._total.reshape(self._shape), start, n, self.transfer)

    def snapshot(self) -> np.ndarray | None:
        """A copy of the sum so far; None before the first frame (an empty sum, see :func:`mean_of`)."""
        if self._total is None:
            return None
        return self._total.reshape(self._shape).copy()


def mean_of(total_end: np.ndarray | None, total_start: np.ndarray | None, n: int,
            transfer: str = "srgb") -> np.ndarray:
    """The uint8 frame averaging the ``n`` frames whose sum is ``total_end - total_start``.

    ``total_start`` None means the sum started at zero (the window starts with the running sum).
    """
    if n < 1:
        raise ValueError(f"a window needs at least one frame, got {n}")
    window = total_end if total_start is None else total_end - total_start
    return encode(window / n, transfer)


def average_frames(frames: Iterable[np.ndarray], transfer: str = "srgb") -> np.ndarray:
    """The mean of uint8 frames (H, W[, C]) in linear light, as uint8 codes.

    ``transfer``: ``srgb`` (decode, mean, encode with the sRGB curve) or ``gamma22``.
    """
    running = RunningSum(transfer)
    for frame in frames:
        running.add(frame)
    if running.count == 0:
        raise ValueError("average_frames needs at least one frame")
    return mean_of(running.snapshot(), None, running.count, transfer)
