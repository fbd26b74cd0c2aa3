"""Cheap facts about one glTF model (``.gltf`` + buffers, or binary ``.glb``) without a mesh library.

A glTF file is JSON (in a ``.glb``, the first chunk) that describes meshes, the node tree that
places them, and where the binary data and images are. The scene's nodes are walked from its
roots, each mesh instance's world matrix is the product of the node matrices above it, and
its positions are boxed in the file's coordinates (glTF: +Y up, metres): read from the buffer
and transformed when they are plain float triples in a readable buffer (exact), else from the
corners of the accessor's ``min``/``max`` box (which the format requires; exact unless a node
turns the mesh by an angle other than a multiple of 90 degrees, then a box that holds it).
Images named by URI must exist beside the file; buffers too.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import mmap
import struct
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import numpy as np

from blurgen.assets.bounds import Bounds

GLB_MAGIC = b"glTF"
_CHUNK_JSON, _CHUNK_BIN = 0x4E4F534A, 0x004E4942
_FLOAT = 5126  # accessor componentType of float32
_TRIANGLES, _STRIP, _FAN = 4, 5, 6


class GltfError(ValueError):
    """The file is not a glTF the scanner can read (the message says why, in a few words)."""


@dataclasses.dataclass(frozen=True)
class GltfStats:
    """What the scanner needs from a glTF: counts, box, images and whether anything is coloured."""

    vertices: int
    faces: int
    bounds: Bounds | None
    images: tuple[str, ...]         # external image URIs (decoded), relative to the file's folder
    missing_buffers: tuple[str, ...]
    coloured: bool                  # an image or per-vertex colours: more than a flat material


def map_file(path: str | Path) -> memoryview:
    """The file's bytes, memory-mapped: binary buffers are read only where the positions lie, so
    a scan's memory does not grow with the size of a GLB (Objaverse's reach hundreds of MB)."""
    with open(path, "rb") as fh:
        try:
            return memoryview(mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ))
        except ValueError:  # an empty file cannot be mapped
            return memoryview(b"")


def read_gltf(path: str | Path) -> tuple[dict[str, Any], memoryview | None]:
    """The glTF JSON and, for a ``.glb``, its binary chunk (None if it has none)."""
    data = map_file(path)
    if bytes(data[:4]) != GLB_MAGIC:
        try:
            return json.loads(bytes(data).decode("utf-8-sig")), None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise GltfError(f"not glTF JSON: {type(exc).__name__}") from None
    if len(data) < 20:
        raise GltfError("truncated GLB header")
    _, _, length = struct.unpack_from("<4sII", data, 0)
    gltf, binary, offset = None, None, 12
    while offset + 8 <= min(length, len(data)):
        size, kind = struct.unpack_from("<II", data, offset)
        body = data[offset + 8:offset + 8 + size]
        if len(body) < size:
            raise GltfError("truncated GLB chunk")
        if kind == _CHUNK_JSON and gltf is None:
            try:
                gltf = json.loads(bytes(body).decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise GltfError(f"bad GLB JSON chunk: {type(exc).__name__}") from None
        elif kind == _CHUNK_BIN and binary is None:
            binary = body
        offset += 8 + size + (-size % 4)
    if gltf is None:
        raise GltfError("GLB without a JSON chunk")
    return gltf, binary


def gltf_stats(path: str | Path) -> GltfStats:
    """Counts, box, images of the glTF at ``path`` (:class:`GltfError` when it cannot be read)."""
    path = Path(path)
    gltf, glb_binary = read_gltf(path)
    if not isinstance(gltf, dict):
        raise GltfError("glTF JSON is not an object")
    try:
        return _Scan(path, gltf, glb_binary).run()
    except (KeyError, IndexError, TypeError, ValueError, struct.error) as exc:
        raise GltfError(f"malformed glTF ({type(exc).__name__}: {exc})") from None


class _Scan:
    def __init__(self, path: Path, gltf: dict[str, Any], glb_binary: memoryview | None) -> None:
        self.path, self.gltf, self.glb_binary = path, gltf, glb_binary
        self.buffers: dict[int, bytes | memoryview | None] = {}
        self.missing: list[str] = []

    def run(self) -> GltfStats:
        gltf = self.gltf
        for i, buf in enumerate(gltf.get("buffers", [])):
            self.buffers[i] = self._buffer(buf)
        vertices = faces = 0
        coloured = False
        bounds: Bounds | None = None
        for mesh_index, world in self._mesh_instances():
            for prim in gltf["meshes"][mesh_index].get("primitives", []):
                attributes = prim.get("attributes", {})
                coloured = coloured or "COLOR_0" in attributes
                if "POSITION" not in attributes:
                    continue
                accessor = gltf["accessors"][attributes["POSITION"]]
                count = int(accessor["count"])
                vertices += count
                mode = int(prim.get("mode", _TRIANGLES))
                n = int(gltf["accessors"][prim["indices"]]["count"]) if "indices" in prim else count
                faces += n // 3 if mode == _TRIANGLES else max(0, n - 2) if mode in (_STRIP, _FAN) else 0
                bounds = _box(self._positions(accessor), accessor, world, bounds)
        images = tuple(unquote(img["uri"]) for img in gltf.get("images", [])
                       if "uri" in img and not str(img["uri"]).startswith("data:"))
        coloured = coloured or bool(gltf.get("images"))
        return GltfStats(vertices, faces, bounds, images, tuple(self.missing), coloured)

    def _buffer(self, buf: dict[str, Any]) -> bytes | memoryview | None:
        uri = buf.get("uri")
        if uri is None:
            return self.glb_binary
        if uri.startswith("data:"):
            return base64.b64decode(uri.split(",", 1)[1])
        file = self.path.parent / unquote(uri)
        if not file.is_file():
            self.missing.append(unquote(uri))
            return None
        return map_file(file)

    def _mesh_instances(self) -> list[tuple[int, np.ndarray]]:
        """(mesh index, 4x4 world matrix) of every node with a mesh in the default scene."""
        nodes = self.gltf.get("nodes", [])
        scenes = self.gltf.get("scenes", [])
        if scenes:
            roots = scenes[int(self.gltf.get("scene", 0))].get("nodes", [])
        else:  # no scene: every node that is nobody's child
            children = {c for node in nodes for c in node.get("children", [])}
            roots = [i for i in range(len(nodes)) if i not in children]
        found, stack = [], [(int(r), np.eye(4)) for r in roots]
        while stack:
            index, parent = stack.pop()
            node = nodes[index]
            world = parent @ _node_matrix(node)
            if "mesh" in node:
                found.append((int(node["mesh"]), world))
            stack.extend((int(c), world) for c in node.get("children", []))
        return found

    def _positions(self, accessor: dict[str, Any]) -> np.ndarray | None:
        """The accessor's float positions (N, 3), or None when they cannot be read plainly."""
        if accessor.get("componentType") != _FLOAT or accessor.get("type") != "VEC3" or "sparse" in accessor:
            return None
        if "bufferView" not in accessor:
            return None
        view = self.gltf["bufferViews"][accessor["bufferView"]]
        data = self.buffers.get(int(view["buffer"]))
        if data is None:
            return None
        count = int(accessor["count"])
        stride = int(view.get("byteStride", 12))
        start = int(view.get("byteOffset", 0)) + int(accessor.get("byteOffset", 0))
        if count == 0 or start + stride * (count - 1) + 12 > len(data):
            return None
        rows = np.ndarray((count, 3), dtype="<f4", buffer=data, offset=start, strides=(stride, 4))
        return rows.astype(np.float64)


