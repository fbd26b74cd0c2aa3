"""Scan a folder of meshes in any layout (OBJ, glTF/GLB, PLY) into an :class:`AssetManifest`.

Layouts it reads (``ROOT`` is ``--root``)::

    ROOT/<category>/<name>.{obj,glb,gltf,ply}          a file per model, a folder per category
    ROOT/<model>/meshes/model.obj, materials/...        a folder per model (Google Scanned Objects)
    ROOT/glbs/000-023/<uid>.glb                         Objaverse's download folder

Every mesh file below the root is a model (hidden folders and files skipped), except that files
of one folder with the same stem are one model in several formats, of which the first of
:data:`FORMAT_PREFERENCE` is kept. Its id is its path below the root without the extension; its
category is ``category`` when given (one collection without categories, such as Google Scanned
Objects), else the first folder below the root (``uncategorized`` for files in the root itself).
The checks and the metadata are the ShapeNet scanner's (:mod:`blurgen.assets.mesh_checks`), the
manifest has the same shape, so render reads either; meshes are streamed, never loaded, and
models are spread over processes in batches with joblib behind a tqdm bar.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from pathlib import Path, PurePosixPath
from typing import Any, Sequence

from blurgen.assets.batches import scan_in_batches
from blurgen.assets.manifest import AssetManifest
from blurgen.assets.mesh_checks import mesh_facts
from blurgen.assets.obj_stats import DEFAULT_CHUNK_SIZE
from blurgen.assets.shapenet_scan import CategorySummary, summarize
from blurgen.errors import BlurgenError

MANIFEST_NAME = "meshes"
MANIFEST_VERSION = "1"
FORMAT_PREFERENCE = (".obj", ".glb", ".gltf", ".ply")  # OBJ first: the importer ShapeNet runs through
DEFAULT_LICENSE = "unknown: see the collection's terms"
DEFAULT_MAX_FACES = 200_000
ROOT_CATEGORY = "uncategorized"
BATCH_SIZE = 32


@dataclasses.dataclass
class MeshScan:
    """What :func:`scan_meshes` found: the manifest and a summary row per category."""

    manifest: AssetManifest
    summary: list[CategorySummary]
    excluded: list[str] = dataclasses.field(default_factory=list)  # (format_summary's column; none here)


def find_meshes(root: Path) -> list[str]:
    """Mesh files below ``root`` (POSIX paths relative to it, sorted), one per folder and stem."""
    chosen: dict[str, str] = {}  # folder/stem -> the file kept
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        rel = Path(folder).relative_to(root)
        for name in files:
            suffix = Path(name).suffix.lower()
            if name.startswith(".") or suffix not in FORMAT_PREFERENCE:
                continue
            path = (rel / name).as_posix()
            key = (rel / Path(name).stem).as_posix()
            old = chosen.get(key)
            if old is None or FORMAT_PREFERENCE.index(suffix) < FORMAT_PREFERENCE.index(Path(old).suffix.lower()):
                chosen[key] = path
    return sorted(chosen.values())


def model_id_and_category(rel: str, category: str | None) -> tuple[str, str]:
    """The asset id (path without extension) and category of a mesh at ``rel`` below the root."""
    path = PurePosixPath(rel)
    asset_id = path.with_suffix("").as_posix()
    if category:
        return asset_id, category
    return asset_id, path.parts[0] if len(path.parts) > 1 else ROOT_CATEGORY


def scan_mesh(path: Path, category_name: str, max_faces: int | None = DEFAULT_MAX_FACES,
              chunk_size: int = DEFAULT_CHUNK_SIZE) -> dict[str, Any]:
    """Metadata of one mesh file: the shared facts plus ``format``, ``category_name``, ``model_id``,
    and ``textured`` (an image or per-vertex colours: what ``assets.require_textured`` asks for)."""
    facts = mesh_facts(path, max_faces, chunk_size)
    return {"category_name": category_name, "model_id": path.stem, "format": path.suffix.lower()[1:],
            "textured": facts.pop("coloured"), **facts}


def _scan_batch(root: str, max_faces: int | None, chunk_size: int,
                batch: Sequence[tuple[str, str]]) -> list[tuple[str, dict[str, Any]]]:
    base = Path(root)
    return [(rel, scan_mesh(base / rel, category, max_faces, chunk_size)) for rel, category in batch]


def scan_meshes(root: str | Path, category: str | None = None, max_faces: int | None = DEFAULT_MAX_FACES,
                license: str = DEFAULT_LICENSE, jobs: int = 1, progress: bool = False,
                chunk_size: int = DEFAULT_CHUNK_SIZE) -> MeshScan:
    """Scan every mesh below ``root`` (see the module doc for the layouts, ids and categories)."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise BlurgenError(f"mesh folder not found: {root}")
    root = root.resolve()
    found = find_meshes(root)
    if not found:
        raise BlurgenError(f"no meshes below {root} (looked for {', '.join(FORMAT_PREFERENCE)} files)")
    models = [(rel, model_id_and_category(rel, category)[1]) for rel in found]
    assets: dict[str, dict[str, Any]] = {}
    scan_batch = functools.partial(_scan_batch, str(root), max_faces, chunk_size)
    for rel, meta in scan_in_batches(scan_batch, models, batch_size=BATCH_SIZE, jobs=jobs, progress=progress,
                                     desc="scan meshes", unit="model"):
        asset_id, cat = model_id_and_category(rel, category)
        assets[asset_id] = {"category": cat, "path": rel, "license": license, "metadata": meta}
    summary = summarize(assets, {})
    manifest = AssetManifest(MANIFEST_NAME, MANIFEST_VERSION, str(root), assets)
    return MeshScan(manifest, summary)
