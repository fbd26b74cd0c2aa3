"""``ShardDataset``: random access to the samples of one or many shards, safe in worker processes.

Construction reads only sample counts (from ``manifest.json``, or by opening each shard briefly)
and leaves no HDF5 file open, so the dataset can be handed to forked or spawned workers
(PyTorch DataLoader style). Each process opens the shards it touches on first access and keeps
them open (handles are keyed by process id and dropped when the dataset is pickled): an HDF5 handle
shared across a fork is not safe to use from both sides.

Reading an image: per-sample chunks compressed with gzip are read with HDF5's direct chunk read
and inflated by libdeflate when the ``deflate`` package is installed (about twice as fast as
zlib, the cost that bounds gzip reads). That path checks the zlib stream's adler32 over the
uncompressed bytes instead of HDF5's fletcher32 over the compressed ones, so corruption is still
caught. Every other case goes through HDF5's own filter pipeline.
"""

from __future__ import annotations

import bisect
import operator
import os
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import h5py
import numpy as np

from blurgen.errors import ShardError
from blurgen.shards.layout import dataset_filters, ensure_filters, filter_names, open_shard, root_attrs
from blurgen.shards.manifest import list_shard_files, read_manifest
from blurgen.shards.release import shard_folder
from blurgen.shards.schema import STR

try:  # optional: libdeflate inflates about 2x faster than zlib
    from deflate import DeflateError as _DeflateError
    from deflate import zlib_decompress as _libdeflate_inflate  # (data, size) -> bytearray
except ImportError:  # pragma: no cover - depends on the environment
    _libdeflate_inflate = None
    _DeflateError = zlib.error


def zlib_inflate(data: memoryview, size: int) -> bytearray:
    """Inflate with the standard library (same format, slower than libdeflate)."""
    return bytearray(zlib.decompress(data, bufsize=size))


# The inflater of the direct chunk path, or None to let HDF5 decode every chunk. Plain zlib gains
# nothing over HDF5's own path, so without libdeflate the direct path is off (tests switch it on
# with zlib_inflate to exercise it anywhere; the benchmark switches it off to compare).
inflate: Callable[[memoryview, int], bytearray] | None = _libdeflate_inflate

# Non-per-sample datasets up to this size are read whole on first open (ids, boxes, levels).
_CACHE_LIMIT_BYTES = 64 << 20


