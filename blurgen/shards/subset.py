"""``blurgen shards subset``: deterministic selections of a shard folder, written as new shards.

The cuts maintainers and the blur-retrieval paper make: a per-level database (Table 4: ``--role
database --levels 3``), a level-balanced training set (one image per trajectory, levels
balanced: ``--split train --per-trajectory 1 --balance-levels``), a small sample release
(``--max-samples 200``). Filters (split, role, levels) come first, then the per-trajectory cap,
then level balancing, then the overall cap.

Every random choice ranks samples by a key hashed from the seed and the sample's id
(:func:`sample_keys`), so a selection depends only on which samples the folder holds and the
seed: not on how the job was cut into tasks, the order of the shards, or the folder's path.
The result is a shard folder like any other (one shard per split, written by ``ShardWriter``
with the source's schema, config and seed, so it reads and publishes as the source does), plus
``subset.json``: the source (folder, manifest sha256), the selection, and for each new shard
the source shard and sample ranges it took. The source is verified first, as ``publish`` does
(every shard against its manifest), so a damaged shard is refused by name before anything is
written. The subset is built in a hidden sibling folder and renamed when complete.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from tqdm import tqdm

from blurgen.atomic import atomic_write_text
from blurgen.errors import BlurgenError
from blurgen.shards.layout import open_shard, root_attrs
from blurgen.shards.manifest import MANIFEST_NAME, read_manifest, sha256_file
from blurgen.shards.provenance import SUBSET_RECORD
from blurgen.shards.reader import ShardDataset
from blurgen.shards.release import new_output_folder, shard_folder
from blurgen.shards.stats import table_role
from blurgen.shards.verify import require_verified
from blurgen.shards.writer import ShardWriter
from blurgen.train.report import staged_folder

SUBSET_FORMAT = "blurgen.subset/1"


@dataclass(frozen=True)
class Selection:
    """What to keep. Empty tuples and None mean no restriction."""

    splits: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    levels: tuple[int, ...] = ()
    per_trajectory: int | None = None
    balance_levels: bool = False
    max_samples: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("per_trajectory", "max_samples"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise BlurgenError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
        if self.seed < 0:
            raise BlurgenError(f"--seed must be >= 0, got {self.seed}")

    def to_dict(self) -> dict[str, Any]:
        """The options that were given (the record in subset.json and the card)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()
                if v not in ((), None, False) or k == "seed"}


def parse_levels(text: str) -> tuple[int, ...]:
    """``"1-6"``, ``"3"``, ``"1,3,5"`` or ``"1-3,7"`` -> the blur levels, sorted."""
    levels: set[int] = set()
    for part in str(text).split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not m or (m[2] is not None and int(m[2]) < int(m[1])):
            raise BlurgenError(f"--levels {text!r}: give levels like 1-6, 3 or 1,3,5")
        levels.update(range(int(m[1]), int(m[2] or m[1]) + 1))
    return tuple(sorted(levels))


def sample_keys(seed: int, sample_ids: Sequence[str]) -> np.ndarray:
    """A pseudo-random uint64 rank per sample from (seed, sample id): the order every random
    choice of a subset follows."""
    return np.array([int.from_bytes(hashlib.blake2b(f"{seed}\x00{sid}".encode(), digest_size=8).digest(), "little")
                     for sid in sample_ids], dtype=np.uint64)


def select(dataset: ShardDataset, splits: Sequence[str], selection: Selection) -> np.ndarray:
    """Indices (in dataset order) of the samples ``selection`` keeps; ``splits`` is each
    sample's split (the shard's)."""
    splits = np.asarray(splits)
    keep = np.ones(len(dataset), bool)

    def column(name: str, option: str) -> np.ndarray:
        if name not in dataset.fields:
            raise BlurgenError(f"{option} needs the field '{name}', which these shards do not have "
                               f"(fields: {', '.join(dataset.fields)})")
        return np.asarray(dataset.column(name))

    if selection.splits:
        unknown = sorted(set(selection.splits) - set(splits.tolist()))
        if unknown:
            raise BlurgenError(f"--split {unknown[0]}: the folder has no such split "
                               f"(splits: {', '.join(sorted(set(splits.tolist())))})")
        keep &= np.isin(splits, selection.splits)
    if selection.roles:  # the rows of `shards stats`: query, database, and distractor for that split
        roles = [table_role(r, s) for r, s in zip(column("role", "--role"), splits.tolist())]
        keep &= np.isin(roles, selection.roles)
    needs_levels = selection.levels or selection.balance_levels
    levels = column("blur_level", "--levels/--balance-levels").astype(np.int64) if needs_levels else None
    if selection.levels:
        keep &= np.isin(levels, selection.levels)
    keys = sample_keys(selection.seed, dataset.column("sample_id"))
    chosen = np.flatnonzero(keep)
    if selection.per_trajectory is not None:
        chosen = _per_trajectory(chosen, column("trajectory_id", "--per-trajectory"), keys,
                                 levels if selection.balance_levels else None, selection.per_trajectory,
                                 selection.seed)
    if selection.balance_levels:
        chosen = _balance(chosen, levels, keys)
    if selection.max_samples is not None and len(chosen) > selection.max_samples:
        chosen = chosen[np.argsort(keys[chosen], kind="stable")[:selection.max_samples]]
    return np.sort(chosen)


