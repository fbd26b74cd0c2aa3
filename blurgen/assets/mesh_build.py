"""Building blocks for the demo meshes: boxes, surfaces of revolution, swept tubes, with UVs.

Each part carries per-vertex UVs so that a texture maps properly once the mesh is written as
OBJ: curved parts get their own parameterisation (around x along; the seam column of vertices
is duplicated so that u runs 0..1 without a wrap-around triangle), flat-faced parts a planar
projection along the face's dominant axis, applied after normalisation (when every coordinate
lies in [-0.5, 0.5], so UVs land in [0, 1]). Faces are wound counter-clockwise seen from
outside (outward normals), which the preview's shading and Blender's backface settings rely on.
"""

from __future__ import annotations

import dataclasses

import numpy as np

# Planar UV axes per dominant normal axis (x, y, z): which coordinates become (u, v).
_PLANAR = {0: (2, 1), 1: (0, 2), 2: (0, 1)}


@dataclasses.dataclass
class Mesh:
    """Triangles with per-vertex UVs; ``uv_axis[i] >= 0`` marks a vertex awaiting planar UVs."""

    vertices: np.ndarray  # (N, 3) float64
    faces: np.ndarray  # (M, 3) int64, 0-based
    uvs: np.ndarray  # (N, 2) float64
    uv_axis: np.ndarray  # (N,) int8, -1 when ``uvs`` is final

    def transformed(self, matrix: np.ndarray | None = None, offset=(0.0, 0.0, 0.0)) -> "Mesh":
        """Rotate/scale by a 3x3 ``matrix`` (det > 0 keeps the winding), then translate."""
        v = self.vertices if matrix is None else self.vertices @ np.asarray(matrix, float).T
        return dataclasses.replace(self, vertices=v + np.asarray(offset, float))


def concat(parts: list[Mesh]) -> Mesh:
    """One mesh from several parts (vertex indices offset, nothing merged)."""
    offsets = np.cumsum([0] + [len(p.vertices) for p in parts[:-1]])
    return Mesh(np.concatenate([p.vertices for p in parts]),
                np.concatenate([p.faces + o for p, o in zip(parts, offsets)]),
                np.concatenate([p.uvs for p in parts]),
                np.concatenate([p.uv_axis for p in parts]))


def rot_x(deg: float) -> np.ndarray:
    """Rotation matrix about +x."""
    c, s = np.cos(np.radians(deg)), np.sin(np.radians(deg))
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def rot_y(deg: float) -> np.ndarray:
    """Rotation matrix about +y."""
    c, s = np.cos(np.radians(deg)), np.sin(np.radians(deg))
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def rot_z(deg: float) -> np.ndarray:
    """Rotation matrix about +z."""
    c, s = np.cos(np.radians(deg)), np.sin(np.radians(deg))
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def hexahedron(corners: np.ndarray, splits: int = 3) -> Mesh:
    """A six-sided solid from 8 corners indexed ``ix + 2*iy + 4*iz`` (boxes, tapers, shears).

    Each side is a ``splits`` x ``splits`` grid of quads (bilinear between its corners), as
    scanned meshes are finer than their flat faces need; every side has its own vertices (flat
    shading, planar UVs per side) and is wound so that its normal points away from the centre.
    """
    corners = np.asarray(corners, float).reshape(8, 3)
    centre = corners.mean(axis=0)
    t = np.linspace(0.0, 1.0, splits + 1)
    tb, tc = (g.ravel()[:, None] for g in np.meshgrid(t, t, indexing="ij"))
    cols = splits + 1
    grid = np.array([[i * cols + j, (i + 1) * cols + j, (i + 1) * cols + j + 1, i * cols + j + 1]
                     for i in range(splits) for j in range(splits)])
    verts, faces, axes = [], [], []
    for axis in range(3):
        b, c = [a for a in range(3) if a != axis]
        for side in (0, 1):
            quad = []
            for ib, ic in ((0, 0), (1, 0), (1, 1), (0, 1)):
                bits = [0, 0, 0]
                bits[axis], bits[b], bits[c] = side, ib, ic
                quad.append(corners[bits[0] + 2 * bits[1] + 4 * bits[2]])
            p00, p10, p11, p01 = quad
            points = (p00 * (1 - tb) * (1 - tc) + p10 * tb * (1 - tc) + p11 * tb * tc + p01 * (1 - tb) * tc)
            normal = np.cross(p10 - p00, p01 - p00)
            cells = grid
            if np.dot(normal, np.mean(quad, axis=0) - centre) < 0:
                cells = grid[:, ::-1]
                normal = -normal
            base = sum(len(v) for v in verts)
            verts.append(points)
            faces.append(base + np.concatenate([cells[:, [0, 1, 2]], cells[:, [0, 2, 3]]]))
            axes.extend([int(np.argmax(np.abs(normal)))] * len(points))
    v = np.concatenate(verts)
    return Mesh(v, np.concatenate(faces).astype(np.int64), np.zeros((len(v), 2)), np.array(axes, np.int8))


def box(center, size) -> Mesh:
    """Axis-aligned box."""
    return tapered_box(center, size, size[0], size[2])


