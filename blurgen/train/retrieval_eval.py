"""``blurgen evaluate retrieval``: the blur-retrieval paper's test protocol (§5) and its report.

Protocol (paper §5, "Evaluation"; definitions in docs/train.md):

- queries: the images of the ``test`` split of DATA whose role is ``query``;
- database: the ``test`` images whose role is ``database``, then (when given) every image of the
  ``distractor`` split of the distractor folder (``blurgen render --preset paper-distractor``),
  in shard order: the order that breaks similarity ties (retrieval_metrics);
- positives of a query: the database images of its object (equal ``object_id``); distractor
  objects must differ from every test object, or a distractor would count as a positive;
- metrics (:mod:`blurgen.train.retrieval_metrics`): mAP@all and mAP@k (k = 100 in the paper)
  overall and per query blur level, the queries without positives counted, and Table 4 (the
  database restricted to one blur level), with range and std, for the paper's metric of the
  setting: mAP@k with distractors (§5; the paper's Table 4 and supplementary Fig. 7), mAP@all
  without them (supplementary Table 7).

The report folder (:mod:`blurgen.train.report`, built whole then renamed): ``report.json`` (every
number, the resolved config, the checkpoint and inputs, the blurgen version), ``report.md`` (the
paper's Table 2 and Table 4 layouts), ``descriptors.h5`` (both sides' descriptors and labels, to
re-score) and ``retrievals.png`` (Fig. 4: one query per blur level with its top 5).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from blurgen.config import build
from blurgen.errors import BlurgenError
from blurgen.shards import ShardDataset
from blurgen.train.checkpoint import load_checkpoint, load_weights
from blurgen.train.distributed import resolve_device
from blurgen.train.report import (markdown_table, percent, provenance, refuse_existing, staged_folder,
                                  write_h5_groups, write_json)
from blurgen.train.retrieval import TASK, RetrievalConfig, build_bridge, describe_images, render_split_files
from blurgen.train.retrieval_metrics import (LevelTable, MapSummary, per_database_level_table,
                                             query_average_precisions, summarise, top_k)
from blurgen.train.retrieval_model import Bridge
from blurgen.viz.retrieval_sheet import QueryRow, Result, retrieval_sheet
from blurgen.viz.sheet import write_png

TEST_SPLIT, DISTRACTOR_SPLIT = "test", "distractor"
QUERY, DATABASE = "query", "database"
SHOWN = 5  # results per query in retrievals.png (the paper's Fig. 4 shows the top 5)
DESCRIBE_WORKERS = 2  # decoding processes while describing (the GPU, if any, then waits less)
# the label columns saved beside the descriptors (describe_images always gives the first five)
SAVED_COLUMNS = ("sample_id", "object_id", "blur_level", "role", "split", "trajectory_id", "window_count")


@dataclass(frozen=True)
class RetrievalReport:
    """What ``evaluate_retrieval`` measured (all of it is also in ``folder/report.json``)."""

    folder: Path
    k: int
    map_all: MapSummary
    map_at_k: MapSummary
    table: LevelTable  # Table 4: mAP@all, or mAP@table_k with distractors
    num_queries: int
    num_database: int  # test database images + distractors
    num_distractors: int
    table_k: int | None = None  # the table's cut-off (None: mAP@all)

    @property
    def table_metric(self) -> str:
        """The table's metric as report.json names it: ``map_all`` or ``map_at_<k>``."""
        return "map_all" if self.table_k is None else f"map_at_{self.table_k}"

    def describe(self) -> str:
        """A few lines for the terminal: the headline numbers and where the report is."""
        levels = ", ".join(f"L{level} {percent(v)}" for level, v in sorted(self.map_all.per_level.items()))
        return (f"mAP@all {percent(self.map_all.map)}, mAP@{self.k} {percent(self.map_at_k.map)} (x 100) over "
                f"{self.map_all.num_queries} queries ({self.map_all.num_without_positives} without a positive, "
                f"left out); {self.num_database} database images ({self.num_distractors} distractors)\n"
                f"mAP@all per query blur level: {levels or 'none'}\n"
                f"report: {self.folder}")


