"""Every object to one size and origin: a unit bounding-box diagonal centred on its bounds.

Meshes come in their own units and origins (millimetres or kilometres, an origin at a corner or
far away). Render maps the file's coordinates x to ``(x - centre) / diagonal`` (the box the
scanner recorded, :mod:`blurgen.assets.bounds`) before the trajectory's rotation and scale, so
``trajectory.object_size`` is the bounding-box diagonal in metres and the trajectory's point is
the box's centre, whatever the file. The full pose is then::

    world_from_file(t) = T(p(t)) · Rot(axis, angle(t)) · R(base_quat) · S(scale) · S(1/diagonal) · T(-centre)

ShapeNet's models and blurgen's demo objects are normalised already, to the precision of their
text (6 decimals: the demo set's diagonals are within 1.5e-6 of 1, its centres exactly 0). A box
within :data:`TOLERANCE` of the unit one counts as normalised and the transform is left out
entirely, so their renders and poses stay the same bit for bit; what it leaves is a size change
below 1e-5 (0.003 px on an object 300 px across).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import numpy as np

from blurgen.assets.bounds import Bounds
from blurgen.errors import BlurgenError

TOLERANCE = 1e-5  # relative: |centre| <= TOLERANCE * diagonal and |diagonal - 1| <= TOLERANCE


@dataclasses.dataclass(frozen=True)
class Normalisation:
    """The map from a mesh file's coordinates to the unit object render moves (see module doc)."""

    center: tuple[float, float, float]
    diagonal: float

    @classmethod
    def of_asset(cls, asset_id: str, metadata: Mapping[str, Any]) -> "Normalisation":
        """From an object manifest entry's ``metadata["bounds"]``; a one-line error without it."""
        entry = metadata.get("bounds")
        if not isinstance(entry, Mapping):
            raise BlurgenError(f"object '{asset_id}' has no bounds in its manifest (scanned by an older "
                               f"blurgen): run blurgen assets scan-shapenet or scan-meshes again")
        try:
            bounds = Bounds.from_metadata(entry)
        except (KeyError, TypeError, ValueError):
            raise BlurgenError(f"object '{asset_id}': bounds in its manifest are not min/max triples: "
                               f"run blurgen assets scan-shapenet or scan-meshes again") from None
        problem = bounds.problem()
        if problem:
            raise BlurgenError(f"object '{asset_id}' cannot be rendered: {problem}")
        return cls(bounds.center, bounds.diagonal)

    @property
    def is_identity(self) -> bool:
        """The file is normalised already (within TOLERANCE): nothing is applied."""
        return (abs(self.diagonal - 1.0) <= TOLERANCE
                and max(abs(c) for c in self.center) <= TOLERANCE * self.diagonal)

    def matrix(self) -> np.ndarray:
        """4x4 float64 ``S(1/diagonal) · T(-centre)`` (the identity when :attr:`is_identity`)."""
        m = np.eye(4)
        if not self.is_identity:
            m[:3, :3] /= self.diagonal
            m[:3, 3] = -np.asarray(self.center) / self.diagonal
        return m

    def to_job(self) -> dict[str, Any]:
        """The Blender item's ``normalise`` entry; none when nothing is applied."""
        if self.is_identity:
            return {}
        return {"normalise": {"center": list(self.center), "diagonal": self.diagonal}}


IDENTITY = Normalisation((0.0, 0.0, 0.0), 1.0)
