"""Meshes in every format ``blurgen assets scan-meshes`` reads, written by hand for the tests.

A UV sphere of radius ``r``: its longitudes are a multiple of 4 and it has both poles, so its
bounding box is exactly the cube of side 2r about its centre (diagonal ``2·r·√3``), in every
format. It can be scaled and moved far from the origin, and textured (OBJ + MTL + PNG, glTF with
an image) or coloured per vertex (PLY), so that render has something other than a flat grey.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import cv2
import numpy as np

LONGITUDES, LATITUDES = 32, 16


def sphere(radius: float = 0.5, center=(0.0, 0.0, 0.0)) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(vertices (N, 3) float64, uvs (N, 2), triangles (M, 3) int) of a UV sphere, poles on ±y."""
    theta = np.linspace(0.0, np.pi, LATITUDES + 1)          # from the north pole down
    phi = np.linspace(0.0, 2 * np.pi, LONGITUDES + 1)       # seam duplicated for the UVs
    t, p = np.meshgrid(theta, phi, indexing="ij")
    xyz = np.stack([np.sin(t) * np.cos(p), np.cos(t), np.sin(t) * np.sin(p)], axis=-1).reshape(-1, 3)
    # exact zeros and ones where the box is decided (cos(pi/2) is 6e-17, not 0)
    xyz = np.round(xyz, 15)
    uv = np.stack([p / (2 * np.pi), 1.0 - t / np.pi], axis=-1).reshape(-1, 2)
    cols = LONGITUDES + 1
    tris = []
    for i in range(LATITUDES):
        for j in range(LONGITUDES):
            a, b, c, d = i * cols + j, i * cols + j + 1, (i + 1) * cols + j, (i + 1) * cols + j + 1
            if i > 0:  # wound counter-clockwise seen from outside: normals point out
                tris.append((a, b, c))
            if i < LATITUDES - 1:
                tris.append((b, d, c))
    return radius * xyz + np.asarray(center, float), uv, np.array(tris, np.int64)


def checker_png(path: Path, size: int = 32) -> Path:
    """A red and yellow checkerboard (RGB) as PNG."""
    cells = (np.indices((size, size)).sum(axis=0) // 4) % 2
    image = np.where(cells[..., None] == 1, [0, 220, 255], [30, 30, 200]).astype(np.uint8)  # BGR
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), image)
    return path


def write_obj(path: Path, vertices: np.ndarray, uvs: np.ndarray, tris: np.ndarray, texture: str | None = "tex.png",
              make_texture: bool = True) -> Path:
    """OBJ (+ MTL naming ``texture`` relative to the OBJ, written unless ``make_texture`` is False)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"mtllib {path.stem}.mtl"] if texture else []
    lines += [f"v {x!r} {y!r} {z!r}" for x, y, z in vertices.tolist()]
    lines += [f"vt {u!r} {v!r}" for u, v in uvs.tolist()]
    lines += ["usemtl skin"] if texture else []
    lines += [f"f {a}/{a} {b}/{b} {c}/{c}" for a, b, c in (tris + 1).tolist()]
    path.write_text("\n".join(lines) + "\n")
    if texture:
        path.with_suffix(".mtl").write_text(f"newmtl skin\nKd 0.8 0.8 0.8\nmap_Kd {texture}\n")
        if make_texture:
            checker_png(path.parent / texture)
    return path


def _pad(data: bytes, fill: bytes = b"\0") -> bytes:
    return data + fill * (-len(data) % 4)


def write_gltf(path: Path, vertices: np.ndarray, uvs: np.ndarray, tris: np.ndarray, *,
               node: dict | None = None, texture: bool = True, make_texture: bool = True) -> Path:
    """A ``.gltf`` (buffer in ``<stem>.bin``, image ``<stem>.png``) or ``.glb`` (all inside).

    ``node``: the mesh node's transform (``translation``, ``rotation`` [x, y, z, w], ``scale``
    or ``matrix``), applied by the glTF reader to ``vertices``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    glb = path.suffix.lower() == ".glb"
    positions = vertices.astype("<f4").tobytes()
    texcoords = uvs.astype("<f4").tobytes()
    indices = tris.astype("<u4").tobytes()
    blob = _pad(positions) + _pad(texcoords) + _pad(indices)
    views = [{"buffer": 0, "byteOffset": 0, "byteLength": len(positions)},
             {"buffer": 0, "byteOffset": len(_pad(positions)), "byteLength": len(texcoords)},
             {"buffer": 0, "byteOffset": len(_pad(positions)) + len(_pad(texcoords)), "byteLength": len(indices)}]
    v32 = vertices.astype(np.float32)
    gltf: dict = {
        "asset": {"version": "2.0", "generator": "blurgen tests"},
        "scene": 0, "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0, **(node or {})}],
        "meshes": [{"primitives": [{"attributes": {"POSITION": 0, "TEXCOORD_0": 1}, "indices": 2,
                                    **({"material": 0} if texture else {})}]}],
        "accessors": [
            {"bufferView": 0, "componentType": 5126, "count": len(vertices), "type": "VEC3",
             "min": v32.min(axis=0).tolist(), "max": v32.max(axis=0).tolist()},
            {"bufferView": 1, "componentType": 5126, "count": len(uvs), "type": "VEC2"},
            {"bufferView": 2, "componentType": 5125, "count": tris.size, "type": "SCALAR"}],
        "bufferViews": views,
    }
    if texture:
        png = path.with_suffix(".png")
        checker_png(png)
        gltf["materials"] = [{"pbrMetallicRoughness": {"baseColorTexture": {"index": 0}, "metallicFactor": 0.0}}]
        gltf["textures"] = [{"source": 0}]
        if glb:
            image = png.read_bytes()
            png.unlink()
            views.append({"buffer": 0, "byteOffset": len(blob), "byteLength": len(image)})
            blob += _pad(image)
            gltf["images"] = [{"bufferView": 3, "mimeType": "image/png"}]
        else:
            gltf["images"] = [{"uri": png.name}]
            if not make_texture:
                png.unlink()
    if glb:
        gltf["buffers"] = [{"byteLength": len(blob)}]
        text = _pad(json.dumps(gltf).encode(), b" ")
        body = struct.pack("<II", len(text), 0x4E4F534A) + text + struct.pack("<II", len(blob), 0x004E4942) + blob
        path.write_bytes(b"glTF" + struct.pack("<II", 2, 12 + len(body)) + body)
    else:
        path.with_suffix(".bin").write_bytes(blob)
        gltf["buffers"] = [{"uri": path.with_suffix(".bin").name, "byteLength": len(blob)}]
        path.write_text(json.dumps(gltf, indent=1))
    return path


