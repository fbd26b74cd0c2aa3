"""Writing a textured mesh in ShapeNetCore v2's file layout, byte for byte deterministic.

``<model>/models/model_normalized.obj`` (``mtllib``, ``v``, ``vt``, ``usemtl``, ``f v/vt``),
``model_normalized.mtl`` naming ``../images/texture0.png``, ``model_normalized.json`` (bounding
box and centroid, as ShapeNet ships) and ``<model>/images/texture0.png``. The OBJ is written by
hand rather than by trimesh so that the layout matches ShapeNet's exactly and the text does not
depend on a library version.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from blurgen.assets.mesh_build import Mesh
from blurgen.viz.sheet import write_png

OBJ_NAME = "model_normalized.obj"
MTL_NAME = "model_normalized.mtl"
JSON_NAME = "model_normalized.json"
TEXTURE_NAME = "texture0.png"
MATERIAL = "material_0"


def _rows(prefix: str, values: np.ndarray, fmt: str) -> str:
    values = np.round(values, 6) + 0.0  # + 0.0 turns -0.0 into 0.0, so no "-0.000000"
    line = prefix + " " + " ".join([fmt] * values.shape[1]) + "\n"
    return "".join(line % tuple(row) for row in values.tolist())


def obj_text(mesh: Mesh, header: str = "") -> str:
    """OBJ text: one ``vt`` per ``v`` (same index), triangles as ``f v/vt``, 1-based."""
    faces = mesh.faces + 1
    parts = [f"# {header}\n" if header else "", f"mtllib {MTL_NAME}\n",
             _rows("v", mesh.vertices, "%.6f"), _rows("vt", mesh.uvs, "%.6f"), f"usemtl {MATERIAL}\n",
             "".join(f"f {a}/{a} {b}/{b} {c}/{c}\n" for a, b, c in faces.tolist())]
    return "".join(parts)


def mtl_text(texture_rel: str) -> str:
    """A one-material MTL in ShapeNet's style, its diffuse map ``texture_rel`` (relative to the MTL)."""
    return (f"newmtl {MATERIAL}\n"
            "Ka 0.200000 0.200000 0.200000\n"
            "Kd 0.800000 0.800000 0.800000\n"
            "Ks 0.000000 0.000000 0.000000\n"
            "Ns 10.000000\n"
            "d 1.000000\n"
            "illum 2\n"
            f"map_Kd {texture_rel}\n")


def bounds_json(mesh: Mesh, model_id: str) -> str:
    """ShapeNet's ``model_normalized.json``: bounding box and area-weighted surface centroid."""
    tri = mesh.vertices[mesh.faces]
    area = np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    centroid = (tri.mean(axis=1) * area[:, None]).sum(axis=0) / area.sum()
    data = {"id": model_id, "min": _r(mesh.vertices.min(axis=0)), "max": _r(mesh.vertices.max(axis=0)),
            "centroid": _r(centroid), "numVertices": int(len(mesh.vertices)), "numFaces": int(len(mesh.faces))}
    return json.dumps(data, sort_keys=True, indent=2) + "\n"


def _r(v: np.ndarray) -> list[float]:
    return [float(x) + 0.0 for x in np.round(v, 6)]


def write_model(model_dir: Path, mesh: Mesh, texture: np.ndarray, header: str = "") -> Path:
    """Write one model folder in ShapeNet's layout; returns the OBJ's path."""
    models = model_dir / "models"
    models.mkdir(parents=True, exist_ok=True)
    obj = models / OBJ_NAME
    obj.write_text(obj_text(mesh, header), encoding="ascii", newline="\n")
    (models / MTL_NAME).write_text(mtl_text(f"../images/{TEXTURE_NAME}"), encoding="ascii", newline="\n")
    (models / JSON_NAME).write_text(bounds_json(mesh, model_dir.name), encoding="ascii", newline="\n")
    write_png(model_dir / "images" / TEXTURE_NAME, texture)
    return obj
