"""How one set of shards was made, read back from the shards: the dataset card's "how it was made".

Every shard carries the resolved config, the seed, the task, the blurgen version and its task's
stats (what was dropped and why), so a published set needs no other record. The asset manifests
a render job read are named in its config; their sha256, licences and attributions are read from
the files when they are still there (the demo set's from the manifests blurgen ships).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from blurgen.errors import BlurgenError
from blurgen.resources import assets_manifest_dir
from blurgen.shards.generators import generator_info, stats_tables
from blurgen.shards.layout import open_shard, root_attrs
from blurgen.shards.manifest import read_manifest, sha256_file
from blurgen.shards.reader import ShardDataset
from blurgen.shards.release import shard_folder

SUBSET_RECORD = "subset.json"  # written beside the manifest by `blurgen shards subset`
# config key -> (the manifest's role, the shard field naming its assets, the demo set's manifest)
_RENDER_ASSETS = (("objects", "object_id", "demo_objects"), ("backgrounds", "background_id", "demo_backgrounds"))


@dataclass(frozen=True)
class AssetRecord:
    """One asset manifest a set was made from, and the assets of it the set uses."""

    role: str                      # "objects" or "backgrounds"
    configured: str                # the path in the config, or "built-in demo_objects"
    found: bool                    # the file was readable when publishing
    name: str = ""
    version: str = ""
    sha256: str = ""
    assets: int = 0                # assets the manifest lists
    used: int = 0                  # distinct ids in the set's samples
    unlisted: int = 0              # of those, ids the manifest does not list (another manifest?)
    licenses: dict[str, int] = field(default_factory=dict)        # licence -> assets used
    attributions: tuple[str, ...] = ()                            # metadata "attribution" of used assets


@dataclass(frozen=True)
class SetRecord:
    """What the shards of one input folder say about how they were made."""

    name: str
    schema: str
    config: dict[str, Any]          # the resolved config (one job's shards all store the same one)
    versions: tuple[str, ...]       # blurgen versions that wrote the shards
    seeds: tuple[int, ...]
    num_tasks: tuple[int, ...]
    shards: int
    samples: int
    drops: dict[str, dict[str, int]]  # table label -> reason -> count, over the job's tasks
    subset: dict[str, Any] | None     # the subset record, when the set was cut by `shards subset`
    assets: tuple[AssetRecord, ...]


def read_set(name: str, folder: str | Path) -> SetRecord:
    """The record of the shards in ``folder`` (verified before: its manifest lists them all)."""
    folder = shard_folder(folder)
    manifest = read_manifest(folder) or {"shards": []}
    attrs = []
    for entry in manifest["shards"]:
        path = folder / entry["file"]
        with open_shard(str(path)) as f:
            attrs.append(root_attrs(str(path), f))
    if len({a.get("config") for a in attrs}) > 1:  # e.g. two jobs' shards gathered by hand and indexed
        raise BlurgenError(f"{folder} holds the shards of more than one job (their stored configs differ): "
                           "publish each job's folder as its own set")
    config = json.loads(attrs[0].get("config") or "{}")
    schema = attrs[0]["schema"]
    subset_path = folder / SUBSET_RECORD
    return SetRecord(
        name=name, schema=schema, config=config,
        versions=tuple(sorted({str(a.get("blurgen_version", "?")) for a in attrs})),
        seeds=tuple(sorted({int(a.get("seed", -1)) for a in attrs})),
        num_tasks=tuple(sorted({int(a["num_tasks"]) for a in attrs})),
        shards=len(attrs), samples=sum(int(e["samples"]) for e in manifest["shards"]),
        drops=_drops(schema, config, attrs),
        subset=json.loads(subset_path.read_text("utf-8")) if subset_path.is_file() else None,
        assets=_assets(schema, config, folder))


def _drops(schema: str, config: Mapping[str, Any], attrs: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """What the job dropped or skipped, by table and reason.

    A task stores its stats in each shard it writes (one per split), so the tables a task counts
    are summed over distinct tasks, not shards; the plan's tables are the same in every task and
    taken once. Only the tables that count losses (``dropped...``, ``skipped...``) are kept.
    """
    per_task, per_job = stats_tables(generator_info(schema), config)
    by_task: dict[int, dict[str, Any]] = {}
    for a in attrs:
        try:
            by_task.setdefault(int(a["task_index"]), json.loads(a.get("stats") or "{}"))
        except json.JSONDecodeError:
            continue
    tables: dict[str, Counter] = {}
    for index, stats in sorted(by_task.items()):
        for key, value in stats.items():
            if not isinstance(value, dict) or not key.startswith(("dropped", "skipped")):
                continue
            label = per_job.get(key) or per_task.get(key) or key
            if key in per_job and label in tables:
                continue  # the plan's table: every task holds the same one
            tables.setdefault(label, Counter()).update({str(k): int(v) for k, v in value.items()})
    return {label: dict(sorted(c.items())) for label, c in tables.items()}


def _assets(schema: str, config: Mapping[str, Any], folder: Path) -> tuple[AssetRecord, ...]:
    if schema != "blurgen.render/1":
        return ()  # composite and flowpairs read photo and video folders, which have no manifests
    dataset = ShardDataset(folder)
    records = []
    for role, id_field, builtin in _RENDER_ASSETS:
        configured = config.get("assets", {}).get(role)
        path = Path(configured) if configured else assets_manifest_dir() / f"{builtin}.json"
        label = configured or f"built-in {builtin}"
        used = set(dataset.column(id_field)) if len(dataset) else set()
        if not path.is_file():
            records.append(AssetRecord(role, label, found=False, used=len(used)))
            continue
        manifest = json.loads(path.read_text("utf-8"))
        assets = manifest.get("assets", {})
        licenses = Counter(str(assets[i].get("license", "?")) for i in used if i in assets)
        attributions = sorted({str(assets[i].get("metadata", {}).get("attribution")) for i in used
                               if i in assets and assets[i].get("metadata", {}).get("attribution")})
        records.append(AssetRecord(role, label, True, str(manifest.get("name", "")), str(manifest.get("version", "")),
                                   sha256_file(path), len(assets), len(used), len(used - set(assets)),
                                   dict(sorted(licenses.items())), tuple(attributions)))
    return tuple(records)
