"""Check shards against their manifest: size, sha256, attributes, and every chunk's checksum.

The sha256 catches any change to the file, including bytes that HDF5 itself does not check
(attribute values, object headers); reading every chunk makes HDF5 check each chunk's fletcher32
and decompress it, which says which dataset and sample is damaged. The datasets are compared
with the shard's declared schema (names, dtypes, shapes). The farm uses
:func:`shard_is_complete` to skip tasks whose shard is already done.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import h5py

from blurgen.errors import ShardError
from blurgen.shards.layout import ensure_filters, open_shard, parse_shard_filename, root_attrs, shard_filename
from blurgen.shards.manifest import (
    MANIFEST_NAME,
    blur_level_counts,
    build_manifest,
    list_shard_files,
    read_manifest,
    sha256_file,
    shard_entry,
    update_manifest,
)
from blurgen.shards.reader import file_fields
from blurgen.shards.release import shard_folder
from blurgen.shards.schema import get_schema, is_declared

_MAX_BAD_CHUNKS_LISTED = 3


@dataclass
class VerifyReport:
    """What :func:`verify_dir` found. ``bad`` maps a shard file to its problems."""

    folder: str
    shards: int = 0
    samples: int = 0
    bytes: int = 0
    bad: dict[str, list[str]] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)    # listed in the manifest, no file
    unlisted: list[str] = field(default_factory=list)   # a shard file the manifest does not list
    manifest_problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.bad or self.missing or self.unlisted or self.manifest_problems)

    def problems(self) -> list[str]:
        """Every problem as one line, naming the shard."""
        lines = [f"{MANIFEST_NAME}: {p}" for p in self.manifest_problems]
        lines += [f"{name}: listed in {MANIFEST_NAME} but the file is missing" for name in self.missing]
        lines += [f"{name}: not listed in {MANIFEST_NAME} (rebuild it with: blurgen shards index)"
                  for name in self.unlisted]
        lines += [f"{name}: {p}" for name, problems in sorted(self.bad.items()) for p in problems]
        return lines


def verify_shard(path: str | Path, entry: Mapping[str, Any] | None,
                 on_bytes: Callable[[int], None] | None = None) -> list[str]:
    """Problems of one shard (empty when it is sound).

    With ``entry`` (its manifest entry) the size, sha256, attributes and blur-level counts are
    compared with it; without, only the file's own consistency and checksums are checked.
    """
    path = Path(path)
    if not path.is_file():
        return ["file is missing"]
    problems: list[str] = []
    if entry is not None:
        size = path.stat().st_size
        if size != entry.get("bytes"):
            problems.append(f"size is {size} bytes, the manifest says {entry.get('bytes')}")
        if not entry.get("sha256"):
            problems.append("the manifest entry has no sha256")
        elif sha256_file(path, on_bytes) != entry["sha256"]:
            problems.append("sha256 differs from the manifest: the file changed after it was written")
    try:
        with open_shard(str(path)) as f:
            problems += _check_contents(path, f, entry)
    except ShardError as exc:
        problems.append(str(exc))
    except OSError as exc:  # HDF5 structures damaged beyond what the per-chunk checks catch
        problems.append(f"unreadable: {' '.join(str(exc).split())}")
    return problems


def _check_contents(path: Path, f: h5py.File, entry: Mapping[str, Any] | None) -> list[str]:
    problems: list[str] = []
    attrs = root_attrs(str(path), f)
    n = attrs["num_samples"]
    identity = (attrs["split"], attrs["task_index"], attrs["num_tasks"])
    parsed = parse_shard_filename(path.name)
    if parsed is not None and parsed != identity:
        problems.append(f"its attributes say it is {shard_filename(*identity)}")
    if entry is not None:
        expected = {"schema": attrs["schema"], "split": attrs["split"], "task_index": attrs["task_index"],
                    "num_tasks": attrs["num_tasks"], "samples": n}
        for key, value in expected.items():
            if entry.get(key) != value:
                problems.append(f"{key} is {value!r} in the file, {entry.get(key)!r} in the manifest")
    for name, dset in f.items():
        if isinstance(dset, h5py.Dataset):
            problems += _check_dataset(str(path), name, dset, n)
    if is_declared(attrs["schema"]):  # a schema this blurgen does not know is checked for integrity only
        stored = {s.name: (s.shape, s.dtype) for s in file_fields(f)}
        problems += get_schema(attrs["schema"]).check_datasets(stored)
    if entry is not None and "blur_level" in f:
        counts = blur_level_counts(f["blur_level"][()])
        if counts != entry.get("blur_levels"):
            problems.append(f"blur-level counts {counts} differ from the manifest's {entry.get('blur_levels')}")
    return problems


def _check_dataset(path: str, name: str, dset: h5py.Dataset, n: int) -> list[str]:
    """Read every chunk, so HDF5 checks each chunk's fletcher32 and decompresses it."""
    if not dset.shape or dset.shape[0] != n:
        return [f"dataset '{name}' has shape {dset.shape}, expected {n} samples along axis 0"]
    if not dset.fletcher32:
        return [f"dataset '{name}' has no fletcher32 checksum"]
    ensure_filters(path, dset)
    bad = []
    for selection in dset.iter_chunks():
        try:
            dset[selection]
        except OSError:
            bad.append(selection[0].start)
    if not bad:
        return []
    listed = ", ".join(map(str, bad[:_MAX_BAD_CHUNKS_LISTED])) + (", ..." if len(bad) > _MAX_BAD_CHUNKS_LISTED else "")
    return [f"dataset '{name}': {len(bad)} corrupt chunk(s) (checksum or decompression failed) "
            f"starting at sample {listed}"]


