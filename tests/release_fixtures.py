"""Small render-schema jobs for the publish, subset and stats tests, written by the real
``ShardWriter`` with fabricated (but schema-valid) samples, so every count is known by
construction: a retrieval set (train, val, test with query and database roles) and a disjoint
distractor set, each with an asset manifest that records licences and attributions.

Counting helpers read the shards with plain h5py, independently of blurgen's readers.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any, Iterable

import h5py
import numpy as np

from blurgen.shards import ShardWriter, get_schema
from blurgen.shards.schema import STR

H, W = 16, 20
CATEGORY = "02691156"


def asset_manifest(path: Path, ids: Iterable[str], licenses: dict[str, str], attribution: str | None) -> Path:
    """A Kubric-style manifest of ``ids``; ``licenses`` maps some ids to a licence (others: CC0-1.0)."""
    assets = {i: {"category": CATEGORY, "path": f"{i}.obj", "license": licenses.get(i, "CC0-1.0"),
                  "metadata": {"attribution": attribution} if attribution else {}} for i in ids}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"name": path.stem, "version": "1.0", "data_dir": ".", "assets": assets},
                               indent=2, sort_keys=True))
    return path


def schema_sample(schema: str, i: int, values: dict[str, Any]) -> dict[str, Any]:
    """A sample of ``schema``: ``values``, and for every other required field of the declaration
    a deterministic filler of its dtype and shape (so the fixtures follow the declarations as
    they grow; these tests count labels, they do not look at pixels)."""
    rng = np.random.default_rng(i)
    sample = dict(values)
    for f in get_schema(schema).fields:
        if f.optional or f.name in sample:
            continue
        shape = tuple({"H": H, "W": W}.get(d, d) for d in f.shape)
        if f.dtype == STR:
            sample[f.name] = ""
        elif f.dtype == "uint8":
            sample[f.name] = rng.integers(0, 256, shape, dtype=np.uint8)
        else:
            sample[f.name] = np.zeros(shape, f.dtype)
    return sample


def render_sample(i: int, *, split: str, role: str, trajectory: int, obj: str, level: int, prefix: str) -> dict:
    rng = np.random.default_rng(i)
    return schema_sample("blurgen.render/1", i, {
        "alpha": rng.random((H, W), dtype=np.float32),
        "blur_severity": np.float32((level - 0.5) / 10),
        "blur_level": np.int8(level),
        "bbox": np.array([1, 2, 10 + i % 5, 12], np.int32),
        "sample_id": f"{prefix}-t{trajectory}-{i:04d}",
        "window_count": np.int16(level),
        "trajectory_id": np.int64(trajectory), "object_id": obj, "category": CATEGORY,
        "background_id": f"bg{i % 3}", "split": split, "role": role,
        "pose_start": np.eye(4), "pose_end": np.eye(4), "intrinsics": np.eye(3),
    })


COMPOSITE_TYPES = ("straight", "curved", "random_walk", "rolling", "edge_ring", "zoom_rotation")


def composite_sample(i: int, split: str) -> dict:
    """Sample ``i``: 0-2 blurred instances of known types and coverages, mode and stage by ``i``."""
    coverages = ["sharp", "full", "partial"][: i % 3 + 1]
    instances = [{"name": f"m{k}", "coverage": c} | ({"params": {"type": COMPOSITE_TYPES[(i + k) % 6]}}
                                                      if c != "sharp" else {}) for k, c in enumerate(coverages)]
    types = sorted({inst["params"]["type"] for inst in instances if "params" in inst})
    return schema_sample("blurgen.composite/1", i, {
        "sample_id": f"composite-{i:04d}", "split": split, "mode": "mask" if i % 4 == 0 else "image",
        "stage": ("stabilization", "mixed", "advanced")[i % 3], "blurred": np.bool_(bool(types)),
        "blur_types": ",".join(types), "instances": json.dumps(instances), "photometric": "{}"})


def flowpairs_sample(i: int, split: str) -> dict:
    return schema_sample("blurgen.flowpairs/1", i, {
        "sample_id": f"flowpairs-{i:04d}", "split": split, "source": f"video-{i % 4}.mp4",
        "frames": np.int16(5 + 2 * (i % 3)), "flow_source": "exact" if i % 5 == 0 else "dis-medium",
        "fps": np.float32(240.0)})


def write_simple_job(folder: Path, schema: str, make: Any, splits: dict[str, range]) -> Path:
    """One shard per split of ``make(i, split)`` samples, config and stats as a one-task job's."""
    config = {"seed": 0, "mode": "video", "flow": {"estimator": "dis-medium"}, "blur": {"intensity_max_px": 40.0},
              "sources": {"images": "photos"}}
    for split, ids in splits.items():
        with ShardWriter(folder, schema=schema, split=split, task_index=0, num_tasks=1, seed=0,
                         config_json=json.dumps(config)) as writer:
            for i in ids:
                writer.add(make(i, split))
            writer.close(stats={"samples": len(ids), "skipped_sources": {"unreadable": 1}})
    return folder


