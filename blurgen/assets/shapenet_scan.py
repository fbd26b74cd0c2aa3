"""Scan a ShapeNetCore v2 tree into an :class:`AssetManifest`, flagging broken models.

Layout (ShapeNetCore v2)::

    ROOT/taxonomy.json                                   [{"synsetId", "name", "children", ...}]
    ROOT/<synset>/<model_id>/models/model_normalized.obj
    ROOT/<synset>/<model_id>/models/model_normalized.mtl
    ROOT/<synset>/<model_id>/images/texture0.jpg ...     (present only for textured models)

A model counts as textured when its folder has an ``images/`` subfolder (ShapeNet v2's own
convention, and the one the blur-retrieval paper ranked categories by). Meshes are never loaded:
:func:`~blurgen.assets.obj_stats.count_obj` streams each OBJ, so memory stays flat on the full
tree, and joblib spreads the models over processes.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from collections import Counter
from pathlib import Path
from typing import Any, Iterable, Sequence

from blurgen.assets.batches import scan_in_batches
from blurgen.assets.manifest import AssetManifest
from blurgen.assets.mesh_checks import REASON_KINDS, obj_facts, reason_kind
from blurgen.assets.obj_stats import DEFAULT_CHUNK_SIZE
from blurgen.errors import BlurgenError

MANIFEST_NAME = "shapenet_core_v2"
MANIFEST_VERSION = "2"
LICENSE = "ShapeNet terms of use"
OBJ_RELPATH = "models/model_normalized.obj"
DEFAULT_MTL = "model_normalized.mtl"
TELEPHONE = "04401088"
DEFAULT_EXCLUDE = (TELEPHONE,)  # the blur-retrieval paper: top 40 by textured count, minus telephone
DEFAULT_MAX_FACES = 200_000
BATCH_SIZE = 64  # models per joblib task: amortises process overhead, keeps the bar moving


def read_taxonomy(root: Path) -> dict[str, str]:
    """``synsetId -> short name`` (the first name before a comma) from ``taxonomy.json``."""
    path = root / "taxonomy.json"
    if not path.is_file():
        raise BlurgenError(f"no taxonomy.json in {root}: not a ShapeNetCore v2 folder")
    try:
        entries = json.loads(path.read_text("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BlurgenError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(entries, list):
        raise BlurgenError(f"{path}: expected a list of synsets, got {type(entries).__name__}")
    names: dict[str, str] = {}
    for entry in entries:
        if isinstance(entry, dict) and "synsetId" in entry:
            names[str(entry["synsetId"])] = str(entry.get("name", "")).split(",")[0].strip()
    return names


def scan_model(model_dir: Path, category_name: str, max_faces: int | None = DEFAULT_MAX_FACES,
               chunk_size: int = DEFAULT_CHUNK_SIZE) -> dict[str, Any]:
    """Metadata of one model folder: counts, bounds, textured flag, textures, and ``broken`` (reason or None)."""
    obj = model_dir / OBJ_RELPATH
    meta: dict[str, Any] = {"category_name": category_name, "model_id": model_dir.name,
                            "vertices": 0, "faces": 0, "textured": (model_dir / "images").is_dir(),
                            "textures": [], "missing_textures": [], "textures_ok": False,
                            "bounds": None, "broken": None}
    if not obj.is_file():
        meta["broken"] = f"no OBJ ({OBJ_RELPATH})"
        return meta
    facts = obj_facts(obj, max_faces, chunk_size, default_mtl=DEFAULT_MTL)
    meta.update({key: facts[key] for key in meta if key in facts})
    return meta


def find_models(root: Path, synsets: Iterable[str]) -> list[tuple[str, str]]:
    """(synset, model_id) of every model folder below the given synset folders, sorted."""
    models = []
    for synset in sorted(synsets):
        with os.scandir(root / synset) as it:
            models.extend((synset, e.name) for e in it if e.is_dir())
    return sorted(models)


def synset_folders(root: Path, taxonomy: dict[str, str]) -> list[str]:
    """Top-level category folders: named by a taxonomy synset, or by 8 digits like one."""
    with os.scandir(root) as it:
        return sorted(e.name for e in it if e.is_dir()
                      and (e.name in taxonomy or (e.name.isdigit() and len(e.name) == 8)))


@dataclasses.dataclass
class CategorySummary:
    """One row of the scan summary."""

    synset: str
    name: str
    models: int
    textured: int
    usable_textured: int  # textured and not broken: what categories are ranked by
    broken: dict[str, int]  # reason kind -> count
    kept: bool


@dataclasses.dataclass
class ShapeNetScan:
    """What :func:`scan_shapenet` found: the manifest of kept categories and a row per category."""

    manifest: AssetManifest
    summary: list[CategorySummary]
    excluded: list[str]


def _scan_batch(root: str, names: dict[str, str], max_faces: int | None, chunk_size: int,
                batch: Sequence[tuple[str, str]]) -> list[tuple[str, str, dict[str, Any]]]:
    base = Path(root)
    return [(s, m, scan_model(base / s / m, names.get(s, s), max_faces, chunk_size)) for s, m in batch]


def scan_shapenet(
    root: str | Path,
    top_categories: int | None = None,
    exclude_synsets: Sequence[str] = DEFAULT_EXCLUDE,
    max_faces: int | None = DEFAULT_MAX_FACES,
    jobs: int = 1,
    progress: bool = False,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> ShapeNetScan:
    """Scan a ShapeNetCore v2 folder.

    ``exclude_synsets`` are not scanned at all; of the rest, ``top_categories`` keeps the K
    categories with the most textured, non-broken models (ties: lower synset id first).
    The manifest lists every model of the kept categories, broken ones flagged with their reason.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise BlurgenError(f"ShapeNet root not found: {root}")
    root = root.resolve()
    names = read_taxonomy(root)
    excluded = sorted(set(exclude_synsets))
    synsets = [s for s in synset_folders(root, names) if s not in excluded]
    models = find_models(root, synsets)
    if not models:
        raise BlurgenError(f"no models found below {root} (expected <synset>/<model_id>/{OBJ_RELPATH})")
    if top_categories is not None and top_categories < 1:
        raise BlurgenError(f"--top-categories must be >= 1, got {top_categories}")

    assets: dict[str, dict[str, Any]] = {}
    scan_batch = functools.partial(_scan_batch, str(root), names, max_faces, chunk_size)
    for synset, model_id, meta in scan_in_batches(scan_batch, models, batch_size=BATCH_SIZE, jobs=jobs,
                                                  progress=progress, desc="scan ShapeNet", unit="model"):
        assets[f"{synset}_{model_id}"] = {
            "category": synset, "path": f"{synset}/{model_id}/{OBJ_RELPATH}",
            "license": LICENSE, "metadata": meta}

    summary = summarize(assets, names)
    summary.sort(key=lambda r: (-r.usable_textured, r.synset))
    keep = {r.synset for r in summary[:top_categories]} if top_categories else {r.synset for r in summary}
    for row in summary:
        row.kept = row.synset in keep
    kept_assets = {i: a for i, a in assets.items() if a["category"] in keep}
    manifest = AssetManifest(MANIFEST_NAME, MANIFEST_VERSION, str(root), kept_assets)
    return ShapeNetScan(manifest, summary, excluded)


