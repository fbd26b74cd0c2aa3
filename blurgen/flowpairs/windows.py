"""Which windows of consecutive frames become blurred images, and where a video cuts.

Windows
-------
A window of ``n`` frames is centred on an *anchor* frame: it covers frames
``anchor - (n - 1) // 2 .. anchor - (n - 1) // 2 + n - 1``, so its middle frame (the sharp
reference; for even ``n`` the earlier of the two middle frames) is the anchor. Anchors are
``stride`` frames apart, starting where the longest window fits, so every anchor can take every
length: windows of several lengths on one anchor share their sharp frame (the same moment
blurred by different exposures, as in the blur-retrieval paper's real set of 1 to 200 averaged
240 fps frames). Per anchor either every length (``all``) or one length drawn from them
(``one``, seeded per anchor) is used. ``max_per_source`` keeps that many anchors, evenly spread.

Scene cuts
----------
A window that spans a cut of the video averages two unrelated shots and has no meaningful flow,
so it is dropped. A cut lies between consecutive frames whose colour histograms differ by more
than ``threshold`` in total-variation distance ``0.5 * sum |p - q|`` (0: same colours, 1:
disjoint colours). The histograms are joint RGB histograms with 8 levels per channel (512 bins) of a
thumbnail at most 128 pixels wide. A histogram does not change when things move, so fast motion
(what the data is for) does not read as a cut, while a cut to another shot almost always changes
the colours; a cut between two shots of near-identical colours can pass, and so can a slow fade
(no single pair of frames differs much).
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import cv2
import numpy as np

THUMB_WIDTH = 128
HIST_LEVELS = 8


@dataclasses.dataclass(frozen=True, order=True)
class Window:
    """``length`` consecutive (kept) frames from ``start``."""

    start: int
    length: int

    @property
    def stop(self) -> int:
        return self.start + self.length

    @property
    def last(self) -> int:
        return self.start + self.length - 1

    @property
    def middle(self) -> int:
        return self.start + (self.length - 1) // 2


def window_lengths(lengths: Sequence[int], length_range: Sequence[int] | None) -> tuple[int, ...]:
    """The window lengths in use: ``length_range`` [lo, hi] (inclusive) when given, else ``lengths``."""
    if length_range:
        lo, hi = int(length_range[0]), int(length_range[1])
        return tuple(range(lo, hi + 1))
    return tuple(sorted(set(int(n) for n in lengths)))


def anchors(num_frames: int, longest: int, stride: int, max_count: int = 0) -> list[tuple[int, int]]:
    """``(k, anchor)`` pairs: the k-th anchor on the stride grid, for those kept (all, or
    ``max_count`` evenly spread). ``k`` is the anchor's index on the full grid, so a per-anchor
    draw does not change when ``max_count`` does."""
    if stride < 1 or longest < 1:
        raise ValueError("stride and window length must be >= 1")
    head = (longest - 1) // 2
    tail = longest - 1 - head
    grid = list(range(head, num_frames - tail, stride))
    chosen = list(enumerate(grid))
    if max_count and len(chosen) > max_count:
        picks = np.unique(np.linspace(0, len(chosen) - 1, max_count).round().astype(int))
        chosen = [chosen[i] for i in picks]
    return chosen


def plan_windows(num_frames: int, lengths: Sequence[int], *, stride: int, per_anchor: str = "all",
                 max_per_source: int = 0, draw: Callable[[int], int] | None = None) -> list[Window]:
    """The windows of one source of ``num_frames`` frames, sorted by start then length.

    ``draw(k)`` -> index into ``lengths`` picks the length of anchor ``k`` when ``per_anchor``
    is ``one`` (the pipeline passes a seeded draw).
    """
    lengths = sorted(lengths)
    if not lengths:
        raise ValueError("no window lengths")
    windows = []
    for k, anchor in anchors(num_frames, lengths[-1], stride, max_per_source):
        if per_anchor == "all":
            chosen = lengths
        elif per_anchor == "one":
            if draw is None:
                raise ValueError("per_anchor 'one' needs a draw function")
            chosen = [lengths[draw(k)]]
        else:
            raise ValueError(f"unknown per_anchor {per_anchor!r}")
        windows.extend(Window(anchor - (n - 1) // 2, n) for n in chosen)
    return sorted(windows)


def cut_feature(frame: np.ndarray) -> np.ndarray:
    """Normalised joint RGB histogram (HIST_LEVELS^3 bins, float64) of a small thumbnail of ``frame``."""
    h, w = frame.shape[:2]
    if w > THUMB_WIDTH:
        frame = cv2.resize(frame, (THUMB_WIDTH, max(1, round(h * THUMB_WIDTH / w))), interpolation=cv2.INTER_AREA)
    bins = (frame.reshape(-1, 3) // (256 // HIST_LEVELS)).astype(np.intp)
    index = (bins[:, 0] * HIST_LEVELS + bins[:, 1]) * HIST_LEVELS + bins[:, 2]
    hist = np.bincount(index, minlength=HIST_LEVELS ** 3).astype(np.float64)
    return hist / hist.sum()


def cut_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Total-variation distance of two normalised histograms, 0..1."""
    return 0.5 * float(np.abs(a - b).sum())


def has_cut(cuts: Sequence[int], window: Window) -> bool:
    """Whether any cut ``i`` (between frames i and i+1) lies inside ``window``."""
    return any(window.start <= i < window.last for i in cuts)
