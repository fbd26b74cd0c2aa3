"""A mesh's axis-aligned bounding box, as the scanners record it and render normalises by it.

Every scanner (OBJ, glTF, PLY) reduces a model's vertex positions, in the file's own coordinates,
to their per-axis minimum and maximum; the manifest keeps the box with its centre and diagonal
(``metadata["bounds"]``), and ``blurgen render`` maps each object to a unit diagonal centred on
that box before the trajectory's scale (:mod:`blurgen.render.normalise`).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping

import numpy as np

# Blender holds vertex positions in float32 (about 7 significant digits): a box whose diagonal is
# below this fraction of its distance from the origin is resolved in steps of more than 0.1 % of
# its size, and one of diagonal 0 cannot be scaled to any size at all.
DEGENERATE_RELATIVE = 1e-4


@dataclasses.dataclass(frozen=True)
class Bounds:
    """Per-axis minimum and maximum of a model's vertex positions (float64, file coordinates)."""

    min: tuple[float, float, float]
    max: tuple[float, float, float]

    @classmethod
    def of_points(cls, points: np.ndarray) -> "Bounds | None":
        """The box of an (N, 3) array of points; None when there are none."""
        points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        if len(points) == 0:
            return None
        return cls(_triple(points.min(axis=0)), _triple(points.max(axis=0)))

    def union(self, other: "Bounds | None") -> "Bounds":
        """The box holding both (``other`` None: this one)."""
        if other is None:
            return self
        return Bounds(_triple(np.minimum(self.min, other.min)), _triple(np.maximum(self.max, other.max)))

    @property
    def center(self) -> tuple[float, float, float]:
        return _triple((np.asarray(self.min) + np.asarray(self.max)) / 2.0)

    @property
    def diagonal(self) -> float:
        return float(np.linalg.norm(np.asarray(self.max) - np.asarray(self.min)))

    def problem(self) -> str | None:
        """Why render cannot normalise this box (a ``broken`` reason), or None when it can."""
        values = (*self.min, *self.max)
        if not all(math.isfinite(v) for v in values):
            return "degenerate bounding box (non-finite coordinates)"
        reach = max(abs(v) for v in values)
        diagonal = self.diagonal
        if diagonal == 0.0 or diagonal <= DEGENERATE_RELATIVE * reach:
            return f"degenerate bounding box (diagonal {diagonal:.3g} at {reach:.3g} from the origin)"
        return None

    def to_metadata(self) -> dict[str, Any]:
        """The manifest's ``bounds`` entry: min, max, and the centre and diagonal render uses."""
        return {"min": list(self.min), "max": list(self.max), "center": list(self.center),
                "diagonal": self.diagonal}

    @classmethod
    def from_metadata(cls, entry: Mapping[str, Any]) -> "Bounds":
        return cls(_triple(entry["min"]), _triple(entry["max"]))


def _triple(values: Any) -> tuple[float, float, float]:
    x, y, z = (float(v) for v in values)
    return x, y, z
