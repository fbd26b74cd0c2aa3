"""Random 6D object trajectories: linear 3D translation, constant angular velocity about a fixed axis.

A trajectory has ``n`` instants t = 0..n-1 (24 by default, so 23 sub-intervals of equal duration)
and the object's pose at a fractional instant t is (world frame, Blender convention, see
``blurgen.render.camera``)::

    world_from_object(t) = T(p(t)) · Rot(axis, angle(t)) · R(base_quat) · S(scale)

with p(t) and angle(t) linear between consecutive instants (and, as sampled here, linear over the
whole trajectory). Object coordinates here are those of the unit object (bounding box centred at
the origin, diagonal 1), to which :mod:`blurgen.render.normalise` maps any mesh file, so
``scale`` is the object's size in metres and p(t) is its centre. ``to_job`` is what the Blender
script receives.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping

import numpy as np

from blurgen._blender_scripts.contract import INSTANTS
from blurgen.errors import BlurgenError
from blurgen.render.camera import BLENDER_TO_OPENCV, Camera


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """Rotation matrix (3x3) of a unit quaternion (w, x, y, z)."""
    w, x, y, z = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ])


def axis_angle_to_matrix(axis: np.ndarray, angle: float) -> np.ndarray:
    """Rotation by ``angle`` radians about unit ``axis`` (right-handed), Rodrigues' formula."""
    kx, ky, kz = np.asarray(axis, dtype=np.float64) / np.linalg.norm(axis)
    k = np.array([[0.0, -kz, ky], [kz, 0.0, -kx], [-ky, kx, 0.0]])
    return np.eye(3) + math.sin(angle) * k + (1.0 - math.cos(angle)) * (k @ k)


def _frozen(a: Any, shape: tuple[int, ...], name: str) -> np.ndarray:
    a = np.array(a, dtype=np.float64)
    if a.shape != shape or not np.all(np.isfinite(a)):
        raise ValueError(f"trajectory {name} must be finite with shape {shape}, got {a.shape}")
    a.flags.writeable = False
    return a


@dataclasses.dataclass(frozen=True, eq=False)
class Trajectory:
    """One object trajectory (see module doc); arrays are float64 and read-only."""

    positions: np.ndarray   # (n, 3) object centre at each instant, world metres
    axis: np.ndarray        # (3,) unit rotation axis, world frame
    angles: np.ndarray      # (n,) rotation about ``axis`` at each instant, radians
    base_quat: np.ndarray   # (4,) unit quaternion (w, x, y, z): orientation before the motion
    scale: float            # bounding-box diagonal in metres

    def __post_init__(self) -> None:
        n = np.shape(self.positions)[0] if np.ndim(self.positions) == 2 else -1
        if n < 2:
            raise ValueError(f"trajectory positions must be (n >= 2, 3), got {np.shape(self.positions)}")
        set_ = object.__setattr__  # frozen dataclass: normalise the fields once, here
        set_(self, "positions", _frozen(self.positions, (n, 3), "positions"))
        set_(self, "angles", _frozen(self.angles, (n,), "angles"))
        axis = _frozen(self.axis, (3,), "axis")
        quat = _frozen(self.base_quat, (4,), "base_quat")
        if not (np.isclose(np.linalg.norm(axis), 1.0, atol=1e-6) and np.isclose(np.linalg.norm(quat), 1.0, atol=1e-6)):
            raise ValueError("trajectory axis and base_quat must be unit vectors")
        set_(self, "axis", axis)
        set_(self, "base_quat", quat)
        if not (math.isfinite(self.scale) and self.scale > 0):
            raise ValueError(f"trajectory scale must be positive, got {self.scale}")
        set_(self, "scale", float(self.scale))

    @property
    def num_instants(self) -> int:
        return len(self.positions)

    def _interp(self, values: np.ndarray, t: float) -> np.ndarray:
        last = self.num_instants - 1
        if not 0.0 <= t <= last:
            raise ValueError(f"instant {t} outside the trajectory's [0, {last}]")
        i = min(int(math.floor(t)), last - 1)
        f = t - i
        return (1.0 - f) * values[i] + f * values[i + 1]

    def position(self, t: float) -> np.ndarray:
        """Object centre (3,) at fractional instant t."""
        return self._interp(self.positions, t)

    def rotation(self, t: float) -> np.ndarray:
        """World-from-object rotation (3x3) at fractional instant t: Rot(axis, angle(t)) · R(base_quat)."""
        return axis_angle_to_matrix(self.axis, float(self._interp(self.angles, t))) @ quat_to_matrix(self.base_quat)

    def world_from_object(self, t: float) -> np.ndarray:
        """4x4 T(p(t)) · Rot(axis, angle(t)) · R(base_quat) · S(scale), Blender world frame."""
        m = np.eye(4)
        m[:3, :3] = self.rotation(t) * self.scale
        m[:3, 3] = self.position(t)
        return m

    def camera_from_object(self, t: float) -> np.ndarray:
        """4x4 pose in the OpenCV camera frame (x right, y down, z forward), for users."""
        return BLENDER_TO_OPENCV @ self.world_from_object(t)

    def to_job(self) -> dict[str, Any]:
        """JSON-able description for the Blender script (plain lists of floats)."""
        return {"positions": self.positions.tolist(), "axis": self.axis.tolist(),
                "angles": self.angles.tolist(), "base_quat": self.base_quat.tolist(),
                "scale": self.scale}

    @classmethod
    def from_job(cls, job: Mapping[str, Any]) -> "Trajectory":
        """Inverse of ``to_job``."""
        return cls(positions=job["positions"], axis=job["axis"], angles=job["angles"],
                   base_quat=job["base_quat"], scale=job["scale"])