def _node_matrix(node: dict[str, Any]) -> np.ndarray:
    """A node's local matrix: ``matrix`` (column-major) or T · R · S."""
    if "matrix" in node:
        return np.array(node["matrix"], dtype=np.float64).reshape(4, 4).T
    m = np.eye(4)
    x, y, z, w = (float(v) for v in node.get("rotation", (0.0, 0.0, 0.0, 1.0)))
    rotation = np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])
    m[:3, :3] = rotation * np.array(node.get("scale", (1.0, 1.0, 1.0)), dtype=np.float64)
    m[:3, 3] = node.get("translation", (0.0, 0.0, 0.0))
    return m


def _box(points: np.ndarray | None, accessor: dict[str, Any], world: np.ndarray,
         bounds: Bounds | None) -> Bounds | None:
    if points is None:  # the accessor's own box, its 8 corners moved by the node
        if "min" not in accessor or "max" not in accessor:
            return bounds
        lo, hi = np.array(accessor["min"][:3], float), np.array(accessor["max"][:3], float)
        points = np.array([[(lo, hi)[(i >> a) & 1][a] for a in range(3)] for i in range(8)])
    moved = points @ world[:3, :3].T + world[:3, 3]
    box = Bounds.of_points(moved)
    return box.union(bounds) if box is not None else bounds