def verify_dir(folder: str | Path, progress: Callable[[str], None] | None = None) -> VerifyReport:
    """Verify every shard in a folder (or a release's ``data/``) against its manifest;
    ``progress(file)`` after each shard."""
    folder = shard_folder(folder)
    if not folder.is_dir():
        raise ShardError(f"shard folder not found: {folder}")
    report = VerifyReport(str(folder))
    try:
        manifest = read_manifest(folder)
    except ShardError as exc:
        manifest = None
        report.manifest_problems.append(str(exc))
    files = list_shard_files(folder)
    if manifest is None and not files:
        raise ShardError(f"no shards (*.h5) and no {MANIFEST_NAME} in {folder}")
    entries: dict[str, Mapping[str, Any]] = {}
    if manifest is not None:
        entries = {e.get("file"): e for e in manifest["shards"]}
        if build_manifest(manifest["shards"])["totals"] != manifest.get("totals"):
            report.manifest_problems.append("totals disagree with the shard entries")
        report.missing = sorted(name for name in entries if not (folder / name).is_file())
        report.unlisted = [p.name for p in files if p.name not in entries]
    elif not report.manifest_problems:
        report.manifest_problems.append(f"missing; create it with: blurgen shards index {folder}")
    for path in files:
        problems = verify_shard(path, entries.get(path.name))
        if problems:
            report.bad[path.name] = problems
        report.shards += 1
        report.bytes += path.stat().st_size
        report.samples += int(entries.get(path.name, {}).get("samples", 0))
        if progress is not None:
            progress(path.name)
    return report


def require_verified(folder: str | Path, refused: str, *, desc: str = "verify",
                     progress: bool = True) -> VerifyReport:
    """Verify ``folder`` (:func:`verify_dir`) before a command reads it, or stop in one line
    naming the first bad shard: ``"<folder> fails verification, <refused>: <shard>: <problem>"``
    (``refused`` says what did not happen, e.g. "nothing published")."""
    from tqdm import tqdm

    folder = shard_folder(folder)
    with tqdm(total=len(list_shard_files(folder)), unit="shard", desc=desc, disable=not progress or None,
              leave=False) as bar:
        report = verify_dir(folder, progress=lambda name: bar.update())
    if not report.ok:
        problems = report.problems()
        raise ShardError(f"{folder} fails verification, {refused}: {problems[0]}"
                         + (f" (and {len(problems) - 1} more: blurgen shards verify {folder})"
                            if len(problems) > 1 else ""))
    return report


def shard_is_complete(folder: str | Path, filename: str) -> bool:
    """True when the shard exists and verifies, so a farm task may skip producing it.

    A shard with its final name but without a manifest entry is finished (the rename comes
    last) but its task died before updating the manifest: if it passes its own checks it is
    added to the manifest here and counts as complete.
    """
    folder = Path(folder)
    path = folder / filename
    if not path.is_file():
        return False
    manifest = read_manifest(folder)
    entry = next((e for e in (manifest or {}).get("shards", []) if e.get("file") == filename), None)
    if entry is not None:
        return not verify_shard(path, entry)
    if verify_shard(path, None):
        return False
    update_manifest(folder, shard_entry(path))
    return True
