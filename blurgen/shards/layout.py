"""The on-disk conventions shared by the shard writer, reader and verifier.

One place for the file naming, the filter settings, the rule that decides which fields are
written one chunk per sample, and the lookup of filters that HDF5 does not build in (zstd), so
that writing and reading cannot drift apart. ``docs/shard-format.md`` describes the same rules
for people.
"""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path
from typing import Any

import h5py

from blurgen.errors import BlurgenError, ShardError

SHARD_SUFFIX = ".h5"
TEMP_SUFFIX = ".tmp"
_SHARD_NAME = re.compile(r"^(?P<split>[A-Za-z0-9_]+)-(?P<index>\d{5,})-of-(?P<num>\d{5,})\.h5$")
SPLIT_NAME = re.compile(r"^[A-Za-z0-9_]+$")
# Field names become HDF5 dataset names and Python identifiers in user code: keep them plain.
FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# A field whose per-sample value has at least this many bytes is written one chunk per sample
# as samples arrive (images, alpha, flow); smaller values (scalars, boxes, ids) are buffered and
# written at close in multi-sample chunks, since a chunk per scalar would cost more in index
# and filter overhead than the value itself.
LARGE_FIELD_BYTES = 1024
SMALL_CHUNK_BYTES = 256 * 1024
SMALL_CHUNK_MAX_ROWS = 4096

COMPRESSIONS = ("gzip", "zstd", "none")
DEFAULT_GZIP_LEVEL = 4
DEFAULT_ZSTD_LEVEL = 3
ZSTD_FILTER_ID = 32015

# Filters HDF5 may lack but a Python package can register (id -> package to install).
_PLUGIN_FILTERS = {ZSTD_FILTER_ID: ("zstd", "blurgen[zstd]")}
_FILTER_NAMES = {h5py.h5z.FILTER_DEFLATE: "gzip", h5py.h5z.FILTER_SHUFFLE: "shuffle",
                 h5py.h5z.FILTER_FLETCHER32: "fletcher32", ZSTD_FILTER_ID: "zstd"}


def shard_filename(split: str, task_index: int, num_tasks: int) -> str:
    """File name of task ``task_index`` of ``num_tasks``: ``train-00003-of-00016.h5``."""
    if not SPLIT_NAME.match(split or ""):
        raise BlurgenError(f"split name must be letters, digits or '_', got {split!r}")
    if num_tasks < 1 or not 0 <= task_index < num_tasks:
        raise BlurgenError(f"task index must be in 0..num_tasks-1, got {task_index} of {num_tasks}")
    return f"{split}-{task_index:05d}-of-{num_tasks:05d}{SHARD_SUFFIX}"


def parse_shard_filename(name: str) -> tuple[str, int, int] | None:
    """``(split, task_index, num_tasks)`` of a shard file name, or None if it is not one."""
    m = _SHARD_NAME.match(name)
    return (m["split"], int(m["index"]), int(m["num"])) if m else None


def temp_name(final_name: str) -> str:
    """The name a shard has while this process writes it: hidden, not ``*.h5``, and this
    host's and process's own, so two attempts at the same task (a requeued job whose first
    run still lives) never write into one file."""
    return f".{final_name}.{socket.gethostname()}-{os.getpid()}{TEMP_SUFFIX}"


