"""The render camera: a pinhole at the world origin, as Blender sees it and as users get it.

World and camera frame (Blender): x right, y up, the camera looks down -Z, so points in front of
it have z < 0. Horizontal sensor fit and square pixels::

    fx = fy = focal_mm / sensor_width_mm * width
    (cx, cy) = (width / 2, height / 2)

in continuous pixel coordinates where pixel (i, j) covers [j, j+1) x [i, i+1) (its centre is at
(j + 0.5, i + 0.5)). A world point (x, y, z) lands at::

    u = cx + fx * x / (-z)        v = cy - fy * y / (-z)        (v grows downwards)

Users get poses in the OpenCV convention (x right, y down, z forward):
``camera_from_object = BLENDER_TO_OPENCV @ world_from_object`` and ``K = intrinsics()``, so that
``(u, v, 1) ~ K @ X / X_z`` for ``X = camera_from_object @ x``; both give the same pixels.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from blurgen.errors import BlurgenError
from blurgen.render.config import RenderConfig

# Blender camera frame -> OpenCV camera frame (flip y and z), homogeneous.
BLENDER_TO_OPENCV = np.diag([1.0, -1.0, -1.0, 1.0])
BLENDER_TO_OPENCV.flags.writeable = False


@dataclasses.dataclass(frozen=True)
class Camera:
    """Pinhole camera at the origin with identity rotation (Blender convention, see module doc)."""

    width: int
    height: int
    focal_mm: float
    sensor_width_mm: float

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise BlurgenError(f"camera size must be positive, got {self.width}x{self.height}")
        if self.focal_mm <= 0 or self.sensor_width_mm <= 0:
            raise BlurgenError(f"focal length and sensor width must be positive, "
                               f"got {self.focal_mm} mm and {self.sensor_width_mm} mm")

    @property
    def fx(self) -> float:
        """Focal length in pixels (horizontal sensor fit)."""
        return self.focal_mm / self.sensor_width_mm * self.width

    @property
    def fy(self) -> float:
        """Equal to fx: square pixels."""
        return self.fx

    @property
    def cx(self) -> float:
        return self.width / 2.0

    @property
    def cy(self) -> float:
        return self.height / 2.0

    def intrinsics(self) -> np.ndarray:
        """K (3x3, float64) in the OpenCV convention, same (cx, cy) as ``project``."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    def project(self, points_world: np.ndarray) -> np.ndarray:
        """Pixel coordinates (N, 2) = (u, v) of world points (N, 3); points behind give garbage."""
        p = np.asarray(points_world, dtype=np.float64).reshape(-1, 3)
        depth = -p[:, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            u = self.cx + self.fx * p[:, 0] / depth
            v = self.cy - self.fy * p[:, 1] / depth
        return np.stack([u, v], axis=1)

    def unproject(self, uv: np.ndarray, depth: np.ndarray) -> np.ndarray:
        """World points (N, 3) at pixel (u, v) and distance ``depth`` > 0 in front of the camera."""
        uv = np.asarray(uv, dtype=np.float64).reshape(-1, 2)
        depth = np.broadcast_to(np.asarray(depth, dtype=np.float64), (len(uv),))
        x = (uv[:, 0] - self.cx) / self.fx * depth
        y = (self.cy - uv[:, 1]) / self.fy * depth
        return np.stack([x, y, -depth], axis=1)

    def in_front(self, points_world: np.ndarray) -> np.ndarray:
        """(N,) bool: z < 0 (in front of the camera)."""
        return np.asarray(points_world, dtype=np.float64).reshape(-1, 3)[:, 2] < 0

    def frustum_contains(self, points_world: np.ndarray,
                         margin_px: float | tuple[float, float] = 0.0) -> np.ndarray:
        """(N,) bool: in front and projected inside the image shrunk by ``margin_px`` at each border.

        ``margin_px`` is one number or (horizontal, vertical); borders count as inside.
        """
        mx, my = (margin_px, margin_px) if np.isscalar(margin_px) else margin_px
        uv = self.project(points_world)
        with np.errstate(invalid="ignore"):
            inside = ((uv[:, 0] >= mx) & (uv[:, 0] <= self.width - mx)
                      & (uv[:, 1] >= my) & (uv[:, 1] <= self.height - my))
        return self.in_front(points_world) & inside


def camera_of(config: RenderConfig) -> Camera:
    """The camera a render config describes."""
    c = config.camera
    return Camera(c.width, c.height, c.focal_mm, c.sensor_width_mm)
