"""Exact optical flow between a blurred window's endpoints, from surface coordinates and poses.

With ``images.flow`` on, Blender renders, at every instant that is a window endpoint, the object
coordinates of the surface seen at each pixel centre (1 sample through the centre, see
``blender_scripts/render_trajectories.py``). The object is rigid and its pose at every instant
is known (``Trajectory.camera_from_object``), so the pixel a surface point moves to is a
projection, not an estimate::

    X = coords_t0[x]                                 (object coordinates, seen at pixel centre x)
    (u, v) = K · (P_t1 · X) / z                      (P = camera_from_object, OpenCV axes)
    flow_fwd[x] = (u, v) - x                         first(x) ≈ last(x + flow_fwd(x))

and ``flow_bwd`` the same from the t1 layer with the t0 pose. The camera and the background are
static: a pixel that sees the background at the source instant has flow 0.

Validity (``flow_valid[..., 0]`` forward, ``[..., 1]`` backward): the correspondence exists in
the other frame.

* An object point is valid when it lands inside the image in front of the camera and is not
  hidden there by another part of the object. Hidden is decided from the target instant's
  layer: of the (up to) 4 pixel centres around the landing point, take the farthest surface
  seen there; the point is visible when it is no more than ``depth_tol_px`` pixel footprints
  (``z / f`` metres at depth z) behind that surface. On a plane the point's inverse depth is a
  convex combination of its 4 neighbours' (inverse depth is affine in the image on a plane), so
  the farthest neighbour is never in front of a visible point: the test is exact there, and
  the tolerance only has to cover curvature and creases inside one pixel. A point hidden by a
  part of the object less than the tolerance in front of it, or within one pixel of the edge of
  what hides it, counts as visible; a landing point with no surface seen at any of the 4 centres
  (a sliver of the silhouette thinner than the pixel grid) counts as invalid.
* A background pixel is valid when the object does not cover that pixel centre at the target
  instant (the background there is seen in both frames).

Pixels whose centre the object covers count as object pixels, even where the anti-aliased frame
is a blend of object and background at that pixel.
"""

from __future__ import annotations

import numpy as np

DEPTH_TOL_PX = 2.0  # visibility tolerance in pixel footprints (see the module doc)


def pixel_centres(height: int, width: int) -> np.ndarray:
    """(H, W, 2) float64 continuous (u, v) of every pixel centre: (column + 0.5, row + 0.5)."""
    rows, cols = np.mgrid[0:height, 0:width]
    return np.stack([cols + 0.5, rows + 0.5], axis=-1).astype(np.float64)


def to_camera(coords: np.ndarray, camera_from_object: np.ndarray) -> np.ndarray:
    """(..., 3) float64 camera coordinates (OpenCV: x right, y down, z forward) of object points."""
    pose = np.asarray(camera_from_object, dtype=np.float64)
    return np.asarray(coords, dtype=np.float64) @ pose[:3, :3].T + pose[:3, 3]