def _check_range(name: str, value: tuple[float, float], low: float) -> tuple[float, float]:
    lo, hi = (float(v) for v in value)
    if not (low <= lo <= hi and math.isfinite(hi)):
        raise BlurgenError(f"trajectory {name} must be [min, max] with {low} <= min <= max, got {list(value)}")
    return lo, hi


def _unit_vectors(rng: np.random.Generator, count: int, dim: int) -> np.ndarray:
    """Uniform on the unit sphere: isotropic Gaussian draws, normalised (a zero draw has probability 0)."""
    v = rng.standard_normal((count, dim))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def sample_trajectory(rng: np.random.Generator, camera: Camera, *, instants: int = INSTANTS,
                      depth: tuple[float, float] = (2.0, 3.5), object_size: tuple[float, float] = (0.9, 1.3),
                      translation: tuple[float, float] = (0.1, 1.6),
                      rotation_deg: tuple[float, float] = (0.0, 120.0), margin: float = 0.1,
                      max_tries: int = 1000) -> Trajectory:
    """A random trajectory whose centre stays inside the camera frustum at every instant.

    - orientation before the motion: uniform on SO(3) (a uniformly random unit quaternion, w >= 0);
    - rotation axis: uniform on the sphere; total angle uniform in ``rotation_deg``, spread evenly
      over the instants (constant angular velocity);
    - size (bounding-box diagonal, metres): uniform in ``object_size``;
    - start point: pixel uniform in the image shrunk by ``margin`` (a fraction of width and height
      at each border), depth (distance in front of the camera, along -z) uniform in ``depth``;
    - end point: start + L · d, d uniform on the sphere (objects also move in depth), L uniform in
      ``translation``; instants are evenly spaced on the segment.

    The start/direction/length triple is drawn ``max_tries`` times at once and the first triple
    whose end point also lies in the region is kept; the region (shrunk frustum between the two
    depth planes) is convex, so the whole segment lies inside it. Long displacements fit in fewer
    places, so when the region is tight the kept lengths lean towards the short end of
    ``translation``; ``mean_speed_px`` measures what came out. The draws are a fixed sequence
    from ``rng``: the same generator state gives the same trajectory.
    """
    depth = _check_range("depth", depth, 1e-6)
    object_size = _check_range("object_size", object_size, 1e-6)
    translation = _check_range("translation", translation, 0.0)
    rotation_deg = _check_range("rotation_deg", rotation_deg, 0.0)
    if not 0.0 <= margin < 0.5:
        raise BlurgenError(f"trajectory margin must be in [0, 0.5), got {margin}")
    if instants < 2 or max_tries < 1:
        raise ValueError(f"need instants >= 2 and max_tries >= 1, got {instants}, {max_tries}")

    quat = _unit_vectors(rng, 1, 4)[0]
    quat = quat if quat[0] >= 0 else -quat  # q and -q are the same rotation; keep one
    axis = _unit_vectors(rng, 1, 3)[0]
    scale = rng.uniform(*object_size)
    total_angle = math.radians(rng.uniform(*rotation_deg))

    margin_px = (margin * camera.width, margin * camera.height)
    uv = np.stack([rng.uniform(margin_px[0], camera.width - margin_px[0], max_tries),
                   rng.uniform(margin_px[1], camera.height - margin_px[1], max_tries)], axis=1)
    start = camera.unproject(uv, rng.uniform(*depth, max_tries))
    end = start + rng.uniform(*translation, (max_tries, 1)) * _unit_vectors(rng, max_tries, 3)
    end_depth = -end[:, 2]
    ok = camera.frustum_contains(end, margin_px) & (end_depth >= depth[0]) & (end_depth <= depth[1])
    if not ok.any():
        raise BlurgenError(
            f"could not place a trajectory: no start point and direction out of {max_tries} kept a "
            f"{translation[0]:g}-{translation[1]:g} m displacement inside the frustum (depth "
            f"{depth[0]:g}-{depth[1]:g} m, margin {margin:g}); widen the depth range, lower the "
            f"margin or the translation, or use a wider lens")
    k = int(np.argmax(ok))
    f = np.linspace(0.0, 1.0, instants)[:, None]
    return Trajectory(positions=(1.0 - f) * start[k] + f * end[k], axis=axis,
                      angles=np.linspace(0.0, total_angle, instants), base_quat=quat, scale=scale)


def mean_speed_px(traj: Trajectory, camera: Camera) -> float:
    """Mean image-plane displacement of the object centre per sub-interval, in pixels."""
    uv = camera.project(traj.positions)
    return float(np.mean(np.linalg.norm(np.diff(uv, axis=0), axis=1)))