@dataclass
class _Images:
    """Descriptors of a set of images in shard order, their label columns, and where each image is
    (``source``: which file list, ``position``: index in it) to fetch pixels for the picture."""

    descriptors: torch.Tensor
    columns: dict[str, np.ndarray]
    source: np.ndarray
    position: np.ndarray

    def take(self, rows: np.ndarray | list[int]) -> _Images:
        rows = np.asarray(rows, dtype=np.int64)
        return _Images(self.descriptors[torch.from_numpy(rows)], {k: v[rows] for k, v in self.columns.items()},
                       self.source[rows], self.position[rows])

    def select(self, mask: np.ndarray) -> _Images:
        return self.take(np.flatnonzero(mask))

    @staticmethod
    def concat(parts: list[_Images]) -> _Images:
        return _Images(torch.cat([p.descriptors for p in parts]),
                       {k: np.concatenate([p.columns[k] for p in parts]) for k in parts[0].columns},
                       np.concatenate([p.source for p in parts]), np.concatenate([p.position for p in parts]))

    def __len__(self) -> int:
        return len(self.source)


def evaluate_retrieval(checkpoint: str | Path, data: str | Path, out: str | Path, *,
                       distractors: str | Path | None = None, device: str = "auto", k: int = 100,
                       batch_size: int = 64, progress: bool = True) -> RetrievalReport:
    """Score a retrieval checkpoint on DATA's test split (plus distractors) and write the report
    folder ``out``; every bad input is one :class:`BlurgenError` line, before any work."""
    if k < 1:
        raise BlurgenError(f"k must be at least 1, not {k}")
    refuse_existing(out)  # early: never compute for minutes and then refuse
    state = load_checkpoint(Path(checkpoint), TASK)
    config = checkpoint_config(state)
    test_files = _render_split(data, TEST_SPLIT, "its query and database images")
    distractor_files = (_render_split(distractors, DISTRACTOR_SPLIT, "the distractor images")
                        if distractors is not None else [])
    _check_roles(data, test_files)
    if distractor_files:
        _check_disjoint(data, test_files, distractors, distractor_files)

    dev = resolve_device(device)
    sources = [test_files, distractor_files]
    images = _describe(load_bridge(state, config).to(dev), sources, config, dev, batch_size, progress)
    queries = images.select((images.source == 0) & (images.columns["role"] == QUERY))
    database = images.select((images.source == 1) | (images.columns["role"] == DATABASE))
    # object identities as integer labels, shared by both sides
    _, codes = np.unique(np.concatenate([queries.columns["object_id"], database.columns["object_id"]]),
                         return_inverse=True)
    q_labels, db_labels = codes[:len(queries)], codes[len(queries):]
    q_levels = queries.columns["blur_level"].astype(np.int64)
    db_levels = database.columns["blur_level"].astype(np.int64)

    ap_all = query_average_precisions(queries.descriptors, database.descriptors, q_labels, db_labels, device=dev)
    ap_k = query_average_precisions(queries.descriptors, database.descriptors, q_labels, db_labels, k=k, device=dev)
    # the paper's metric (§5): mAP@k (100) whenever distractors are in the database, per database
    # level too (its Table 4, supplementary §8.2 and Fig. 7); mAP@all without (supplementary Table 7)
    table_k = k if distractor_files else None
    report = RetrievalReport(
        folder=Path(out), k=k, map_all=summarise(ap_all, q_levels), map_at_k=summarise(ap_k, q_levels),
        table=per_database_level_table(queries.descriptors, database.descriptors, q_labels, db_labels, q_levels,
                                       db_levels, k=table_k, device=dev), table_k=table_k,
        num_queries=len(queries), num_database=len(database), num_distractors=int((database.source == 1).sum()))
    shown = _shown_queries(ap_all, q_levels)
    sims, ranked = top_k(queries.descriptors[torch.as_tensor(shown, dtype=torch.int64)], database.descriptors,
                         SHOWN, device=dev)
    retrievals = [{"query": queries.columns["sample_id"][q], "blur_level": int(q_levels[q]),
                   "results": [{"sample_id": database.columns["sample_id"][j],
                                "object_id": database.columns["object_id"][j],
                                "blur_level": int(db_levels[j]), "similarity": float(s),
                                "positive": bool(db_labels[j] == q_labels[q])}
                               for s, j in zip(sims[row].tolist(), ranked[row].tolist())]}
                  for row, q in enumerate(shown)]
    payload = {
        "task": TASK, **provenance(state["config"], checkpoint=checkpoint, data=data, distractors=distractors),
        "checkpoint_epoch": state.get("epoch"), "checkpoint_global_step": state.get("global_step"),
        "device": dev.type, "k": k,
        "counts": {"queries": len(queries), "database": len(database), "distractors": report.num_distractors,
                   "test_database": len(database) - report.num_distractors, "objects": int(codes.max(initial=-1) + 1),
                   "query_levels": _histogram(q_levels), "database_levels": _histogram(db_levels)},
        "map_all": report.map_all, "map_at_k": report.map_at_k,
        "per_database_level": {"metric": report.table_metric, "k": table_k, **dataclasses.asdict(report.table)},
        "retrievals": retrievals,
    }
    with staged_folder(out) as folder:
        write_json(folder / "report.json", payload)
        (folder / "report.md").write_text(_markdown(payload, report), encoding="utf-8")
        write_h5_groups(folder / "descriptors.h5", {
            QUERY: {"descriptor": queries.descriptors.numpy(), **_saved(queries), "ap_all": ap_all, "ap_at_k": ap_k},
            DATABASE: {"descriptor": database.descriptors.numpy(), **_saved(database)}},
            attrs={"task": TASK, "k": k, "checkpoint": payload["checkpoint"],
                   "blurgen_version": payload["blurgen_version"],
                   "similarity": "dot product of the L2-normalised descriptors; ties rank the lower database "
                                 "row first",
                   "positives": "database rows whose object_id equals the query's"})
        write_png(folder / "retrievals.png", _picture(retrievals, queries.take(shown), ranked, database, sources))
    return report