def summarize(assets: dict[str, dict[str, Any]], names: dict[str, str]) -> list[CategorySummary]:
    """Per-category counts of models, textured, usable textured and broken by reason kind."""
    rows: dict[str, CategorySummary] = {}
    for entry in assets.values():
        synset, meta = entry["category"], entry["metadata"]
        row = rows.setdefault(synset, CategorySummary(synset, names.get(synset, synset), 0, 0, 0, {}, True))
        row.models += 1
        row.textured += bool(meta["textured"])
        row.usable_textured += bool(meta["textured"]) and not meta["broken"]
        if meta["broken"]:
            kind = reason_kind(meta["broken"])
            row.broken[kind] = row.broken.get(kind, 0) + 1
    return [rows[s] for s in sorted(rows)]


def format_summary(scan: ShapeNetScan | Any) -> str:
    """A plain-text table: one line per category (rank order), totals, exclusions."""
    present = {k for r in scan.summary for k in r.broken}
    kinds = [k for k in REASON_KINDS if k in present] + sorted(present - set(REASON_KINDS))
    head = ["category", "name", "models", "textured", "usable", "kept"] + kinds
    rows = [[r.synset, r.name[:20], str(r.models), str(r.textured), str(r.usable_textured),
             "yes" if r.kept else "no"] + [str(r.broken.get(k, 0)) for k in kinds] for r in scan.summary]
    total: Counter = Counter()
    for r in scan.summary:
        total.update({"models": r.models, "textured": r.textured, "usable": r.usable_textured})
        total.update(r.broken)
    rows.append(["total", "", str(total["models"]), str(total["textured"]), str(total["usable"]),
                 str(sum(r.kept for r in scan.summary))] + [str(total[k]) for k in kinds])
    widths = [max(len(row[i]) for row in [head] + rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
             for row in [head] + rows]
    if scan.excluded:
        lines.append(f"excluded synsets (not scanned): {', '.join(scan.excluded)}")
    return "\n".join(lines)
