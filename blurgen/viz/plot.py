"""Line charts drawn with OpenCV: training curves without a plotting library.

blurgen's dependencies have no matplotlib (render farms and the GPU machines carry OpenCV
already), and a training curve needs little: axes with a few round ticks, one polyline per
series, a legend. Colours are RGB; the picture is RGB uint8, written with ``sheet.write_png``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping, Sequence

import cv2
import numpy as np

from blurgen.viz.sheet import write_png

PALETTE = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
           (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_INK = (40, 40, 40)
_GRID = (225, 225, 225)


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values (1, 2 or 5 times a power of ten apart) covering [low, high]."""
    if not math.isfinite(low) or not math.isfinite(high):
        return []
    if high <= low:
        high = low + (abs(low) or 1.0)
    raw = (high - low) / max(1, count)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.floor(low / step) * step
    return [first + i * step for i in range(int(math.ceil((high - first) / step)) + 1)]


def _label(value: float) -> str:
    return f"{value:.3g}"


def line_chart(series: Mapping[str, tuple[Sequence[float], Sequence[float]]], *, title: str, xlabel: str,
               ylabel: str, size: tuple[int, int] = (640, 400)) -> np.ndarray:
    """An RGB chart of ``{name: (xs, ys)}``; non-finite points are left out of a line."""
    width, height = size
    image = np.full((height, width, 3), 255, np.uint8)
    left, right, top, bottom = 64, 16, 36, 44
    points = [(float(x), float(y)) for xs, ys in series.values() for x, y in zip(xs, ys)
              if math.isfinite(float(x)) and math.isfinite(float(y))]
    cv2.putText(image, title, (left, 22), _FONT, 0.55, _INK, 1, cv2.LINE_AA)
    if not points:
        cv2.putText(image, "no data yet", (left, height // 2), _FONT, 0.5, _INK, 1, cv2.LINE_AA)
        return image
    xticks = nice_ticks(min(p[0] for p in points), max(p[0] for p in points))
    yticks = nice_ticks(min(p[1] for p in points), max(p[1] for p in points))
    x0, x1, y0, y1 = xticks[0], xticks[-1], yticks[0], yticks[-1]

    def to_px(x: float, y: float) -> tuple[int, int]:
        px = left + (x - x0) / ((x1 - x0) or 1.0) * (width - left - right)
        py = height - bottom - (y - y0) / ((y1 - y0) or 1.0) * (height - top - bottom)
        return int(round(px)), int(round(py))

    for y in yticks:
        _, py = to_px(x0, y)
        cv2.line(image, (left, py), (width - right, py), _GRID, 1)
        cv2.putText(image, _label(y), (4, py + 4), _FONT, 0.4, _INK, 1, cv2.LINE_AA)
    for x in xticks:
        px, _ = to_px(x, y0)
        cv2.line(image, (px, top), (px, height - bottom), _GRID, 1)
        cv2.putText(image, _label(x), (px - 10, height - bottom + 16), _FONT, 0.4, _INK, 1, cv2.LINE_AA)
    cv2.rectangle(image, (left, top), (width - right, height - bottom), _INK, 1)
    cv2.putText(image, xlabel, (width // 2 - 30, height - 8), _FONT, 0.45, _INK, 1, cv2.LINE_AA)
    cv2.putText(image, ylabel, (4, top - 6), _FONT, 0.4, _INK, 1, cv2.LINE_AA)
    for i, (name, (xs, ys)) in enumerate(series.items()):
        color = PALETTE[i % len(PALETTE)]
        line = [to_px(float(x), float(y)) for x, y in zip(xs, ys) if math.isfinite(float(x)) and math.isfinite(float(y))]
        if len(line) == 1:
            cv2.circle(image, line[0], 3, color, -1, cv2.LINE_AA)
        elif line:
            cv2.polylines(image, [np.array(line, np.int32)], False, color, 2, cv2.LINE_AA)
        ly = top + 16 + 16 * i  # legend, top right
        cv2.line(image, (width - right - 150, ly - 4), (width - right - 130, ly - 4), color, 2)
        cv2.putText(image, name[:18], (width - right - 125, ly), _FONT, 0.4, _INK, 1, cv2.LINE_AA)
    return image


def write_line_chart(path: str | Path, series: Mapping[str, tuple[Sequence[float], Sequence[float]]], *,
                     title: str, xlabel: str, ylabel: str) -> Path:
    write_png(path, line_chart(series, title=title, xlabel=xlabel, ylabel=ylabel))
    return Path(path)
