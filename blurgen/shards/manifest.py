"""``manifest.json``: the list of finished shards in a folder, with their checksums and totals.

The manifest is only ever replaced whole (written to a temporary file, then ``os.replace``), so a
reader sees the old or the new version, never half of one. Writers change it under an exclusive
``fcntl.flock`` on ``.manifest.lock`` in the same folder, so farm tasks that finish at the same
moment do not overwrite each other's entries (read-modify-write under one lock).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

import numpy as np

from blurgen.atomic import atomic_write_text
from blurgen.errors import ShardError
from blurgen.shards.layout import SHARD_SUFFIX, open_shard, root_attrs

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "blurgen.manifest/1"
LOCK_NAME = ".manifest.lock"

Entry = dict[str, Any]


def list_shard_files(folder: str | Path) -> list[Path]:
    """The finished shards in a folder: ``*.h5`` files, sorted, without hidden (temporary) ones."""
    return sorted(p for p in Path(folder).glob(f"*{SHARD_SUFFIX}")
                  if not p.name.startswith(".") and p.is_file())


def sha256_file(path: str | Path, on_bytes: Callable[[int], None] | None = None) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks (shards are GBs: never read them whole)."""
    digest = hashlib.sha256()
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as fh:
        while n := fh.readinto(buf):
            digest.update(view[:n])
            if on_bytes is not None:
                on_bytes(n)
    return digest.hexdigest()


def blur_level_counts(levels: Iterable[int] | np.ndarray) -> dict[str, int]:
    """``{"1": n1, "3": n3, ...}``: how many samples have each blur level (levels present only)."""
    values, counts = np.unique(np.asarray(levels, dtype=np.int64), return_counts=True)
    return {str(int(v)): int(c) for v, c in zip(values, counts)}


def make_entry(file: str, *, schema: str, split: str, task_index: int, num_tasks: int,
               samples: int, nbytes: int, sha256: str | None,
               blur_levels: Mapping[str, int] | None = None) -> Entry:
    """One manifest entry (the one place that fixes the entry's keys and their order)."""
    entry: Entry = {"file": file, "schema": schema, "split": split, "task_index": int(task_index),
                    "num_tasks": int(num_tasks), "samples": int(samples), "bytes": int(nbytes),
                    "sha256": sha256}
    if blur_levels is not None:
        entry["blur_levels"] = dict(sorted(blur_levels.items(), key=lambda kv: int(kv[0])))
    return entry


def shard_entry(path: str | Path, *, checksum: bool = True,
                on_bytes: Callable[[int], None] | None = None) -> Entry:
    """The manifest entry of a shard file, computed from the file itself.

    With ``checksum=False`` the sha256 is left as None (for a quick look such as ``shards info``
    on a folder without manifest); entries written to a manifest always carry it.
    """
    path = Path(path)
    with open_shard(str(path)) as f:
        attrs = root_attrs(str(path), f)
        levels = blur_level_counts(f["blur_level"][()]) if "blur_level" in f else None
    return make_entry(path.name, schema=attrs["schema"], split=attrs["split"],
                      task_index=attrs["task_index"], num_tasks=attrs["num_tasks"],
                      samples=attrs["num_samples"], nbytes=path.stat().st_size,
                      sha256=sha256_file(path, on_bytes) if checksum else None, blur_levels=levels)


def build_manifest(entries: Iterable[Entry]) -> dict[str, Any]:
    """The manifest document for a set of entries: sorted by file, with totals."""
    shards = sorted(entries, key=lambda e: e["file"])
    per_split: dict[str, int] = {}
    histogram: dict[int, int] = {}
    for e in shards:
        per_split[e["split"]] = per_split.get(e["split"], 0) + e["samples"]
        for level, n in e.get("blur_levels", {}).items():
            histogram[int(level)] = histogram.get(int(level), 0) + n
    totals = {"shards": len(shards), "samples": sum(e["samples"] for e in shards),
              "bytes": sum(e["bytes"] for e in shards), "per_split": dict(sorted(per_split.items())),
              "blur_level_histogram": {str(k): histogram[k] for k in sorted(histogram)}}
    return {"format": MANIFEST_FORMAT, "shards": shards, "totals": totals}


def read_manifest(folder: str | Path) -> dict[str, Any] | None:
    """The folder's manifest, or None when it has none; ShardError when it is unreadable."""
    path = Path(folder) / MANIFEST_NAME
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        return None
    try:
        manifest = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ShardError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno}); "
                         f"rebuild it with: blurgen shards index {folder}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT \
            or not isinstance(manifest.get("shards"), list):
        raise ShardError(f"{path} is not a {MANIFEST_FORMAT} manifest; "
                         f"rebuild it with: blurgen shards index {folder}")
    return manifest


def update_manifest(folder: str | Path, entry: Entry) -> dict[str, Any]:
    """Add or replace (by file name) one shard's entry; returns the manifest as written."""
    with _locked(folder) as locked:
        current = read_manifest(folder)
        entries = [e for e in (current or {}).get("shards", []) if e.get("file") != entry["file"]]
        manifest = build_manifest([*entries, entry])
        _write(folder, manifest, locked)
    return manifest


def rebuild_manifest(folder: str | Path, on_bytes: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Recompute the manifest from the shard files in the folder (checksums included) and write it."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ShardError(f"shard folder not found: {folder}")
    with _locked(folder) as locked:
        manifest = build_manifest(shard_entry(p, on_bytes=on_bytes) for p in list_shard_files(folder))
        _write(folder, manifest, locked)
    return manifest


@contextlib.contextmanager
def _locked(folder: str | Path) -> Iterator[bool]:
    """Hold the folder's manifest lock; yields whether it is held (False where the file system
    cannot lock)."""
    # The lock file stays in place: deleting it would let two processes lock different inodes.
    fd = os.open(Path(folder) / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            locked = True
        except OSError as exc:  # e.g. Lustre mounted without flock: ENOSYS / ENOLCK
            # Go on unlocked: the replace stays atomic, at worst a concurrent task's entry is
            # lost, and `blurgen shards index` rebuilds the manifest from the shards.
            warnings.warn(f"cannot lock {Path(folder) / LOCK_NAME} ({exc.strerror}); updating "
                          "manifest.json unlocked: run `blurgen shards index` after the job", stacklevel=3)
            locked = False
        yield locked
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _write(folder: str | Path, manifest: Mapping[str, Any], locked: bool) -> None:
    """Write the manifest (under the lock when ``locked``) and, when locked, remove the temporary
    manifests of dead writers: every writer holds the lock from its write to its rename, so one
    seen under the lock belongs to a task killed in between (a lost Dask worker, a preempted
    job), whichever host it ran on."""
    folder = Path(folder)
    atomic_write_text(folder / MANIFEST_NAME, json.dumps(manifest, indent=2) + "\n")
    if locked:
        for leftover in folder.glob(f".{MANIFEST_NAME}.*.tmp"):
            leftover.unlink(missing_ok=True)