def stale_temps(folder: Path, final_name: str) -> list[Path]:
    """Temporary files of this shard left by writers that are dead: on this host, by a process
    that no longer runs (a SIGKILLed or preempted task). Another host's are left alone: its
    writer may still be alive."""
    host = socket.gethostname()
    stale = []
    for path in folder.glob(f".{final_name}.*{TEMP_SUFFIX}"):
        owner = path.name[len(final_name) + 2:-len(TEMP_SUFFIX)]
        owner_host, _, pid = owner.rpartition("-")
        if owner_host == host and pid.isdigit() and not _alive(int(pid)):
            stale.append(path)
    return stale


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def filter_kwargs(compression: str, level: int | None) -> dict[str, Any]:
    """``create_dataset`` keyword arguments for a compression choice.

    Every choice keeps fletcher32, so each chunk carries a checksum that HDF5 checks on read.
    Shuffle goes with the compressors (it groups the bytes of multi-byte values, which helps
    float alpha and flow; HDF5 skips it for 1-byte types), not with ``none`` where it gains
    nothing.
    """
    if compression == "gzip":
        level = DEFAULT_GZIP_LEVEL if level is None else level
        if not 0 <= level <= 9:
            raise BlurgenError(f"gzip compression level must be 0..9, got {level}")
        return {"compression": "gzip", "compression_opts": level, "shuffle": True, "fletcher32": True}
    if compression == "zstd":
        level = DEFAULT_ZSTD_LEVEL if level is None else level
        if not 1 <= level <= 22:
            raise BlurgenError(f"zstd compression level must be 1..22, got {level}")
        try:
            import hdf5plugin
        except ImportError:
            raise BlurgenError("compression 'zstd' needs hdf5plugin: pip install blurgen[zstd]") from None
        return {**hdf5plugin.Zstd(clevel=level), "shuffle": True, "fletcher32": True}
    if compression == "none":
        if level is not None:
            raise BlurgenError("compression 'none' takes no compression level")
        return {"fletcher32": True}
    raise BlurgenError(f"unknown compression {compression!r}; choose one of {', '.join(COMPRESSIONS)}")


def dataset_filters(dset: h5py.Dataset) -> list[tuple[int, tuple[int, ...]]]:
    """The filter pipeline of a dataset in write order: ``[(filter id, client values), ...]``."""
    plist = dset.id.get_create_plist()
    filters = []
    for i in range(plist.get_nfilters()):
        fid, _flags, values, _name = plist.get_filter(i)
        filters.append((fid, tuple(values)))
    return filters


def filter_names(dset: h5py.Dataset) -> list[str]:
    """Readable filter names (``gzip(4)``, ``shuffle``, ``fletcher32``...) for ``shards info``."""
    names = []
    for fid, values in dataset_filters(dset):
        name = _FILTER_NAMES.get(fid, f"filter{fid}")
        if fid == h5py.h5z.FILTER_DEFLATE and values:
            name += f"({values[0]})"
        names.append(name)
    return names


def ensure_filters(path: str, dset: h5py.Dataset) -> None:
    """Make sure HDF5 can decode ``dset``: register hdf5plugin's filters when one is needed.

    Importing hdf5plugin only when a shard uses one of its filters keeps plain gzip readers
    free of it; the error names the package to install instead of HDF5's "filter not available".
    """
    for fid, _ in dataset_filters(dset):
        if h5py.h5z.filter_avail(fid):
            continue
        try:
            import hdf5plugin  # noqa: F401 - importing registers the filters with HDF5
        except ImportError:
            pass
        if not h5py.h5z.filter_avail(fid):
            what, package = _PLUGIN_FILTERS.get(fid, (f"HDF5 filter {fid}", "the plugin providing it"))
            raise ShardError(f"{path}: dataset '{dset.name.lstrip('/')}' is compressed with {what}, "
                             f"which this HDF5 cannot decode: pip install {package}")


REQUIRED_ATTRS = ("schema", "split", "task_index", "num_tasks", "num_samples")


def root_attrs(path: str, f: h5py.File) -> dict[str, Any]:
    """A shard's root attributes as plain Python values (str, int); ShardError if not a shard."""
    attrs = {key: _plain(value) for key, value in f.attrs.items()}
    missing = [key for key in REQUIRED_ATTRS if key not in attrs]
    if missing:
        raise ShardError(f"{path} is not a blurgen shard: root attribute '{missing[0]}' is missing")
    return attrs


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return value.item()
    return value


def open_shard(path: str) -> h5py.File:
    """Open a finished shard for reading.

    Finished shards are never modified in place (they appear by an atomic rename), so HDF5's
    file locking buys nothing and is turned off: it fails on some network file systems.
    """
    try:
        return h5py.File(path, "r", locking=False)
    except FileNotFoundError:
        raise ShardError(f"shard not found: {path}") from None
    except OSError as exc:
        raise ShardError(f"{path} is not a readable HDF5 file ({' '.join(str(exc).split())})") from None
