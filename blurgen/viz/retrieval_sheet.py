"""The retrieval picture of an evaluation report, like the blur-retrieval paper's Fig. 4.

One row per query: the query image (white frame) and its top database results, best first,
each framed green when it shows the query's object (a positive) and red otherwise, and labelled
with its rank, blur level and similarity, so a reader sees at a glance where a model confuses
objects as the blur grows. Built from the contact-sheet blocks of :mod:`blurgen.viz.sheet`.

Layout: every tile is the image fitted to ``tile_width`` (aspect kept); the sheet is a grid of
``top + 1`` columns (tiles of missing results stay background), so its size is
``(top + 1) * (tile_width + 4) + 4`` wide and ``rows * (tile_height + 4) + 4`` high.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import cv2
import numpy as np

from blurgen.viz.sheet import BACKGROUND, GREEN, RED, WHITE, as_rgb_uint8, draw_label, fit_width, tile_grid

FRAME_PX = 3  # frame thickness: visible at tile size, thin enough to leave the object uncovered


@dataclass(frozen=True)
class Result:
    """One retrieved database image."""

    image: np.ndarray
    positive: bool
    lines: tuple[str, ...] = ()


@dataclass(frozen=True)
class QueryRow:
    """A query and its ranked results (best first)."""

    image: np.ndarray
    lines: tuple[str, ...] = ()
    results: Sequence[Result] = field(default_factory=tuple)


def framed_tile(image: np.ndarray, width: int, color: tuple[int, int, int], lines: Sequence[str]) -> np.ndarray:
    """The image fitted to ``width``, framed inside its border in ``color``, labelled top-left."""
    tile, _ = fit_width(as_rgb_uint8(image), width)
    tile = np.ascontiguousarray(tile)
    h, w = tile.shape[:2]
    # drawn inside the tile so the frame never changes the tile's size
    cv2.rectangle(tile, (FRAME_PX // 2, FRAME_PX // 2), (w - 1 - FRAME_PX // 2, h - 1 - FRAME_PX // 2),
                  color, FRAME_PX)
    if lines:
        draw_label(tile, list(lines))
    return tile


def retrieval_sheet(rows: Sequence[QueryRow], *, top: int = 5, tile_width: int = 128) -> np.ndarray:
    """RGB uint8 sheet: one row per query, the query then its first ``top`` results."""
    if not rows:
        raise ValueError("no queries to draw")
    tiles: list[np.ndarray] = []
    for row in rows:
        query = framed_tile(row.image, tile_width, WHITE, row.lines)
        tiles.append(query)
        results = list(row.results)[:top]
        for result in results:
            tiles.append(framed_tile(result.image, tile_width, GREEN if result.positive else RED, result.lines))
        blank = np.empty((1, 1, 3), np.uint8)
        blank[...] = BACKGROUND
        tiles.extend([blank] * (top - len(results)))  # keep each query at the start of its row
    return tile_grid(tiles, cols=top + 1)
