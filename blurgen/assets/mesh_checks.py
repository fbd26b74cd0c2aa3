"""One mesh file's facts and defects, for every format the scanners read (OBJ, glTF/GLB, PLY).

Each ``*_facts`` function streams its file with the format's reader (:mod:`obj_stats`,
:mod:`gltf_stats`, :mod:`ply_stats`; no mesh library, no full load) and returns the manifest
metadata they share: ``vertices``, ``faces``, ``textures`` (as the file names them),
``missing_textures``, ``textures_ok``, ``coloured`` (an image or per-vertex colours),
``bounds`` (:class:`~blurgen.assets.bounds.Bounds` as metadata, or None) and ``broken``: the
first of :data:`REASON_KINDS` that applies, with a detail in parentheses, or None.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from blurgen.assets.bounds import Bounds
from blurgen.assets.gltf_stats import GltfError, gltf_stats
from blurgen.assets.obj_stats import DEFAULT_CHUNK_SIZE, count_obj, mtl_textures, resolve_texture
from blurgen.assets.ply_stats import PlyError, ply_stats

# Reasons, in the order they are checked; a model gets the first that applies. The summary
# groups by the text before " (".
REASON_KINDS = ("no OBJ", "no mesh", *(f"{kind} {fmt}" for fmt in ("OBJ", "glTF", "PLY")
                                       for kind in ("unreadable", "unparsable", "empty")),
                "buffers missing", "MTL missing", "textures missing", "huge mesh", "degenerate bounding box")


def reason_kind(reason: str) -> str:
    """The summary bucket of a ``broken`` reason: its text before ' ('."""
    return reason.split(" (", 1)[0]


def _facts(vertices: int, faces: int, bounds: Bounds | None, textures: list[str], missing: list[str],
           coloured: bool, broken: str | None) -> dict[str, Any]:
    # Non-finite coordinates cannot be written as JSON; problem() reports them as degenerate.
    finite = bounds is not None and all(abs(v) < float("inf") for v in (*bounds.min, *bounds.max))
    return {"vertices": vertices, "faces": faces, "textures": textures, "missing_textures": missing,
            "textures_ok": not missing, "coloured": coloured,
            "bounds": bounds.to_metadata() if finite else None, "broken": broken}


def _judge(fmt: str, faces: int, bounds: Bounds | None, textures: list[str], missing: list[str],
           max_faces: int | None, *, early: str | None = None, material: str | None = None) -> str | None:
    """The first defect, in the order every format shares (see REASON_KINDS).

    ``early``: a format's own parsing defect, checked first; ``material``: a missing material
    file (OBJ's MTL), checked before its textures.
    """
    if early:
        return early
    if faces == 0:
        return f"empty {fmt} (no faces)"
    if material:
        return material
    if missing:
        return f"textures missing ({len(missing)} of {len(textures)})"
    if max_faces and faces > max_faces:
        return f"huge mesh ({faces} faces)"
    if bounds is None:
        return f"unparsable {fmt} (faces but no vertices)"
    return bounds.problem()


def _unreadable(fmt: str, exc: OSError) -> dict[str, Any]:
    return _facts(0, 0, None, [], [], False, f"unreadable {fmt} ({exc.strerror or type(exc).__name__})")


def obj_facts(obj: Path, max_faces: int | None, chunk_size: int = DEFAULT_CHUNK_SIZE,
              default_mtl: str | None = None) -> dict[str, Any]:
    """Facts of an OBJ and the MTL it names (``default_mtl``: the MTL expected without an ``mtllib``)."""
    try:
        counts = count_obj(obj, chunk_size)
    except OSError as exc:
        return _unreadable("OBJ", exc)
    mtl_name = counts.mtllibs[0] if counts.mtllibs else default_mtl
    mtl = obj.parent / mtl_name.replace("\\", "/") if mtl_name else None
    textures: list[str] = []
    if mtl is not None and mtl.is_file():
        try:
            textures = mtl_textures(mtl)
        except OSError:
            textures = []
    missing = [t for t in textures if not resolve_texture(mtl, t).is_file()] if mtl is not None else []
    early = ("unparsable OBJ (binary data)" if counts.binary
             else "unparsable OBJ (a v line without three numbers)" if counts.bad_vertices
             else "unparsable OBJ (faces but no vertices)" if counts.faces and not counts.vertices else None)
    material = f"MTL missing ({mtl_name})" if mtl is not None and not mtl.is_file() else None
    broken = _judge("OBJ", counts.faces, counts.bounds, textures, missing, max_faces, early=early, material=material)
    facts = _facts(counts.vertices, counts.faces, counts.bounds, textures, missing, bool(textures), broken)
    facts["textures_ok"] = material is None and not missing
    return facts


def gltf_facts(path: Path, max_faces: int | None) -> dict[str, Any]:
    """Facts of a ``.gltf`` (with its buffers and images) or a ``.glb``."""
    try:
        stats = gltf_stats(path)
    except OSError as exc:
        return _unreadable("glTF", exc)
    except GltfError as exc:
        return _facts(0, 0, None, [], [], False, f"unparsable glTF ({exc})")
    textures = list(stats.images)
    missing = [t for t in textures if not (path.parent / t).is_file()]
    early = f"buffers missing ({', '.join(stats.missing_buffers)})" if stats.missing_buffers else None
    broken = _judge("glTF", stats.faces, stats.bounds, textures, missing, max_faces, early=early)
    return _facts(stats.vertices, stats.faces, stats.bounds, textures, missing, stats.coloured, broken)


def ply_facts(path: Path, max_faces: int | None) -> dict[str, Any]:
    """Facts of a PLY (ASCII or binary) and the texture its header names, if any."""
    try:
        stats = ply_stats(path)
    except OSError as exc:
        return _unreadable("PLY", exc)
    except (PlyError, ValueError) as exc:
        return _facts(0, 0, None, [], [], False, f"unparsable PLY ({exc})")
    textures = list(stats.textures)
    missing = [t for t in textures if not (path.parent / t).is_file()]
    broken = _judge("PLY", stats.faces, stats.bounds, textures, missing, max_faces)
    return _facts(stats.vertices, stats.faces, stats.bounds, textures, missing, stats.coloured, broken)


def mesh_facts(path: Path, max_faces: int | None, chunk_size: int = DEFAULT_CHUNK_SIZE) -> dict[str, Any]:
    """Facts of a mesh file of any supported format, by its extension."""
    suffix = path.suffix.lower()
    if suffix == ".obj":
        return obj_facts(path, max_faces, chunk_size)
    if suffix in (".gltf", ".glb"):
        return gltf_facts(path, max_faces)
    if suffix == ".ply":
        return ply_facts(path, max_faces)
    raise ValueError(f"not a mesh format blurgen reads: {path.name}")