def retrieval_plan() -> list[dict[str, Any]]:
    """(split, role, trajectory, object, level) of every image of the retrieval set, in order."""
    rows = []
    i = 0
    objects = {"train": ["o0", "o1"], "val": ["o2"], "test": ["o3", "o4"]}
    trajectory = 0
    for split, objs in objects.items():
        for obj in objs:
            for t in range(3):
                for k in range(3):
                    role = "" if split != "test" else ("query" if t == 0 else "database")
                    rows.append(dict(i=i, split=split, role=role, trajectory=trajectory, obj=obj,
                                     level=(i * 7) % 6 + 1))
                    i += 1
                trajectory += 1
    return rows


def distractor_plan() -> list[dict[str, Any]]:
    return [dict(i=1000 + n, split="distractor", role="", trajectory=2 ** 40 + n // 3, obj=f"d{n // 6}",
                 level=(n * 5) % 6 + 1) for n in range(12)]


def write_job(folder: Path, plan: list[dict[str, Any]], *, prefix: str, objects_manifest: Path | None,
              tasks: dict[str, int], num_tasks: int, dropped: dict[int, dict[str, int]], spp: int = 16,
              size: tuple[int, int] = (H, W)) -> Path:
    """Write ``plan`` as shards: split -> the task that writes it (``tasks``); each task stores
    its ``dropped`` counts in every shard it writes, as blurgen's jobs do."""
    config = {"assets": {"objects": str(objects_manifest) if objects_manifest else None, "backgrounds": None},
              "cycles": {"samples": spp}, "seed": 0, "output": {"compression": "gzip", "compression_level": None}}
    for split in dict.fromkeys(r["split"] for r in plan):
        task = tasks[split]
        with ShardWriter(folder, schema="blurgen.render/1", split=split, task_index=task, num_tasks=num_tasks,
                         seed=0, config_json=json.dumps(config, sort_keys=True)) as writer:
            for r in plan:
                if r["split"] == split:
                    sample = render_sample(r["i"], split=split, role=r["role"], trajectory=r["trajectory"],
                                           obj=r["obj"], level=r["level"], prefix=prefix)
                    if size != (H, W):
                        sample["image"] = np.zeros((*size, 3), np.uint8)
                        sample["alpha"] = np.zeros(size, np.float32)
                    writer.add(sample)
            writer.close(stats={"sources": 1, "samples": 1, "dropped": dropped.get(task, {}), "skipped_items": {}})
    return folder


# Task 0 writes train and val (its stats stand in both shards), task 1 writes test.
RETRIEVAL_DROPPED = {0: {"small": 2, "appearance_change": 1}, 1: {"small": 3}}
DISTRACTOR_DROPPED = {0: {"small": 4}}


def make_release_inputs(root: Path) -> tuple[Path, Path]:
    """A retrieval set and its distractor set under ``root``; returns their folders."""
    used = sorted({r["obj"] for r in retrieval_plan()})
    objects = asset_manifest(root / "assets" / "objects.json", [*used, "unused"], {"o0": "CC-BY-4.0"},
                             "Jane Doe, objects collection")
    retrieval = write_job(root / "retrieval", retrieval_plan(), prefix="render-s0", objects_manifest=objects,
                          tasks={"train": 0, "val": 0, "test": 1}, num_tasks=2, dropped=RETRIEVAL_DROPPED)
    distractors = write_job(root / "distractors", distractor_plan(), prefix="render-s0-d",
                            objects_manifest=objects, tasks={"distractor": 0}, num_tasks=1,
                            dropped=DISTRACTOR_DROPPED)
    return retrieval, distractors


# ---------------------------------------------------------------- independent counting

def read_columns(folder: Path, names: Iterable[str]) -> dict[str, list]:
    """Columns of every ``*.h5`` in ``folder``, concatenated in file-name order, with plain h5py."""
    out: dict[str, list] = {n: [] for n in names}
    for path in sorted(folder.glob("*.h5")):
        with h5py.File(path, "r") as f:
            for n in out:
                values = f[n][()]
                out[n] += [v.decode() if isinstance(v, bytes) else v.item() for v in values]
    return out


def level_counts(rows: Iterable[str], levels: Iterable[int]) -> dict[str, Counter]:
    counts: dict[str, Counter] = {}
    for row, level in zip(rows, levels):
        counts.setdefault(row, Counter())[int(level)] += 1
    return counts


def markdown_tables(text: str) -> dict[str, list[list[str]]]:
    """Every table of a Markdown text under the heading just above it: heading -> rows of cells
    (header first, the separator line left out)."""
    tables: dict[str, list[list[str]]] = {}
    heading = ""
    for line in text.splitlines():
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
        elif line.startswith("|") and not re.fullmatch(r"\|[\s\-:|]+\|", line):
            tables.setdefault(heading, []).append([c.strip() for c in line.strip("|").split("|")])
    return tables