@dataclass(frozen=True)
class FieldSpec:
    """One field of a shard as stored: per-sample shape and dtype (``"str"`` for strings)."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    filters: tuple[str, ...]
    chunk_rows: int  # samples per chunk: 1 for images and other large fields


def shard_fields(path: str | Path) -> list[FieldSpec]:
    """The fields of one shard file, in name order."""
    with open_shard(str(path)) as f:
        return file_fields(f)


def file_fields(f: h5py.File) -> list[FieldSpec]:
    """The fields of an open shard, in name order (dtype ``"str"`` as in the schema tables)."""
    specs = []
    for name, dset in f.items():
        if not isinstance(dset, h5py.Dataset):
            continue
        dtype = STR if h5py.check_string_dtype(dset.dtype) else str(dset.dtype)
        specs.append(FieldSpec(name, tuple(dset.shape[1:]), dtype, tuple(filter_names(dset)),
                               dset.chunks[0] if dset.chunks else dset.shape[0]))
    return specs


class ShardDataset:
    """Samples of shards as one indexable sequence of dicts (field -> array, scalar or str).

    ``source`` is a folder (its ``manifest.json`` when present, else its ``*.h5`` files in name
    order; for a published release, those of its ``data/``), one ``.h5`` file, or a list of
    files. ``fields`` restricts which fields are read.
    Scalar fields come back as NumPy scalars (they keep their dtype), strings as ``str``.
    """

    def __init__(self, source: str | Path | Sequence[str | Path], fields: Sequence[str] | None = None,
                 *, max_open: int = 128) -> None:
        self._paths, self._counts = _resolve(source)
        self._starts = np.cumsum([0, *self._counts[:-1]]).tolist()
        self._len = sum(self._counts)
        self._max_open = max(1, max_open)
        self._attrs: dict[int, dict[str, Any]] = {}
        first = next((p for p, n in zip(self._paths, self._counts) if n > 0), None)
        available = [s.name for s in shard_fields(first)] if first else []
        if fields is None:
            fields = available
        unknown = [name for name in fields if name not in available]
        if unknown:
            raise ShardError(f"field '{unknown[0]}' is not in the shards (fields: {', '.join(available)})")
        self._fields = tuple(fields)
        self._pid: int | None = None
        self._open: OrderedDict[int, _OpenShard] = OrderedDict()

    # ------------------------------------------------------------------ sequence

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, index: int) -> dict[str, Any]:
        k, local = self._locate(index)
        return self._shard(k).item(local)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for i in range(self._len):
            yield self[i]

    def __repr__(self) -> str:
        return f"ShardDataset({len(self._paths)} shards, {self._len} samples, fields={list(self._fields)})"

    @property
    def fields(self) -> tuple[str, ...]:
        """The fields each item holds."""
        return self._fields

    @property
    def paths(self) -> list[str]:
        """The shard files, in index order."""
        return list(self._paths)

    @property
    def counts(self) -> list[int]:
        """Samples per shard, in index order."""
        return list(self._counts)

    def locate(self, index: int) -> tuple[str, int]:
        """``(shard path, index inside that shard)`` of a global index."""
        k, local = self._locate(index)
        return self._paths[k], local

    def shard_attrs(self, k: int) -> dict[str, Any]:
        """Root attributes of shard ``k`` (read once, by a brief open; no handle is kept)."""
        k = range(len(self._paths))[k]  # IndexError and negative indices like a list
        if k not in self._attrs:
            with open_shard(self._paths[k]) as f:
                self._attrs[k] = root_attrs(self._paths[k], f)
        return dict(self._attrs[k])

    def column(self, name: str) -> np.ndarray | list[str]:
        """Every value of one field, in index order: an array, or a list for string fields.

        Meant for small fields (``blur_level``, ``bbox``, ``sample_id``) when choosing samples;
        an image field would be loaded whole. Each shard is opened briefly, no handle is kept.
        """
        parts: list[Any] = []
        for path, count in zip(self._paths, self._counts):
            if count == 0:
                continue
            with open_shard(path) as f:
                if name not in f:
                    raise ShardError(f"{path} has no field '{name}'")
                dset = f[name]
                ensure_filters(path, dset)
                values = dset[()]
                parts.append([v.decode("utf-8") for v in values] if h5py.check_string_dtype(dset.dtype)
                             else values)
        if parts and isinstance(parts[0], list):
            return [s for part in parts for s in part]
        return np.concatenate(parts) if parts else np.empty(0)

    def close(self) -> None:
        """Close this process's open shards (they reopen on the next access)."""
        if self._pid == os.getpid():
            for shard in self._open.values():
                shard.close()
        self._open = OrderedDict()

    def __enter__(self) -> ShardDataset:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        # Handles never travel to another process: the receiver opens its own.
        state = self.__dict__.copy()
        state["_open"] = OrderedDict()
        state["_pid"] = None
        return state

    # ------------------------------------------------------------------ internals

    def _locate(self, index: int) -> tuple[int, int]:
        i = operator.index(index)
        if i < 0:
            i += self._len
        if not 0 <= i < self._len:
            raise IndexError(f"sample index {index} out of range for {self._len} samples")
        k = bisect.bisect_right(self._starts, i) - 1  # skips empty shards: they share a start
        return k, i - self._starts[k]

    def _shard(self, k: int) -> _OpenShard:
        pid = os.getpid()
        if self._pid != pid:
            # Forked child (or first use): the inherited handles belong to the parent.
            self._open = OrderedDict()
            self._pid = pid
        shard = self._open.get(k)
        if shard is None:
            shard = self._open[k] = _OpenShard(self._paths[k], self._fields)
            if len(self._open) > self._max_open:
                self._open.popitem(last=False)[1].close()
        else:
            self._open.move_to_end(k)
        return shard


