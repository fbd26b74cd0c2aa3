"""``random_walk``: a camera-shake trajectory (a walk with inertia) of length ``extent_px``.

``blur.shake_steps`` vertices; the velocity's persistence per step (momentum) is drawn from
``SHAKE_MOMENTUM`` (see :func:`blurgen.composite.motion.random_walk_path`).
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np

from blurgen.composite import motion
from blurgen.composite.blurs.base import BBox, BlurResult, space_invariant, uniform

SHAKE_MOMENTUM = (0.5, 0.9)  # velocity persistence per step: a hand does not turn instantly


def draw(rng: np.random.Generator, extent_px: float, alpha: np.ndarray, ranges: Any) -> dict:
    low, high = (int(v) for v in ranges.shake_steps)
    steps = int(rng.integers(low, high + 1))
    momentum = uniform(rng, SHAKE_MOMENTUM)
    walk = motion.random_walk_path(rng, extent_px, steps, momentum)
    # angle_deg: overall drift direction (first to last vertex), for reports only; the walk's
    # direction is already uniformly random.
    drift = walk[-1] - walk[0]
    return {"angle_deg": float(math.degrees(math.atan2(drift[1], drift[0])) % 360.0),
            "steps": steps, "momentum": momentum, "path": walk.tolist()}


def path(params: Mapping) -> np.ndarray:
    return np.asarray(params["path"], dtype=np.float64)


def apply(params: Mapping, fg: np.ndarray, alpha: np.ndarray, bbox: BBox) -> BlurResult:
    return space_invariant(path(params), fg, alpha, bbox)