def _per_trajectory(chosen: np.ndarray, trajectories: np.ndarray, keys: np.ndarray, levels: np.ndarray | None,
                    n: int, seed: int) -> np.ndarray:
    """At most ``n`` samples per trajectory. Without levels: the ``n`` of lowest key. With
    levels (balancing asked): trajectories in key order, each giving the samples whose level has
    been picked least so far (ties by key), so the picks spread over the levels."""
    groups: dict[int, list[int]] = defaultdict(list)
    for i in chosen[np.argsort(keys[chosen], kind="stable")].tolist():
        groups[int(trajectories[i])].append(i)
    if levels is None:
        return np.array(sorted(i for members in groups.values() for i in members[:n]), dtype=np.int64)
    order = sorted(groups, key=lambda t: sample_keys(seed, [f"trajectory-{t}"])[0])
    picked: Counter = Counter()
    out = []
    for t in order:
        members = list(groups[t])  # already in key order
        for _ in range(min(n, len(members))):
            best = min(members, key=lambda i: picked[int(levels[i])])  # min keeps the first (lowest key) on ties
            members.remove(best)
            picked[int(levels[best])] += 1
            out.append(best)
    return np.array(sorted(out), dtype=np.int64)


def _balance(chosen: np.ndarray, levels: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Every level present keeps as many samples as the rarest one: those of lowest key."""
    if len(chosen) == 0:
        return chosen
    present, counts = np.unique(levels[chosen], return_counts=True)
    cap = int(counts.min())
    kept = [members[np.argsort(keys[members], kind="stable")[:cap]]
            for members in (chosen[levels[chosen] == lv] for lv in present)]
    return np.sort(np.concatenate(kept))


def subset(source: str | Path, out: str | Path, selection: Selection, *, progress: bool = True) -> dict[str, Any]:
    """Write the samples of ``source`` that ``selection`` keeps to the new folder ``out``;
    returns the subset record (also written as ``out/subset.json``)."""
    folder = shard_folder(source)
    out = new_output_folder(out, "subset")
    manifest = read_manifest(folder)
    if manifest is None:
        raise BlurgenError(f"{folder} has no {MANIFEST_NAME}: create it with: blurgen shards index {folder}")
    # as publish does: a damaged source would be copied into shards whose new checksums hide it
    require_verified(folder, "nothing written", desc="verify source", progress=progress)
    dataset = ShardDataset(folder)
    splits = np.repeat([e["split"] for e in manifest["shards"]], [int(e["samples"]) for e in manifest["shards"]])
    chosen = select(dataset, splits.tolist(), selection)
    if len(chosen) == 0:
        raise BlurgenError(f"the selection keeps no sample of {folder}: loosen --split/--role/--levels")
    record: dict[str, Any] = {
        "format": SUBSET_FORMAT,
        "source": {"folder": str(folder.resolve()), "manifest_sha256": sha256_file(folder / MANIFEST_NAME),
                   "samples": len(dataset)},
        "selection": selection.to_dict(),
        "samples": int(len(chosen)),
        "shards": {},
    }
    with staged_folder(out) as staging, tqdm(total=len(chosen), unit="sample", desc="subset",
                                             disable=not progress or None, leave=False) as bar:
        for split in dict.fromkeys(splits[chosen].tolist()):
            members = chosen[splits[chosen] == split]
            entry = _write_split(dataset, staging, split, members, bar.update)
            record["shards"][entry["file"]] = _origin(dataset, members, manifest)
        atomic_write_text(staging / SUBSET_RECORD, json.dumps(record, indent=2) + "\n")
    return record


def _write_split(dataset: ShardDataset, out: Path, split: str, members: np.ndarray,
                 advance: Any) -> dict[str, Any]:
    path, _ = dataset.locate(int(members[0]))
    with open_shard(path) as f:
        attrs = root_attrs(path, f)
    config = json.loads(attrs.get("config") or "{}")
    output = config.get("output", {}) if isinstance(config, dict) else {}
    with ShardWriter(out, schema=attrs["schema"], split=split, task_index=0, num_tasks=1,
                     seed=int(attrs.get("seed", 0)), config_json=attrs.get("config") or "{}",
                     compression=output.get("compression", "gzip"),
                     compression_level=output.get("compression_level")) as writer:
        for i in members.tolist():
            writer.add(dataset[i])
            advance(1)
        return writer.close(stats={"samples": int(len(members)), "subset": SUBSET_RECORD})


def _origin(dataset: ShardDataset, members: np.ndarray, manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """Where one new shard's samples came from: per source shard, its sha256 (the manifest's,
    which :func:`subset` has just checked against the bytes) and the ranges ``[start, stop)`` of
    local indices taken, in order."""
    sha = {e["file"]: e["sha256"] for e in manifest["shards"]}
    runs: dict[str, list[list[int]]] = {}
    for i in members.tolist():
        path, local = dataset.locate(i)
        ranges = runs.setdefault(Path(path).name, [])
        if ranges and ranges[-1][1] == local:
            ranges[-1][1] = local + 1
        else:
            ranges.append([local, local + 1])
    return [{"file": name, "sha256": sha.get(name), "ranges": ranges} for name, ranges in runs.items()]