def checkpoint_config(state: dict[str, Any]) -> RetrievalConfig:
    """The run's resolved config from a checkpoint, with ``backbone_weights`` dropped: the
    checkpoint holds every weight, so evaluation never needs (or reads) the user's start file."""
    config = build(RetrievalConfig, json.loads(state["config"]))
    return dataclasses.replace(config, model=dataclasses.replace(config.model, backbone_weights=None))


def load_bridge(state: dict[str, Any], config: RetrievalConfig) -> Bridge:
    """BRIDGE with the checkpoint's weights (the ``bridge.`` part of RetrievalModule's state)."""
    weights = {key[len("bridge."):]: value for key, value in state["model"].items() if key.startswith("bridge.")}
    return load_weights(build_bridge(config), weights)


def _render_split(folder: str | Path, split: str, purpose: str) -> list[str]:
    """The render shards of ``split`` in ``folder``; a missing split is one line naming ``purpose``."""
    try:
        return render_split_files(folder, split)
    except BlurgenError as exc:
        raise BlurgenError(f"retrieval evaluation needs {purpose} ('{split}' shards): {exc}") from None


def _column(files: list[str], name: str) -> np.ndarray:
    return np.asarray(ShardDataset(files, fields=()).column(name)).astype(str)


def _check_roles(data: str | Path, files: list[str]) -> None:
    roles = _column(files, "role")
    n_query, n_database = int((roles == QUERY).sum()), int((roles == DATABASE).sum())
    if not n_query or not n_database:
        raise BlurgenError(f"{data}: the test split has {n_query} query and {n_database} database images; "
                           "retrieval evaluation needs both (a blurgen render retrieval job's test split)")


def _check_disjoint(data: str | Path, test_files: list[str], distractors: str | Path,
                    distractor_files: list[str]) -> None:
    shared = sorted(set(_column(test_files, "object_id").tolist())
                    & set(_column(distractor_files, "object_id").tolist()))
    if shared:
        raise BlurgenError(f"{distractors} shares {len(shared)} object(s) with the test split of {data} (e.g. "
                           f"{shared[0]}); distractors must be other objects: render them with the same seed and "
                           "object manifest and --preset paper-distractor")


def _describe(bridge: Bridge, sources: list[list[str]], config: RetrievalConfig, device: torch.device,
              batch_size: int, progress: bool) -> _Images:
    """Descriptors of every image of every source (one loader per source, decoded by worker
    processes: a million distractors are decode-bound); the progress bar advances per batch."""
    from tqdm import tqdm

    counts = [sum(ShardDataset(files, fields=()).counts) if files else 0 for files in sources]
    parts = []
    with tqdm(total=sum(counts), desc="describing", unit="img", disable=not progress or None) as bar:
        for s, (files, size) in enumerate(zip(sources, counts)):
            if not size:
                continue
            descriptors, columns = describe_images(bridge, files, config, device, batch_size=batch_size,
                                                   workers=DESCRIBE_WORKERS, extra_fields=("role", "split"),
                                                   on_batch=bar.update)
            columns = {name: np.asarray(columns[name]) for name in SAVED_COLUMNS}
            parts.append(_Images(descriptors.cpu(), columns, np.full(size, s), np.arange(size)))
    return _Images.concat(parts)


