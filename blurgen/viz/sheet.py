"""Contact-sheet building blocks: fit an image into a tile, draw labels and boxes, tile a grid.

All images here are RGB uint8 (H, W, 3); OpenCV's drawing calls do not care about channel order,
so colours are given as RGB tuples.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from blurgen.errors import BlurgenError

WHITE = (255, 255, 255)
BLACK = (0, 0, 0)
GREEN = (40, 220, 80)
RED = (235, 40, 40)
BACKGROUND = (24, 24, 28)


def as_rgb_uint8(image: np.ndarray) -> np.ndarray:
    """Gray, RGB or RGBA, uint8 or float in [0, 1], as an RGB uint8 array."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        image = (np.clip(image.astype(np.float32), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.shape[2] == 4:
        image = image[:, :, :3]
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    return np.ascontiguousarray(image)


def fit_width(image: np.ndarray, width: int) -> tuple[np.ndarray, float]:
    """Resize to ``width`` keeping the aspect ratio; returns the image and the scale applied."""
    scale = width / image.shape[1]
    height = max(1, round(image.shape[0] * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(image, (width, height), interpolation=interp), scale


def draw_label(image: np.ndarray, lines: Sequence[str], corner: str = "top-left") -> np.ndarray:
    """Draw text lines on a dark band so they read on any background (in place, returned)."""
    font, size, thick = cv2.FONT_HERSHEY_SIMPLEX, 0.4, 1
    line_h = 14
    width = max((cv2.getTextSize(t, font, size, thick)[0][0] for t in lines), default=0) + 6
    height = line_h * len(lines) + 4
    y0 = 0 if corner.startswith("top") else max(0, image.shape[0] - height)
    x0 = 0 if corner.endswith("left") else max(0, image.shape[1] - width)
    band = image[y0:y0 + height, x0:x0 + width]
    band[...] = (band.astype(np.uint16) * 2 // 5).astype(np.uint8)  # darken, keep a hint of the image
    for i, text in enumerate(lines):
        cv2.putText(image, text, (x0 + 3, y0 + line_h * (i + 1) - 2), font, size, WHITE, thick, cv2.LINE_AA)
    return image


def draw_box(image: np.ndarray, box: Sequence[float], scale: float = 1.0, color=GREEN) -> np.ndarray:
    """Draw an (x0, y0, x1, y1) box with exclusive x1/y1, given in the unscaled image's pixels."""
    x0, y0, x1, y1 = (float(v) * scale for v in box)
    if x1 > x0 and y1 > y0:
        cv2.rectangle(image, (round(x0), round(y0)), (round(x1) - 1, round(y1) - 1), color, 1, cv2.LINE_AA)
    return image


def overlay_mask(image: np.ndarray, mask: np.ndarray, color=RED, opacity: float = 0.45) -> np.ndarray:
    """Tint ``image`` where ``mask`` (bool or [0, 1] float, same size) is set, and outline it."""
    weight = np.clip(np.asarray(mask, dtype=np.float32), 0.0, 1.0)[:, :, None] * opacity
    tinted = image.astype(np.float32) * (1.0 - weight) + np.array(color, np.float32) * weight
    out = (tinted + 0.5).astype(np.uint8)
    contours, _ = cv2.findContours((weight[:, :, 0] > 0).astype(np.uint8), cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(out, contours, -1, color, 1, cv2.LINE_AA)
    return out


def tile_grid(tiles: Sequence[np.ndarray], cols: int, pad: int = 4,
              background=BACKGROUND) -> np.ndarray:
    """Tiles (RGB uint8, any sizes) in a grid of ``cols`` columns, each cell as large as the largest tile.

    The sheet is ``cols * (cell_w + pad) + pad`` wide and ``rows * (cell_h + pad) + pad`` high.
    """
    if not tiles:
        raise ValueError("no tiles to lay out")
    cols = max(1, min(cols, len(tiles)))
    rows = -(-len(tiles) // cols)
    cell_h = max(t.shape[0] for t in tiles)
    cell_w = max(t.shape[1] for t in tiles)
    sheet = np.empty((rows * (cell_h + pad) + pad, cols * (cell_w + pad) + pad, 3), np.uint8)
    sheet[...] = background
    for i, tile in enumerate(tiles):
        r, c = divmod(i, cols)
        y, x = pad + r * (cell_h + pad), pad + c * (cell_w + pad)
        sheet[y:y + tile.shape[0], x:x + tile.shape[1]] = tile
    return sheet


def hstack(tiles: Sequence[np.ndarray], pad: int = 2, background=BACKGROUND) -> np.ndarray:
    """Tiles side by side, top-aligned (one sample's image, mask, flow...)."""
    return tile_grid(list(tiles), cols=len(tiles), pad=pad, background=background)[pad:-pad, pad:-pad]


def write_png(path: str | Path, image: np.ndarray) -> None:
    """Write an RGB uint8 image as PNG (OpenCV wants BGR)."""
    path = Path(path)
    if path.parent and not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(as_rgb_uint8(image), cv2.COLOR_RGB2BGR)):
        raise BlurgenError(f"could not write PNG {path}: check the folder and the .png extension")