def write_ply(path: Path, vertices: np.ndarray, tris: np.ndarray, *, binary: bool = True,
              colours: bool = True, uvs: np.ndarray | None = None) -> Path:
    """PLY with float x, y, z (+ uchar red, green, blue) and triangle faces, binary or ASCII.

    ``uvs``: also float s, t per vertex and ``comment TextureFile <stem>.png`` (a checkerboard).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    n = len(vertices)
    rgb = np.stack([np.linspace(40, 250, n), np.full(n, 200.0), np.linspace(250, 40, n)], 1).astype(np.uint8)
    props = "property float x\nproperty float y\nproperty float z\n"
    props += "property uchar red\nproperty uchar green\nproperty uchar blue\n" if colours else ""
    props += "property float s\nproperty float t\n" if uvs is not None else ""
    texture = f"comment TextureFile {path.stem}.png\n" if uvs is not None else ""
    if uvs is not None:
        checker_png(path.with_suffix(".png"))
    header = (f"ply\nformat {'binary_little_endian' if binary else 'ascii'} 1.0\ncomment blurgen test\n{texture}"
              f"element vertex {n}\n{props}element face {len(tris)}\nproperty list uchar int vertex_indices\n"
              "end_header\n").encode()
    if binary:
        fields = [("x", "<f4"), ("y", "<f4"), ("z", "<f4")] + ([("r", "u1"), ("g", "u1"), ("b", "u1")] if colours else [])
        fields += [("s", "<f4"), ("t", "<f4")] if uvs is not None else []
        rows = np.zeros(n, dtype=fields)
        rows["x"], rows["y"], rows["z"] = vertices.T
        if colours:
            rows["r"], rows["g"], rows["b"] = rgb.T
        if uvs is not None:
            rows["s"], rows["t"] = uvs.T
        faces = np.zeros(len(tris), dtype=[("n", "u1"), ("i", "<i4", 3)])
        faces["n"], faces["i"] = 3, tris
        path.write_bytes(header + rows.tobytes() + faces.tobytes())
    else:
        texcoords = uvs.tolist() if uvs is not None else [[]] * n
        lines = [" ".join([repr(float(np.float32(c))) for c in v] + ([str(c) for c in col] if colours else [])
                          + [repr(float(np.float32(c))) for c in st])
                 for v, col, st in zip(vertices.tolist(), rgb.tolist(), texcoords)]
        lines += [f"3 {a} {b} {c}" for a, b, c in tris.tolist()]
        path.write_bytes(header + ("\n".join(lines) + "\n").encode())
    return path