def _shown_queries(ap_all: np.ndarray, levels: np.ndarray) -> list[int]:
    """The queries of the picture: per query blur level present, the first query (in shard order)
    that has a positive in the database, so the choice depends on the data only, never on the model."""
    has = ~np.isnan(ap_all)
    return [int(np.flatnonzero(has & (levels == level))[0]) for level in np.unique(levels[has]).tolist()]


def _picture(retrievals: list[dict], shown: _Images, ranked: torch.Tensor, database: _Images,
             sources: list[list[str]]) -> np.ndarray:
    """retrievals.png: the shown queries (one per level) and their top results, pixels read back
    from the shards (only these few images are decoded)."""
    readers = [ShardDataset(files, fields=("image",)) if files else None for files in sources]

    def pixels(images: _Images, i: int) -> np.ndarray:
        return readers[int(images.source[i])][int(images.position[i])]["image"]

    def result(rank: int, j: int, r: dict) -> Result:
        return Result(pixels(database, j), r["positive"], (f"#{rank} L{r['blur_level']}", f"{r['similarity']:.3f}"))

    rows = [QueryRow(pixels(shown, row), ("query", f"L{entry['blur_level']}"),
                     [result(rank, j, r) for rank, (j, r) in enumerate(zip(ranking, entry["results"]), start=1)])
            for row, (entry, ranking) in enumerate(zip(retrievals, ranked.tolist()))]
    if not rows:  # no query has a positive: still a picture, so the report always has one
        return np.zeros((8, 8, 3), np.uint8)
    return retrieval_sheet(rows, top=SHOWN)


def _saved(images: _Images) -> dict[str, np.ndarray]:
    return {name: images.columns[name] for name in SAVED_COLUMNS}


def _histogram(levels: np.ndarray) -> dict[int, int]:
    values, counts = np.unique(levels, return_counts=True)
    return {int(v): int(c) for v, c in zip(values, counts)}


def _markdown(payload: dict[str, Any], report: RetrievalReport) -> str:
    counts, k, table = payload["counts"], report.k, report.table
    map_all, map_k = report.map_all, report.map_at_k
    table_name = "mAP@all" if report.table_k is None else f"mAP@{report.table_k}"
    levels = sorted(map_all.per_level)
    lines = [
        "# Retrieval evaluation", "",
        f"- checkpoint: `{payload['checkpoint']}` (epoch {payload['checkpoint_epoch']})",
        f"- data: `{payload['data']}`; distractors: " + (f"`{payload['distractors']}`" if payload["distractors"]
                                                           else "none"),
        f"- {counts['queries']} queries ({map_all.num_without_positives} without a positive, left out of the "
        f"means), {counts['database']} database images ({counts['test_database']} test + {counts['distractors']} "
        f"distractors), {counts['objects']} objects; blurgen {payload['blurgen_version']}, device {payload['device']}",
        "- values are mAP x 100; `–`: no query with a positive there. Definitions: docs/train.md.", "",
        "## mAP per query blur level (the paper's Table 2 layout)", "",
        markdown_table(["", *[f"L{v}" for v in levels], "all"], [
            ["mAP@all", *[percent(map_all.per_level[v]) for v in levels], percent(map_all.map)],
            [f"mAP@{k}", *[percent(map_k.per_level[v]) for v in levels], percent(map_k.map)],
            ["queries", *[map_all.per_level_queries[v] for v in levels], map_all.num_queries]]),
        f"## {table_name} with the database restricted to one blur level (the paper's Table 4 layout)", "",
        "Rows: database blur level; columns: query blur level; all: every query against that database; "
        "range and std (population) over each row's cells.", "",
        markdown_table(["database \\ query", *[f"L{v}" for v in table.query_levels], "all", "range", "std"], [
            [f"L{d}", *[percent(c) for c in table.cells[r]], percent(table.all_queries[r]),
             percent(table.row_range[r]), percent(table.row_std[r])]
            for r, d in enumerate(table.database_levels)]),
        f"Over all cells: range {percent(table.range)}, std {percent(table.std)}.", "",
    ]
    return "\n".join(lines)