def tapered_box(center, size, top_x: float, top_z: float, shift_top=(0.0, 0.0)) -> Mesh:
    """Box whose top face is ``top_x`` by ``top_z`` (shifted by ``shift_top`` in x, z): cabins, fins, legs."""
    cx, cy, cz = center
    sx, sy, sz = size
    corners = np.zeros((8, 3))
    for i in range(8):
        ix, iy, iz = i & 1, (i >> 1) & 1, (i >> 2) & 1
        hx, hz = (top_x, top_z) if iy else (sx, sz)
        dx, dz = shift_top if iy else (0.0, 0.0)
        corners[i] = (cx + dx + (ix - 0.5) * hx, cy + (iy - 0.5) * sy, cz + dz + (iz - 0.5) * hz)
    return hexahedron(corners)


def _grid_faces(rings: int, segments: int, radii: np.ndarray) -> np.ndarray:
    """Triangles of a (rings x segments+1) vertex grid, outward for a profile going up its axis.

    Ring k, column j has index ``k*(segments+1) + j``. Where a ring has zero radius (a pole)
    the triangle that would collapse there is left out.
    """
    cols = segments + 1
    faces = []
    for k in range(rings - 1):
        for j in range(segments):
            a, b = k * cols + j, (k + 1) * cols + j
            if radii[k + 1] > 0:
                faces.append([a, b, b + 1])
            if radii[k] > 0:
                faces.append([a, b + 1, a + 1])
    return np.array(faces, np.int64)


def revolve(profile: np.ndarray, segments: int = 32) -> Mesh:
    """Surface of revolution about +y of a profile of (radius, height) points.

    Normals point to the left of the profile's direction of travel: a profile that goes up the
    outside and comes back across the top faces outward; one that comes down an inner wall
    faces the axis (the inside of a mug). Start or end at radius 0 to close a pole.
    UVs: u = angle / 2pi (seam duplicated), v = arc length along the profile (0..1).
    """
    profile = np.asarray(profile, float)
    radii, heights = profile[:, 0], profile[:, 1]
    theta = np.linspace(0.0, 2 * np.pi, segments + 1)
    theta[-1] = 0.0  # the seam column sits exactly on the first one
    x = radii[:, None] * np.cos(theta)[None, :]
    z = radii[:, None] * np.sin(theta)[None, :]
    y = np.repeat(heights[:, None], segments + 1, axis=1)
    verts = np.stack([x, y, z], axis=-1).reshape(-1, 3)
    arc = np.concatenate([[0.0], np.cumsum(np.hypot(np.diff(radii), np.diff(heights)))])
    v = arc / arc[-1] if arc[-1] > 0 else np.zeros_like(arc)
    u = np.linspace(0.0, 1.0, segments + 1)
    uvs = np.stack(np.meshgrid(u, v), axis=-1).reshape(-1, 2)
    n = len(verts)
    return Mesh(verts, _grid_faces(len(profile), segments, radii), uvs, np.full(n, -1, np.int8))


def tube(path: np.ndarray, radius: float, segments: int = 12) -> Mesh:
    """A circular tube of ``radius`` swept along a 3D polyline (open ends): handles, rails.

    Frames are parallel-transported along the path so the tube does not twist. UVs: u around,
    v along the path (arc length, 0..1).
    """
    path = np.asarray(path, float)
    tangents = np.gradient(path, axis=0)
    tangents /= np.linalg.norm(tangents, axis=1, keepdims=True)
    helper = np.array([0.0, 0.0, 1.0]) if abs(tangents[0, 2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    normal = np.cross(tangents[0], helper)
    normal /= np.linalg.norm(normal)
    rings = []
    phi = -np.linspace(0.0, 2 * np.pi, segments + 1)  # negative: same handedness as revolve()
    phi[-1] = 0.0
    for point, t in zip(path, tangents):
        normal = normal - np.dot(normal, t) * t
        normal /= np.linalg.norm(normal)
        binormal = np.cross(t, normal)
        rings.append(point + radius * (np.cos(phi)[:, None] * normal + np.sin(phi)[:, None] * binormal))
    verts = np.concatenate(rings)
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(path, axis=0), axis=1))])
    u = np.linspace(0.0, 1.0, segments + 1)
    uvs = np.stack(np.meshgrid(u, arc / arc[-1]), axis=-1).reshape(-1, 2)
    return Mesh(verts, _grid_faces(len(path), segments, np.ones(len(path))), uvs,
                np.full(len(verts), -1, np.int8))


def drop_unused(mesh: Mesh) -> Mesh:
    """Remove vertices no face uses (a pole ring has one), renumbering the faces."""
    used = np.zeros(len(mesh.vertices), bool)
    used[mesh.faces.ravel()] = True
    if used.all():
        return mesh
    new_index = np.cumsum(used) - 1
    return Mesh(mesh.vertices[used], new_index[mesh.faces], mesh.uvs[used], mesh.uv_axis[used])


def normalise(mesh: Mesh) -> Mesh:
    """ShapeNet's normalisation (bounding box centred at the origin, diagonal 1), then planar UVs.

    Unused vertices are dropped first: they would count in the OBJ but not in a loaded mesh.
    """
    mesh = drop_unused(mesh)
    lo, hi = mesh.vertices.min(axis=0), mesh.vertices.max(axis=0)
    verts = (mesh.vertices - (lo + hi) / 2) / np.linalg.norm(hi - lo)
    uvs = mesh.uvs.copy()
    for axis, (a, b) in _PLANAR.items():
        sel = mesh.uv_axis == axis
        uvs[sel] = np.clip(verts[sel][:, [a, b]] + 0.5, 0.0, 1.0)
    return Mesh(verts, mesh.faces, uvs, np.full(len(verts), -1, np.int8))
