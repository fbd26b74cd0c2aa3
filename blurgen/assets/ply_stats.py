"""Cheap facts about one PLY model: its header, and the box of its vertex block, without a mesh library.

The header names the elements (``vertex``, ``face``, ...) with their counts and properties, the
format (ASCII or binary of either byte order) and, as scanners write it, the texture image
(``comment TextureFile NAME``). The vertex block is read in pieces of a fixed number of rows and
only x, y, z are kept, so memory stays bounded; the face block is never read.
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import numpy as np

from blurgen.assets.bounds import Bounds

_TYPES = {"char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "i2", "int16": "i2",
          "ushort": "u2", "uint16": "u2", "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
          "float": "f4", "float32": "f4", "double": "f8", "float64": "f8"}
_FORMATS = {"ascii": "", "binary_little_endian": "<", "binary_big_endian": ">"}
_COLOURS = {"red", "green", "blue", "r", "g", "b", "diffuse_red"}
_UVS = {"s", "t", "u", "v", "texture_u", "texture_v"}
ROWS_PER_READ = 1 << 18
MAX_HEADER_BYTES = 1 << 20


class PlyError(ValueError):
    """The file is not a PLY the scanner can read (the message says why, in a few words)."""


@dataclasses.dataclass(frozen=True)
class PlyStats:
    vertices: int
    faces: int
    bounds: Bounds | None
    textures: tuple[str, ...]  # ``comment TextureFile`` names, relative to the file's folder
    coloured: bool             # per-vertex colours, or a texture with texture coordinates


@dataclasses.dataclass
class _Element:
    name: str
    count: int
    properties: list[tuple[str, str | None, str]]  # (name, list count type or None, value type)


def ply_stats(path: str | Path) -> PlyStats:
    """Counts, box and texture names of the PLY at ``path`` (:class:`PlyError` when unreadable)."""
    with open(path, "rb") as fh:
        fmt, elements, textures = _header(fh)
        by_name = {e.name: e for e in elements}
        vertex = by_name.get("vertex")
        bounds = None
        if vertex is not None and vertex.count:
            _skip_to(fh, fmt, elements, vertex)
            bounds = _vertex_bounds(fh, fmt, vertex)
    names = {p[0] for p in vertex.properties} if vertex else set()
    coloured = bool(names & _COLOURS) or (bool(textures) and len(names & _UVS) >= 2)
    faces = by_name["face"].count if "face" in by_name else 0
    return PlyStats(vertex.count if vertex else 0, faces, bounds, tuple(textures), coloured)


def _header(fh) -> tuple[str, list[_Element], list[str]]:
    if fh.readline().strip() != b"ply":
        raise PlyError("no 'ply' magic line")
    fmt, elements, textures, read = None, [], [], 0
    while True:
        raw = fh.readline()
        read += len(raw)
        if not raw or read > MAX_HEADER_BYTES:
            raise PlyError("no end_header")
        words = raw.decode("latin-1").split()
        if not words:
            continue
        if words[0] == "end_header":
            break
        if words[0] == "format" and len(words) >= 2:
            if words[1] not in _FORMATS:
                raise PlyError(f"unknown format {words[1]}")
            fmt = _FORMATS[words[1]]
        elif words[0] == "comment" and len(words) >= 3 and words[1].lower() == "texturefile":
            textures.append(" ".join(words[2:]).replace("\\", "/"))
        elif words[0] == "element" and len(words) == 3:
            elements.append(_Element(words[1], int(words[2]), []))
        elif words[0] == "property" and elements:
            if words[1] == "list" and len(words) == 5:
                elements[-1].properties.append((words[4], _type(words[2]), _type(words[3])))
            elif len(words) == 3:
                elements[-1].properties.append((words[2], None, _type(words[1])))
            else:
                raise PlyError(f"bad property line: {' '.join(words)}")
    if fmt is None:
        raise PlyError("no format line")
    return fmt, elements, textures


def _type(name: str) -> str:
    if name not in _TYPES:
        raise PlyError(f"unknown property type {name}")
    return _TYPES[name]


def _skip_to(fh, fmt: str, elements: list[_Element], target: _Element) -> None:
    """Move past the elements before ``target`` (fixed-size rows only, or ASCII lines)."""
    for element in elements:
        if element is target:
            return
        if fmt == "":
            for _ in range(element.count):
                fh.readline()
        elif any(lst for _, lst, _ in element.properties):
            raise PlyError(f"element '{element.name}' with list properties comes before the vertices")
        else:
            fh.seek(element.count * _row_dtype(fmt, element).itemsize, 1)


def _row_dtype(fmt: str, element: _Element) -> np.dtype:
    if any(lst for _, lst, _ in element.properties):
        raise PlyError("vertex rows with list properties")
    return np.dtype([(f"p{i}", fmt + t) for i, (_, _, t) in enumerate(element.properties)])


def _ascii_rows(fh, n: int, width: int) -> np.ndarray:
    """The next ``n`` ASCII rows of ``width`` numbers each, as an (n, width) float64 array."""
    text = b" ".join(fh.readline() for _ in range(n))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy warns (and stops) at the first token that is no number
        try:
            values = np.fromstring(text, sep=" ")
        except (DeprecationWarning, ValueError):
            raise PlyError("vertex line with a non-number") from None
    if values.size != n * width:
        raise PlyError(f"vertex lines hold {values.size} numbers, not {n} x {width}")
    return values.reshape(n, width)


def _vertex_bounds(fh, fmt: str, vertex: _Element) -> Bounds | None:
    names = [p[0] for p in vertex.properties]
    if not {"x", "y", "z"} <= set(names):
        raise PlyError("vertex element without x, y, z")
    columns = [names.index(a) for a in "xyz"]
    bounds, left = None, vertex.count
    dtype = None if fmt == "" else _row_dtype(fmt, vertex)
    while left:
        n = min(left, ROWS_PER_READ)
        if dtype is None:
            points = _ascii_rows(fh, n, len(names))[:, columns]
        else:
            block = np.fromfile(fh, dtype=dtype, count=n)
            if len(block) < n:
                raise PlyError(f"vertex block ends after {vertex.count - left + len(block)} of {vertex.count} rows")
            points = np.stack([block[f"p{c}"].astype(np.float64) for c in columns], axis=1)
        bounds = Bounds.of_points(points).union(bounds)
        left -= n
    return bounds
