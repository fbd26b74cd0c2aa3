"""Middlebury ``.flo`` files: the flow format every optical-flow tool reads (OpenCV included).

Layout (Baker et al., the Middlebury flow benchmark), all little-endian::

    float32  202021.25        the tag: its four bytes read "PIEH"
    int32    width
    int32    height
    float32  u, v, u, v, ...  width * height pairs, row after row (row-major, interleaved)

Flow is (u, v) = (dx, dy) in pixels, x right, y down. The format has no validity mask: the
benchmark's convention marks an unknown vector by components above 1e9 (``UNKNOWN_FLOW``);
``write_flo`` writes that value wherever a ``valid`` mask says so, and for non-finite vectors.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from blurgen.atomic import temporary_name
from blurgen.errors import BlurgenError

TAG_FLOAT = 202021.25
TAG_BYTES = b"PIEH"
UNKNOWN_FLOW = 1e10  # Middlebury's readers treat |component| > 1e9 as unknown
_HEADER = np.dtype([("tag", "<f4"), ("width", "<i4"), ("height", "<i4")])
_MAX_SIDE = 1 << 20  # a sanity bound on the header's size fields


def encode_flo(flow: np.ndarray, valid: np.ndarray | None = None) -> bytes:
    """The bytes of a ``.flo`` file for an (H, W, 2) flow; ``valid`` (H, W) false -> unknown."""
    flow = np.asarray(flow)
    if flow.ndim != 3 or flow.shape[2] != 2 or 0 in flow.shape:
        raise ValueError(f"flow must have shape (H, W, 2) with H, W > 0, got {flow.shape}")
    data = flow.astype("<f4", copy=True)
    unknown = ~np.isfinite(data).all(axis=2)
    if valid is not None:
        valid = np.asarray(valid, dtype=bool)
        if valid.shape != flow.shape[:2]:
            raise ValueError(f"valid mask has shape {valid.shape}, the flow {flow.shape[:2]}")
        unknown |= ~valid
    data[unknown] = UNKNOWN_FLOW
    header = np.array([(TAG_FLOAT, flow.shape[1], flow.shape[0])], dtype=_HEADER)
    return header.tobytes() + data.tobytes()


def write_flo(path: str | Path, flow: np.ndarray, valid: np.ndarray | None = None) -> Path:
    """Write ``flow`` (H, W, 2) to ``path`` as a ``.flo`` file, atomically (temporary name, rename)."""
    path = Path(path)
    payload = encode_flo(flow, valid)
    tmp = temporary_name(path)
    try:
        with open(tmp, "xb") as fh:
            fh.write(payload)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def decode_flo(data: bytes, name: str = "flow") -> np.ndarray:
    """The (H, W, 2) float32 flow in ``.flo`` bytes; BlurgenError naming ``name`` when malformed."""
    if len(data) < _HEADER.itemsize:
        raise BlurgenError(f"{name}: too short for a .flo file ({len(data)} bytes)")
    header = np.frombuffer(data[:_HEADER.itemsize], dtype=_HEADER)[0]
    if data[:4] != TAG_BYTES:
        raise BlurgenError(f"{name}: not a .flo file (tag {data[:4]!r}, expected {TAG_BYTES!r})")
    width, height = int(header["width"]), int(header["height"])
    if not (0 < width <= _MAX_SIDE and 0 < height <= _MAX_SIDE):
        raise BlurgenError(f"{name}: .flo header gives an impossible size {width}x{height}")
    expected = _HEADER.itemsize + width * height * 8
    if len(data) != expected:
        raise BlurgenError(f"{name}: .flo file of {width}x{height} needs {expected} bytes, has {len(data)} "
                           "(truncated or not a flow file)")
    flow = np.frombuffer(data, dtype="<f4", offset=_HEADER.itemsize).reshape(height, width, 2)
    return flow.astype(np.float32)  # native byte order, writeable


def read_flo(path: str | Path) -> np.ndarray:
    """Read a ``.flo`` file: (H, W, 2) float32 (unknown vectors keep their 1e10 components)."""
    path = Path(path)
    return decode_flo(path.read_bytes(), str(path))


FLOW_FIELDS = ("flow_fwd", "flow_bwd")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def flo_name(sample_id: str, field: str, both: bool) -> str:
    """File name of one exported flow: ``<sample_id>.flo``, or ``<sample_id>_fwd.flo`` /
    ``_bwd.flo`` when both directions are exported (characters unsafe in file names become ``_``)."""
    stem = _UNSAFE.sub("_", sample_id).lstrip(".") or "sample"
    return f"{stem}_{field.removeprefix('flow_')}.flo" if both else f"{stem}.flo"


def export_shards_flo(shards: str | Path, out_dir: str | Path, *, fields: Sequence[str] = ("flow_fwd",),
                      limit: int | None = None, mark_invalid: bool = False,
                      on_sample: Callable[[int], None] | None = None) -> int:
    """Write the flow fields of the samples in ``shards`` (any schema with them) as ``.flo`` files.

    One file per sample and field, named by its ``sample_id`` (``flo_name``); the first
    ``limit`` samples in dataset order when given. With ``mark_invalid`` the pixels a
    ``flow_valid`` field marks invalid are written as unknown (1e10, Middlebury's convention);
    non-finite vectors always are. Returns the number of samples exported.
    """
    from blurgen.shards import ShardDataset  # the reader only when exporting

    probe = ShardDataset(shards, fields=None)
    missing = [f for f in fields if f not in probe.fields]
    if missing:
        raise BlurgenError(f"{shards}: the shards have no '{missing[0]}' field (flow fields: "
                           f"{', '.join(f for f in FLOW_FIELDS if f in probe.fields) or 'none'})")
    extra = [f for f in ("sample_id", "flow_valid") if f in probe.fields]
    dataset = ShardDataset(shards, fields=[*fields, *extra])
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    count = len(dataset) if limit is None else min(limit, len(dataset))
    both = len(fields) > 1
    seen: set[str] = set()
    for i in range(count):
        sample = dataset[i]
        sample_id = str(sample.get("sample_id", f"sample-{i:07d}"))
        for field in fields:
            name = flo_name(sample_id, field, both)
            if name in seen:
                raise BlurgenError(f"two samples map to the file name {name}: sample ids must be unique")
            seen.add(name)
            valid = None
            if mark_invalid and "flow_valid" in sample:
                v = np.asarray(sample["flow_valid"], bool)
                valid = v[..., FLOW_FIELDS.index(field)] if v.ndim == 3 else v
            write_flo(out_dir / name, sample[field], valid)
        if on_sample:
            on_sample(1)
    return count
