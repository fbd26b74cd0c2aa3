"""``rolling``: straight motion seen through a rolling shutter.

A rolling shutter exposes row r over [r d, r d + T]; content moving at velocity v gives the
straight blur of length L = |v| T shifted by ``v T readout (r - r_c) / H`` on row r (``readout``
= frame readout time over exposure time, r_c the instance's centroid row, H the image height).
Stored as ``row_shift_px`` = ``readout * L / H`` along the motion per row.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import cv2
import numpy as np

from blurgen.composite import motion
from blurgen.composite.blurs import straight
from blurgen.composite.blurs.base import BBox, BlurResult, Window, centroid, draw_angle, finish, uniform
from blurgen.errors import BlurgenError

# Largest shift between neighbouring rows (px); above it rows would tear apart.
MAX_ROW_SHIFT_PX = 0.5


def draw(rng: np.random.Generator, extent_px: float, alpha: np.ndarray, ranges: Any) -> dict:
    angle = draw_angle(rng)
    height = alpha.shape[0]
    readout = uniform(rng, ranges.readout)
    if extent_px > 0:  # neighbouring rows must not tear apart
        readout = min(readout, MAX_ROW_SHIFT_PX * height / extent_px)
    centre = centroid(alpha)
    return {"angle_deg": angle, "readout": readout, "image_height": height,
            "center_row": float(centre[1]) if centre else 0.5 * (height - 1),
            "row_shift_px": readout * extent_px / height}


path = straight.path


def reach(params: Mapping) -> float:
    """The path plus the row shifts (at most ``readout`` times the path)."""
    return float(params["extent_px"]) * (1.0 + float(params["readout"]))


def in_window(params: Mapping, x0: int, y0: int) -> dict:
    return dict(params, center_row=float(params["center_row"]) - y0)


def apply(params: Mapping, fg: np.ndarray, alpha: np.ndarray, bbox: BBox) -> BlurResult:
    length = float(params["extent_px"])
    u = motion.direction(float(params["angle_deg"]))
    per_row = float(params["row_shift_px"])
    centre_row = float(params["center_row"])
    if abs(per_row * u[1]) >= 0.95:
        raise BlurgenError(f"rolling blur: row shift {per_row:.3f} px per row along the rows tears "
                           "the image apart; lower the readout or the extent")
    psf = motion.path_psf(path(params))
    radius = psf.shape[0] // 2 + 2
    # Rows far from the centre row shift most; pad for the largest shift, unclipped: content
    # blurred past the frame edge can be shifted back into it.
    far = max(abs(bbox[0] - radius - centre_row), abs(bbox[1] + radius - centre_row))
    shift = per_row * far / (1.0 - abs(per_row * u[1]))
    window = Window.around(bbox, radius + math.ceil(shift) + 1, alpha.shape, clip=False)
    h, w = window.y1 - window.y0, window.x1 - window.x0
    s = per_row * (np.arange(window.y0, window.y1, dtype=np.float64) - centre_row)
    # output(x, r) = blurred(x - s(r) u): a row read out later sees the content further along.
    map_x = (np.arange(w, dtype=np.float64)[None, :] - (s * u[0])[:, None]).astype(np.float32)
    map_y = np.ascontiguousarray(np.broadcast_to(
        (np.arange(h) - s * u[1]).astype(np.float32)[:, None], (h, w)))
    map_xy, map_frac = cv2.convertMaps(map_x, map_y, cv2.CV_16SC2)  # shared by both remaps

    def blur_and_shift(image: np.ndarray, nonnegative: bool) -> np.ndarray:
        blurred = motion.convolve_psf(window.take(image, bbox), psf, nonnegative=nonnegative)
        return cv2.remap(blurred, map_xy, map_frac, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)

    return finish(window, blur_and_shift(fg, True), blur_and_shift(alpha, False), fg.shape, length)
