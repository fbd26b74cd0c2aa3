"""``ShardWriter``: append samples to one HDF5 shard and publish it atomically.

The shard is written under a hidden temporary name in the destination folder and renamed to
its final name only once it is complete and on disk (fsync), so a file with a shard's name is
always a finished shard: a killed task leaves at most a ``.<name>.<host>-<pid>.tmp``, which the
next attempt on the same host removes once that process is gone (another host's, or a live
process's, is left alone). After the rename the shard's entry goes into ``manifest.json``.

Every sample is checked against the shard's declared schema (:mod:`blurgen.shards.schemas`)
before anything of it is written: a missing, extra, wrongly typed or wrongly shaped field is a
``ShardError`` naming the field and the schema.

Nothing in the file depends on the time it was written (no timestamps on any object), so the
same samples, attributes and library versions give a byte-identical file.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Mapping

import h5py
import numpy as np

from blurgen import __version__
from blurgen.atomic import fsync_dir
from blurgen.errors import BlurgenError, ShardError
from blurgen.shards.layout import (
    FIELD_NAME,
    LARGE_FIELD_BYTES,
    SMALL_CHUNK_BYTES,
    SMALL_CHUNK_MAX_ROWS,
    filter_kwargs,
    shard_filename,
    stale_temps,
    temp_name,
)
from blurgen.shards.manifest import (
    Entry,
    blur_level_counts,
    make_entry,
    sha256_file,
    update_manifest,
)
from blurgen.shards.schema import Dims, get_schema

_SUPPORTED_KINDS = "uifb"  # unsigned, signed, float, bool


@dataclass
class _Field:
    """What the first sample fixed for one key, and where its values go."""

    name: str
    is_str: bool
    shape: tuple[int, ...] = ()
    dtype: np.dtype | None = None
    dset: h5py.Dataset | None = None          # large fields: written as samples arrive
    buffer: list[Any] = field(default_factory=list)  # small fields: written at close

    def describe(self) -> str:
        return "str" if self.is_str else f"shape {self.shape} dtype {self.dtype}"


class ShardWriter:
    """Write one task's samples to ``<out_dir>/<split>-<task>-of-<num_tasks>.h5``.

    Use as a context manager; call :meth:`close` (optionally with the task's stats, e.g. drop
    counts by reason) at the end of the block. An exception inside the block deletes the
    temporary file and leaves the manifest untouched.

    Every sample is a dict with the same keys; each value is a numpy array (bool, integer or
    float), a numpy/Python scalar, or a ``str``, with the same shape and dtype in every sample.
    ``schema`` names a declared schema (:func:`~blurgen.shards.schema.get_schema`); each sample
    must match its field table.
    """

    def __init__(self, out_dir: str | Path, *, schema: str, split: str, task_index: int,
                 num_tasks: int, seed: int, config_json: str, compression: str = "gzip",
                 compression_level: int | None = None) -> None:
        if not isinstance(schema, str) or "/" not in schema:
            raise BlurgenError(f"schema must look like 'blurgen.render/1', got {schema!r}")
        self.schema = get_schema(schema)
        if int(seed) < 0:
            raise BlurgenError(f"seed must be >= 0, got {seed}")
        try:
            json.loads(config_json)
        except (TypeError, json.JSONDecodeError):
            raise BlurgenError("config_json must be the resolved config as a JSON string") from None
        self._filters = filter_kwargs(compression, compression_level)
        self.out_dir = Path(out_dir)
        self.path = self.out_dir / shard_filename(split, task_index, num_tasks)
        self._attrs: dict[str, Any] = {
            "schema": schema, "blurgen_version": __version__, "config": config_json,
            "seed": int(seed), "task_index": int(task_index), "num_tasks": int(num_tasks),
            "split": split,
            "created_by": f"blurgen {__version__} (h5py {h5py.__version__}, HDF5 {h5py.version.hdf5_version})",
        }
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for stale in stale_temps(self.out_dir, self.path.name):  # left by killed earlier attempts
            stale.unlink(missing_ok=True)
        self._tmp = self.out_dir / temp_name(self.path.name)
        # Locking off: the temporary name is this writer's alone, and flock fails on some
        # network file systems that farms write to. track_times=False here (root group) and on
        # every dataset: h5py's default today, spelled out because a stored time would make two
        # runs of the same task differ.
        self._file: h5py.File | None = h5py.File(self._tmp, "w", locking=False, track_times=False)
        self._fields: dict[str, _Field] | None = None
        self._dims: Dims = {}  # H and W, bound by the first sample
        self._count = 0
        self._ids: set[str] = set()
        self._entry: Entry | None = None

    # ------------------------------------------------------------------ context manager

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is not None:
            self.abort()
        elif self._file is not None:  # not closed or aborted inside the block
            self.close()

    @property
    def num_samples(self) -> int:
        """Samples added so far."""
        return self._count

    # ------------------------------------------------------------------ writing

    def add(self, sample: Mapping[str, Any]) -> int:
        """Append one sample; returns its index in the shard."""
        f = self._require_open()
        if not isinstance(sample, Mapping):
            raise ShardError(f"a sample must be a dict of field -> value, got {type(sample).__name__}")
        if not sample:
            raise ShardError("a sample needs at least one field")
        values = {key: _as_value(key, value) for key, value in sample.items()}
        dims = self.schema.check_sample(values, self._dims, self._where())
        if self._fields is None:
            self._fields = self._define_fields(f, values)
        self._check(values)
        # Everything is checked before anything is written, so a refused sample leaves the
        # fields at equal lengths (and binds no dimension).
        self._dims = dims
        for key, value in values.items():
            spec = self._fields[key]
            if spec.dset is not None:
                spec.dset.resize(self._count + 1, axis=0)
                spec.dset[self._count] = value
            else:
                spec.buffer.append(value)
        if "sample_id" in values:
            self._ids.add(values["sample_id"])
        self._count += 1
        return self._count - 1

    def close(self, stats: Mapping[str, Any] | None = None) -> Entry:
        """Finish the shard, rename it to its final name, add it to the manifest.

        ``stats`` (JSON-serialisable, e.g. ``{"dropped": {"coverage": 3}}``) is stored as the
        ``stats`` root attribute. Returns the shard's manifest entry; calling again returns it again.
        """
        if self._entry is not None:
            return self._entry
        f = self._require_open()
        stats_json = _stats_json(stats)
        try:
            # Each dataset's cached chunks are written out here, one dataset after the other in
            # field order, so that the file's layout (where each chunk lands) is a function of
            # the samples alone. Left to HDF5, chunks are placed when a dataset's handle closes,
            # and h5py may defer closing a handle dropped in a thread (a Dask worker running two
            # tasks): the same values then landed at other offsets.
            for spec in (self._fields or {}).values():
                if spec.dset is None:
                    self._write_buffered(f, spec)
                else:
                    spec.dset.id.flush()
            for key, value in {**self._attrs, "num_samples": self._count, "stats": stats_json}.items():
                f.attrs[key] = value
            levels = blur_level_counts(f["blur_level"][()]) if "blur_level" in f else None
            f.close()
        except BaseException:
            self.abort()
            raise
        self._file = None
        with open(self._tmp, "rb") as fh:
            os.fsync(fh.fileno())
        digest = sha256_file(self._tmp)  # once, here: the manifest and verify rely on it
        nbytes = self._tmp.stat().st_size
        os.replace(self._tmp, self.path)
        fsync_dir(self.out_dir)
        a = self._attrs
        self._entry = make_entry(self.path.name, schema=a["schema"], split=a["split"],
                                 task_index=a["task_index"], num_tasks=a["num_tasks"],
                                 samples=self._count, nbytes=nbytes, sha256=digest, blur_levels=levels)
        update_manifest(self.out_dir, self._entry)
        return self._entry

    def abort(self) -> None:
        """Drop the unfinished shard: close and delete the temporary file (manifest untouched)."""
        if self._entry is not None:
            return  # already published: nothing unfinished to drop
        try:
            if self._file is not None:
                self._file.close()
        finally:
            self._file = None
            self._tmp.unlink(missing_ok=True)

    # ------------------------------------------------------------------ internals

    def _where(self) -> str:
        return f"{self.path.name} sample {self._count}"

    def _require_open(self) -> h5py.File:
        if self._file is None:
            raise ShardError(f"shard writer for {self.path.name} is already closed")
        return self._file

    def _define_fields(self, f: h5py.File, values: dict[str, np.ndarray | str]) -> dict[str, _Field]:
        """Fix the fields from the first sample; create the datasets of the large ones."""
        for key, value in values.items():  # all checks first: a refusal creates nothing
            if not isinstance(key, str) or not FIELD_NAME.match(key):
                raise ShardError(f"field name {key!r} must be letters, digits and '_' (not starting with a digit)")
            if not isinstance(value, str) and 0 in value.shape:  # HDF5 chunks cannot be empty
                raise ShardError(f"field '{key}' has an empty dimension {value.shape}")
        fields = {}
        for key, value in values.items():
            if isinstance(value, str):
                fields[key] = _Field(key, is_str=True)
                continue
            spec = fields[key] = _Field(key, is_str=False, shape=value.shape, dtype=value.dtype)
            if value.nbytes >= LARGE_FIELD_BYTES:
                spec.dset = f.create_dataset(key, shape=(0, *value.shape), maxshape=(None, *value.shape),
                                             chunks=(1, *value.shape), dtype=value.dtype,
                                             track_times=False, **self._filters)
        return fields

    def _check(self, values: dict[str, np.ndarray | str]) -> None:
        assert self._fields is not None
        where = self._where()
        for key in self._fields:
            if key not in values:
                raise ShardError(f"{where}: key '{key}' is missing (every sample of a {self.schema.name} "
                                 f"shard needs the keys of the first: {', '.join(self._fields)})")
        for key, value in values.items():
            spec = self._fields.get(key)
            if spec is None:
                raise ShardError(f"{where}: key '{key}' was not in the first sample of this "
                                 f"{self.schema.name} shard (keys: {', '.join(self._fields)})")
            same = (isinstance(value, str) if spec.is_str else
                    not isinstance(value, str) and value.shape == spec.shape and value.dtype == spec.dtype)
            if not same:
                got = "str" if isinstance(value, str) else f"shape {value.shape} dtype {value.dtype}"
                raise ShardError(f"{where}: field '{key}' has {got}, the first sample had {spec.describe()}")
        sample_id = values.get("sample_id")
        if isinstance(sample_id, str) and sample_id in self._ids:
            raise ShardError(f"{where}: sample_id '{sample_id}' is already in this shard (ids must be unique)")

    def _write_buffered(self, f: h5py.File, spec: _Field) -> None:
        if spec.is_str:
            encoded = [s.encode("utf-8") for s in spec.buffer]
            # Fixed-length UTF-8 rather than variable-length strings: fixed-length data goes
            # through the filter pipeline (compressed and checksummed) like every other field.
            width = max(1, max(map(len, encoded), default=1))
            # The dtype carries h5py's UTF-8 marker, so HDF5 records the character set.
            data = np.array(encoded, dtype=h5py.string_dtype("utf-8", width))
        else:
            data = np.stack(spec.buffer)
        row_bytes = max(1, data.nbytes // max(1, len(data)))
        rows = max(1, min(len(data), SMALL_CHUNK_MAX_ROWS, SMALL_CHUNK_BYTES // row_bytes))
        written = f.create_dataset(spec.name, data=data, chunks=(rows, *data.shape[1:]),
                                   track_times=False, **self._filters)
        written.id.flush()  # its chunks placed now, in field order (see close)
        spec.buffer.clear()


def _as_value(key: str, value: Any) -> np.ndarray | str:
    """A sample value as a str or a numpy array of a supported dtype; ShardError otherwise."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ShardError(f"field '{key}': strings may not contain NUL characters")
        return value
    if isinstance(value, (bytes, bytearray)):
        raise ShardError(f"field '{key}': bytes are not supported, store a str or a uint8 array")
    array = np.asarray(value)
    if array.dtype.kind not in _SUPPORTED_KINDS:
        raise ShardError(f"field '{key}': dtype {array.dtype} is not supported "
                         "(use bool, integer or float arrays, scalars, or str)")
    return array


def _stats_json(stats: Mapping[str, Any] | None) -> str:
    def plain(obj: Any) -> Any:
        if isinstance(obj, np.generic):
            return obj.item()
        raise ShardError(f"shard stats must be JSON-serialisable, got a {type(obj).__name__}")
    return json.dumps(dict(stats or {}), sort_keys=True, default=plain)