def project(points_camera: np.ndarray, intrinsics: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(..., 2) pixel coordinates ``K · X / z`` and (...,) depth z; points with z <= 0 give NaN."""
    k = np.asarray(intrinsics, dtype=np.float64)
    p = np.asarray(points_camera, dtype=np.float64)
    z = p[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        zs = np.where(z > 0, z, np.nan)
        u = k[0, 0] * p[..., 0] / zs + k[0, 1] * p[..., 1] / zs + k[0, 2]
        v = k[1, 1] * p[..., 1] / zs + k[1, 2]
    return np.stack([u, v], axis=-1), z


def one_way_flow(coords_src: np.ndarray, hits_src: np.ndarray, coords_dst: np.ndarray,
                 hits_dst: np.ndarray, pose_dst: np.ndarray, intrinsics: np.ndarray, *,
                 depth_tol_px: float = DEPTH_TOL_PX) -> tuple[np.ndarray, np.ndarray]:
    """Flow (H, W, 2) float32 from the source instant to the destination one, and its validity.

    ``coords_*`` (H, W, 3): object coordinates of the surface at each pixel centre, ``hits_*``
    (H, W) bool: a surface is there; ``pose_dst``: camera_from_object (4x4, OpenCV axes) at the
    destination instant; ``intrinsics``: K. Object points that land behind the camera get flow
    0 (invalid); points that leave the image keep their exact flow, marked invalid.
    """
    hits_src, hits_dst = np.asarray(hits_src, dtype=bool), np.asarray(hits_dst, dtype=bool)
    height, width = hits_src.shape
    if (np.shape(coords_src) != (height, width, 3) or np.shape(coords_dst) != (height, width, 3)
            or hits_dst.shape != (height, width)):
        raise ValueError(f"coordinate layers must be (H, W, 3) with (H, W) hits, got "
                         f"{np.shape(coords_src)}, {hits_src.shape}, {np.shape(coords_dst)}, {hits_dst.shape}")
    flow = np.zeros((height, width, 2), dtype=np.float64)
    # Background (static camera, static background): flow 0, seen in both frames unless the
    # object covers the pixel at the destination instant.
    valid = ~hits_src & ~hits_dst

    rows, cols = np.nonzero(hits_src)
    target, z = project(to_camera(coords_src[rows, cols], pose_dst), intrinsics)
    ahead = z > 0
    centres = np.stack([cols + 0.5, rows + 0.5], axis=-1)
    flow[rows[ahead], cols[ahead]] = target[ahead] - centres[ahead]

    u, v = target[:, 0], target[:, 1]
    with np.errstate(invalid="ignore"):
        inside = ahead & (u >= 0) & (u < width) & (v >= 0) & (v < height)
    visible = np.zeros(len(rows), dtype=bool)
    if inside.any():
        depth_dst = np.where(hits_dst, to_camera(coords_dst, pose_dst)[..., 2], -np.inf)
        # The 2x2 pixel centres around the landing point (clamped at the image border).
        c0 = np.floor(u[inside] - 0.5).astype(np.int64)
        r0 = np.floor(v[inside] - 0.5).astype(np.int64)
        farthest = np.full(len(c0), -np.inf)
        for dr in (0, 1):
            for dc in (0, 1):
                r = np.clip(r0 + dr, 0, height - 1)
                c = np.clip(c0 + dc, 0, width - 1)
                farthest = np.maximum(farthest, depth_dst[r, c])
        zi = z[inside]
        focal = float(min(intrinsics[0][0], intrinsics[1][1]))
        visible[inside] = farthest >= zi - depth_tol_px * zi / focal
    valid[rows, cols] = visible
    return flow.astype(np.float32), valid


def window_flow(coords_start: np.ndarray, hits_start: np.ndarray, pose_start: np.ndarray,
                coords_end: np.ndarray, hits_end: np.ndarray, pose_end: np.ndarray,
                intrinsics: np.ndarray, *, depth_tol_px: float = DEPTH_TOL_PX) -> dict[str, np.ndarray]:
    """``flow_fwd``, ``flow_bwd`` (H, W, 2) float32 and ``flow_valid`` (H, W, 2) bool of a window.

    Forward maps the window's first instant to its last (``first(x) ≈ last(x + flow_fwd(x))``),
    backward the other way; ``flow_valid[..., 0]`` is the forward validity, ``[..., 1]`` the
    backward one.
    """
    fwd, valid_fwd = one_way_flow(coords_start, hits_start, coords_end, hits_end, pose_end, intrinsics,
                                  depth_tol_px=depth_tol_px)
    bwd, valid_bwd = one_way_flow(coords_end, hits_end, coords_start, hits_start, pose_start, intrinsics,
                                  depth_tol_px=depth_tol_px)
    return {"flow_fwd": fwd, "flow_bwd": bwd, "flow_valid": np.stack([valid_fwd, valid_bwd], axis=-1)}


def still_flow(height: int, width: int) -> dict[str, np.ndarray]:
    """The flow fields of a sharp image (one instant: first = last): zero and valid everywhere."""
    zero = np.zeros((height, width, 2), dtype=np.float32)
    return {"flow_fwd": zero, "flow_bwd": zero.copy(), "flow_valid": np.ones((height, width, 2), dtype=bool)}
