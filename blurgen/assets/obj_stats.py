"""Cheap facts about one OBJ model on disk, without loading its mesh.

ShapeNetCore v2 holds ~57k OBJ files, tens of GB in all, some with millions of faces. Parsing
them (or loading them with trimesh) would take hours and gigabytes; counting the lines that
start with ``v`` and ``f`` in fixed-size binary chunks takes seconds per GB and constant memory.
The bounding box is reduced chunk by chunk from the ``v`` lines alone (only whole lines are
parsed; a line cut by a chunk's end waits for the next chunk), so memory stays one chunk.
The small MTL file is parsed to find the textures it names.
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from pathlib import Path, PurePosixPath

import numpy as np

from blurgen.assets.bounds import Bounds

DEFAULT_CHUNK_SIZE = 1 << 20
HEADER_BYTES = 64 * 1024  # ShapeNet's mtllib line sits in the first few lines

# A line of kind k starts right after a newline; the file start is treated as one (see below).
_VERTEX_TOKENS = (b"\nv ", b"\nv\t")
_FACE_TOKENS = (b"\nf ", b"\nf\t")
_TOKEN_LEN = 3
# The first three numbers of a vertex line ("v x y z", "v x y z w" or "v x y z r g b"). The
# pattern starts with a literal newline, which lets the regex engine skip ahead to candidates
# (3.5 times faster than a multi-line "^v").
_VERTEX_XYZ = re.compile(rb"\nv[ \t]+(\S+[ \t]+\S+[ \t]+\S+)")

# MTL statements whose argument is an image file, and how many values each option takes.
_MAP_KEYWORDS = {"map_ka", "map_kd", "map_ks", "map_ke", "map_ns", "map_d", "map_bump", "bump",
                 "disp", "decal", "refl", "norm", "map_pr", "map_pm", "map_ps"}
_MAP_OPTION_ARGS = {"-blendu": 1, "-blendv": 1, "-bm": 1, "-boost": 1, "-cc": 1, "-clamp": 1,
                    "-imfchan": 1, "-mm": 2, "-o": 3, "-s": 3, "-t": 3, "-texres": 1, "-type": 1}


@dataclasses.dataclass(frozen=True)
class ObjCounts:
    """Line counts of an OBJ file: ``v`` lines, ``f`` lines (polygons), and what the header names."""

    vertices: int
    faces: int
    binary: bool  # NUL bytes: not a text OBJ
    mtllibs: tuple[str, ...]
    bounds: Bounds | None = None  # box of the v lines' x, y, z; None without (readable) vertices
    bad_vertices: bool = False  # a v line without three numbers


def count_obj(path: str | Path, chunk_size: int = DEFAULT_CHUNK_SIZE) -> ObjCounts:
    """Count vertex and face lines of an OBJ, and box its vertices, streaming ``chunk_size`` bytes at a time.

    Each buffer searched is the last ``len(token) - 1`` bytes of the previous one plus the new
    chunk: a token split across a chunk boundary is found exactly once, and one that lies wholly
    in the carried bytes cannot be (it is one byte longer), so nothing is counted twice.
    """
    if chunk_size < 1:
        raise ValueError("chunk_size must be >= 1")
    vertices = faces = 0
    binary = False
    tail = b"\n"  # the first line starts at a virtual newline
    header = bytearray()
    box = _VertexBox()
    with open(path, "rb") as fh:
        while True:
            chunk = fh.read(chunk_size)
            if not chunk:
                break
            if len(header) < HEADER_BYTES:
                header += chunk[:HEADER_BYTES - len(header)]
            buf = tail + chunk
            vertices += sum(buf.count(t) for t in _VERTEX_TOKENS)
            faces += sum(buf.count(t) for t in _FACE_TOKENS)
            binary = binary or b"\0" in chunk
            tail = buf[-(_TOKEN_LEN - 1):]
            if not binary:
                box.feed(chunk)
    if not binary:
        box.feed(b"\n")  # the last line may have no newline
    # a v line with fewer than three tokens is counted but never matched
    bad = not binary and (box.bad or box.matched != vertices)
    return ObjCounts(vertices, faces, binary, _mtllibs(bytes(header)), box.bounds, bad)


class _VertexBox:
    """The running bounding box of the ``v`` lines of a byte stream fed in arbitrary pieces."""

    def __init__(self) -> None:
        self.pending = b""  # the start of a line the next piece completes
        self.bounds: Bounds | None = None
        self.bad = False  # a v line whose first three tokens are not all numbers
        self.matched = 0  # v lines with three tokens

    def feed(self, piece: bytes) -> None:
        data = b"\n" + self.pending + piece  # pending starts a line: the newline before it is virtual
        end = data.rfind(b"\n")
        self.pending = data[end + 1:]
        if self.bad or end == 0:
            return
        whole = data[:end]
        triples = _VERTEX_XYZ.findall(whole)
        self.matched += len(triples)  # the caller compares with its count of v lines
        if not triples:
            return
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # numpy warns (and stops) at the first token that is no number
            try:
                points = np.fromstring(b" ".join(triples), sep=" ")
            except (DeprecationWarning, ValueError):
                self.bad = True
                return
        if points.size != 3 * len(triples):
            self.bad = True
            return
        self.bounds = Bounds.of_points(points.reshape(-1, 3)).union(self.bounds)


def _mtllibs(header: bytes) -> tuple[str, ...]:
    names: list[str] = []
    for line in header.decode("latin-1").splitlines():
        parts = line.strip().split(None, 1)
        if len(parts) == 2 and parts[0] == "mtllib":
            names.append(parts[1].strip())
    # The last line of the header may be cut; a cut mtllib name would be reported as missing.
    return tuple(names)


def mtl_textures(mtl_path: str | Path) -> list[str]:
    """Image files an MTL names (``map_Kd`` and the other map statements), in first-seen order.

    Paths are as written, with backslashes turned into slashes (ShapeNet has Windows paths);
    they are relative to the MTL's folder.
    """
    seen: dict[str, None] = {}
    text = Path(mtl_path).read_text("utf-8", errors="replace")
    for line in text.splitlines():
        tokens = line.strip().split()
        if not tokens or tokens[0].lower() not in _MAP_KEYWORDS:
            continue
        args = tokens[1:]
        i = 0
        while i < len(args) and args[i].lower() in _MAP_OPTION_ARGS:
            i += 1 + _MAP_OPTION_ARGS[args[i].lower()]
        name = " ".join(args[i:]).replace("\\", "/")  # file names may contain spaces
        if name:
            seen.setdefault(name, None)
    return list(seen)


def resolve_texture(mtl_path: Path, name: str) -> Path:
    """Where a texture named in an MTL lies on disk."""
    return mtl_path.parent / PurePosixPath(name)
