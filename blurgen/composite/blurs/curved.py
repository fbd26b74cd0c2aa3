"""``curved``: a quadratic Bezier of arc length ``extent_px``; the Bezier parameter is time.

``curvature`` (drawn from ``blur.curvature``, random sign) is the control point's offset from
the chord's midpoint over the chord, to the right of the motion when positive (y down).
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from blurgen.composite import motion
from blurgen.composite.blurs.base import BBox, BlurResult, draw_angle, random_sign, space_invariant, uniform


def draw(rng: np.random.Generator, extent_px: float, alpha: np.ndarray, ranges: Any) -> dict:
    angle = draw_angle(rng)
    curvature = uniform(rng, ranges.curvature) * random_sign(rng)
    points = motion.curved_control_points(extent_px, angle, curvature)
    return {"angle_deg": angle, "curvature": curvature, "chord_px": float(np.hypot(*(points[2] - points[0]))),
            "control_points": points.tolist()}


def path(params: Mapping) -> np.ndarray:
    return motion.bezier_path(np.asarray(params["control_points"], dtype=np.float64))


def apply(params: Mapping, fg: np.ndarray, alpha: np.ndarray, bbox: BBox) -> BlurResult:
    return space_invariant(path(params), fg, alpha, bbox)