def _resolve(source: str | Path | Sequence[str | Path]) -> tuple[list[str], list[int]]:
    """Shard paths and their sample counts for a folder, a file, or a list of files."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_dir():
            path = shard_folder(path)
            manifest = read_manifest(path)
            if manifest is not None:
                paths = [str(path / e["file"]) for e in manifest["shards"]]
                missing = [p for p in paths if not os.path.isfile(p)]
                if missing:
                    raise ShardError(f"manifest.json lists {Path(missing[0]).name} but the file is missing; "
                                     f"check the folder with: blurgen shards verify {path}")
                return paths, [int(e["samples"]) for e in manifest["shards"]]
            files = [str(p) for p in list_shard_files(path)]
            if not files:
                raise ShardError(f"no shards (*.h5) in {path}")
            return files, [_count(p) for p in files]
        if not path.is_file():
            raise ShardError(f"shard folder or file not found: {path}")
        return [str(path)], [_count(str(path))]
    files = [str(p) for p in source]
    if not files:
        raise ShardError("no shard files given")
    return files, [_count(p) for p in files]


def _count(path: str) -> int:
    with open_shard(path) as f:
        return int(root_attrs(path, f)["num_samples"])


class _OpenShard:
    """One shard opened in this process, with a reader per requested field."""

    def __init__(self, path: str, fields: Sequence[str]) -> None:
        self.path = path
        self.file = open_shard(path)
        try:
            missing = [name for name in fields if name not in self.file]
            if missing:
                raise ShardError(f"{path} has no field '{missing[0]}' (the first shard has it)")
            self.columns = {name: _column(path, self.file[name]) for name in fields}
        except BaseException:
            self.file.close()
            raise

    def item(self, local: int) -> dict[str, Any]:
        return {name: read(local) for name, read in self.columns.items()}

    def close(self) -> None:
        self.file.close()


def _column(path: str, dset: h5py.Dataset) -> Callable[[int], Any]:
    """A function local index -> value for one dataset of an open shard."""
    ensure_filters(path, dset)
    name = dset.name.lstrip("/")
    is_str = h5py.check_string_dtype(dset.dtype) is not None
    per_sample = dset.chunks is not None and dset.chunks == (1, *dset.shape[1:])
    if per_sample and not is_str:
        direct = _direct_reader(path, name, dset)
        return direct if direct is not None else dset.__getitem__
    if dset.nbytes <= _CACHE_LIMIT_BYTES:
        values = dset[()]
        if is_str:
            strings = [v.decode("utf-8") for v in values]
            return strings.__getitem__
        if values.ndim == 1:
            return values.__getitem__  # NumPy scalars
        return lambda local: values[local].copy()  # a copy: callers may modify what they get
    if is_str:
        return lambda local: dset[local].decode("utf-8")
    return dset.__getitem__


def _direct_reader(path: str, name: str, dset: h5py.Dataset) -> Callable[[int], np.ndarray] | None:
    """A reader that inflates whole-sample gzip chunks itself, or None where HDF5 must decode."""
    if inflate is None:
        return None
    ids = [fid for fid, _ in dataset_filters(dset)]
    shuffled = ids == [h5py.h5z.FILTER_SHUFFLE, h5py.h5z.FILTER_DEFLATE, h5py.h5z.FILTER_FLETCHER32]
    if not shuffled and ids != [h5py.h5z.FILTER_DEFLATE, h5py.h5z.FILTER_FLETCHER32]:
        return None
    dtype, shape = dset.dtype, dset.shape[1:]
    itemsize = dtype.itemsize
    nbytes = int(np.prod(shape, dtype=np.int64)) * itemsize
    zeros = (0,) * len(shape)
    read_chunk = dset.id.read_direct_chunk
    inflater = inflate

    def read(local: int) -> np.ndarray:
        mask, raw = read_chunk((local, *zeros))
        if mask:  # a filter was skipped for this chunk: let HDF5 decode it
            return dset[local]
        try:
            # the last 4 bytes are fletcher32's checksum; the zlib stream carries its own adler32
            out = inflater(memoryview(raw)[:-4], nbytes)
        except (zlib.error, _DeflateError):
            raise OSError(f"{path}: dataset '{name}' sample {local}: corrupt chunk "
                          "(the compressed data fails its checksum)") from None
        if len(out) != nbytes:
            raise OSError(f"{path}: dataset '{name}' sample {local}: chunk decodes to "
                          f"{len(out)} bytes, expected {nbytes}")
        flat = np.frombuffer(out, np.uint8)
        if shuffled and itemsize > 1:
            # HDF5's shuffle stores byte 0 of every value, then byte 1, ...: transpose back.
            flat = np.ascontiguousarray(flat.reshape(itemsize, -1).T)
        return flat.view(dtype).reshape(shape)

    return read
