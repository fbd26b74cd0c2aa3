"""``straight``: constant velocity along ``angle_deg`` for ``extent_px`` pixels."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from blurgen.composite import motion
from blurgen.composite.blurs.base import BBox, BlurResult, draw_angle, space_invariant


def draw(rng: np.random.Generator, extent_px: float, alpha: np.ndarray, ranges: Any) -> dict:
    return {"angle_deg": draw_angle(rng)}


def path(params: Mapping) -> np.ndarray:
    return motion.straight_path(float(params["extent_px"]), float(params["angle_deg"]))


def apply(params: Mapping, fg: np.ndarray, alpha: np.ndarray, bbox: BBox) -> BlurResult:
    return space_invariant(path(params), fg, alpha, bbox)
