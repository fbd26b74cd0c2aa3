"""What a shard folder holds: its declared schema (``folder_schema``), and a summary for
``blurgen shards info`` of its counts, fields and how it was made."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from blurgen.errors import ShardError
from blurgen.shards.layout import open_shard, root_attrs, shard_filename
from blurgen.shards.manifest import list_shard_files, read_manifest, shard_entry
from blurgen.shards.reader import FieldSpec, shard_fields
from blurgen.shards.release import shard_folder
from blurgen.shards.schema import Schema, get_schema

_CONFIG_LINE_WIDTH = 100


@dataclass(frozen=True)
class FolderInfo:
    """Counts from the manifest (or the files), fields and attributes from the first shard."""

    folder: str
    has_manifest: bool
    schemas: tuple[str, ...]
    shards: int
    samples_per_split: dict[str, int]
    bytes: int
    fields: tuple[FieldSpec, ...]
    attrs: dict[str, Any]  # root attributes of the first shard

    @property
    def samples(self) -> int:
        return sum(self.samples_per_split.values())


def folder_info(folder: str | Path) -> FolderInfo:
    """Summarise a shard folder; without a manifest the files are read (no checksums)."""
    folder, entries, has_manifest = _entries(folder)
    per_split: dict[str, int] = {}
    for e in entries:
        per_split[e["split"]] = per_split.get(e["split"], 0) + e["samples"]
    path = _first_shard(folder, entries)
    with open_shard(str(path)) as f:
        attrs = root_attrs(str(path), f)
    return FolderInfo(str(folder), has_manifest, tuple(sorted({e["schema"] for e in entries})),
                      len(entries), dict(sorted(per_split.items())), sum(e["bytes"] for e in entries),
                      tuple(shard_fields(path)), attrs)


def folder_schema(folder: str | Path) -> Schema:
    """The declared schema of the shards in ``folder``, narrowed to the optional fields they
    hold: ``folder_schema(d).has("blur_severity")``, ``.field("image").shape``.

    Every shard of a folder must have the same schema (a mix is an error that names them), and
    it must be declared in :mod:`blurgen.shards.schemas` or registered by the caller.
    """
    folder, entries, _ = _entries(folder)
    names = sorted({e["schema"] for e in entries})
    if len(names) > 1:
        raise ShardError(f"{folder} mixes shard schemas ({', '.join(names)}): one folder holds one schema")
    schema = get_schema(names[0])
    return schema.holding(spec.name for spec in shard_fields(_first_shard(folder, entries)))


def _entries(folder: str | Path) -> tuple[Path, list[dict[str, Any]], bool]:
    """The folder, its shards' manifest entries (read from the files, without checksums, when
    there is no manifest) and whether a manifest was there; a release root stands for its data/."""
    folder = shard_folder(folder)
    if not folder.is_dir():
        raise ShardError(f"shard folder not found: {folder}")
    manifest = read_manifest(folder)
    if manifest is not None:
        entries = manifest["shards"]
    else:
        entries = [shard_entry(p, checksum=False) for p in list_shard_files(folder)]
    if not entries:
        raise ShardError(f"no shards in {folder}")
    return folder, entries, manifest is not None


def _first_shard(folder: Path, entries: list[dict[str, Any]]) -> Path:
    """The first shard with samples (an empty shard holds no datasets), else the first."""
    return folder / next((e for e in entries if e["samples"] > 0), entries[0])["file"]


def format_info(info: FolderInfo) -> str:
    """Readable text for ``blurgen shards info``."""
    a = info.attrs
    lines = [
        f"folder:    {info.folder}" + ("" if info.has_manifest else "  (no manifest.json: counted from the files)"),
        f"schema:    {', '.join(info.schemas)}",
        f"shards:    {info.shards} ({human_bytes(info.bytes)})",
        f"samples:   {info.samples} (" + ", ".join(f"{s} {n}" for s, n in info.samples_per_split.items()) + ")",
        f"made by:   {a.get('created_by', '?')}, seed {a.get('seed', '?')}, {a.get('num_tasks', '?')} tasks",
        "fields (per sample):",
    ]
    rows = [(f.name, "x".join(map(str, f.shape)) or "scalar", f.dtype, "+".join(f.filters) or "none",
             "1 sample" if f.chunk_rows == 1 else f"{f.chunk_rows} samples") for f in info.fields]
    header = ("name", "shape", "dtype", "filters", "chunk")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
    stats = a.get("stats")
    if stats and stats != "{}":
        name = shard_filename(a["split"], a["task_index"], a["num_tasks"])
        lines.append(f"stats of {name}: {stats}")
    lines.append("config (first shard):")
    lines += ["  " + line for line in _config_summary(a.get("config", ""))]
    return "\n".join(lines)


def _config_summary(config_json: str) -> list[str]:
    """One line per top-level section: ``render: width=320, height=240, ...`` (long lines cut)."""
    try:
        config = json.loads(config_json)
    except (TypeError, json.JSONDecodeError):
        return ["(not valid JSON)"]
    if not isinstance(config, dict) or not config:
        return ["(empty)"]
    lines, scalars = [], []
    for key, value in config.items():
        if isinstance(value, dict):
            text = ", ".join(f"{k}={_short(v)}" for k, v in _flatten(value))
            lines.append(_cut(f"{key}: {text}"))
        else:
            scalars.append(f"{key}={_short(value)}")
    if scalars:
        lines.insert(0, _cut(", ".join(scalars)))
    return lines


def _flatten(d: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    items = []
    for key, value in d.items():
        if isinstance(value, dict):
            items += _flatten(value, f"{prefix}{key}.")
        else:
            items.append((f"{prefix}{key}", value))
    return items


def _short(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= 30 else text[:27] + "..."


def _cut(line: str) -> str:
    return line if len(line) <= _CONFIG_LINE_WIDTH else line[:_CONFIG_LINE_WIDTH - 3] + "..."


def human_bytes(n: int) -> str:
    """``1536`` -> ``1.5 KiB``."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"
