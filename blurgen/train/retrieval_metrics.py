"""Retrieval metrics of the blur-retrieval paper (§5): AP, mAP@all, mAP@k, per query blur level,
and the per-database-blur-level table (Table 4), over an exact nearest-neighbour search.

Definitions (docs/train.md states them for the report):

- Ranking: database items sorted by decreasing similarity to the query, similarity = dot product
  of the descriptors (= cosine similarity, descriptors being L2-normalised); equal similarities
  keep database order (a stable sort: the lower database index ranks first).
- AP of a query with P ≥ 1 positives at 1-based ranks r_1 < ... < r_P:
      AP@all = (1/P) Σ_i i / r_i              (mean over the positives of precision at their rank)
      AP@k   = (1/min(P, k)) Σ_{i: r_i ≤ k} i / r_i
  `normalise="retrieved"` divides AP@k by #{i: r_i ≤ k} instead (0 when none is retrieved), the
  convention of the authors' public code, for comparison with the paper's mAP@100.
- A query with no positive in the database has no AP: it is left out of every mean and counted.
- mAP = mean AP over the queries that have one; per query blur level: the same over the queries
  of that level.
- Table 4: rows = database blur level (database restricted to that level), columns = query blur
  level, plus "all" (every query against that restricted database). range = max - min and
  std = population standard deviation (ddof = 0) over the level × level cells: this reproduces the
  paper's Table 4 figures (DELG: range 57.79, std 16.75) from its cells.

Search: exact, in blocks on a torch device, memory-bounded. mAP@k keeps a running top-k per query
over database blocks (memory: query_block × (k + database_block)); mAP@all ranks whole rows for a
block of queries at a time, the block sized so that the rows fit in `memory_bytes`. Neither
materialises the Q × D similarity matrix, so a million distractors fit.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch

Normalise = Literal["min", "retrieved"]

#: bytes per similarity-matrix cell while ranking whole rows: the float32 similarity, the int64
#: sort order and its values, the bool relevance and its int32 running count (rounded up)
_BYTES_PER_CELL = 32


@dataclass(frozen=True)
class MapSummary:
    """mAP over a set of queries, overall and per query blur level (values in [0, 1])."""

    map: float  # NaN when no query has a positive
    num_queries: int  # queries with at least one positive: those averaged
    num_without_positives: int  # queries left out because the database holds none of theirs
    per_level: dict[int, float] = field(default_factory=dict)  # query blur level -> mAP
    per_level_queries: dict[int, int] = field(default_factory=dict)  # level -> queries averaged


@dataclass(frozen=True)
class LevelTable:
    """Table 4: mAP with the database restricted to one blur level (rows) per query level (columns)."""

    database_levels: list[int]
    query_levels: list[int]
    cells: np.ndarray  # (len(database_levels), len(query_levels)); NaN where no query has a positive
    all_queries: np.ndarray  # (len(database_levels),): every query against the restricted database
    range: float  # max - min over the cells (NaN cells ignored)
    std: float  # population std over the cells
    row_range: np.ndarray  # the same per database level
    row_std: np.ndarray


def average_precision(
    relevance: np.ndarray | list[bool], num_positives: int | None = None, k: int | None = None,
    normalise: Normalise = "min",
) -> float:
    """AP of one query from the relevance of its ranked database (best first).

    `num_positives`: positives in the whole database (default: those in `relevance`, i.e. the
    list is the full ranking). `k`: AP@k, only the first k ranks count. Raises ValueError for a
    query without positives (it has no AP; callers leave it out and count it).
    """
    row = torch.as_tensor(np.asarray(relevance, dtype=bool)).view(1, -1)
    positives = int(row.sum()) if num_positives is None else num_positives
    if positives <= 0:
        raise ValueError("a query without positives has no average precision")
    return float(_ap_rows(row, torch.tensor([positives]), k, normalise)[0])


def _ap_rows(relevance: torch.Tensor, positives: torch.Tensor, k: int | None, normalise: Normalise) -> torch.Tensor:
    """AP per row of a (q, n) ranked relevance matrix (float64, NaN for rows without positives)."""
    _check_k(k)
    if k is not None:
        relevance = relevance[:, :k]
    hits = relevance.cumsum(dim=1, dtype=torch.int32)  # i: how many positives up to this rank
    ranks = torch.arange(1, relevance.shape[1] + 1, device=relevance.device, dtype=torch.float64)
    precision_sum = torch.where(relevance, hits / ranks, 0.0).sum(dim=1)
    positives = positives.to(device=relevance.device, dtype=torch.float64)
    if k is None:
        denominator = positives
    elif normalise == "min":
        denominator = positives.clamp(max=k)
    elif normalise == "retrieved":
        denominator = relevance.sum(dim=1).to(torch.float64).clamp(min=1)  # none retrieved: AP 0
    else:
        raise ValueError(f"normalise must be 'min' or 'retrieved', not {normalise!r}")
    return torch.where(positives > 0, precision_sum / denominator.clamp(min=1), float("nan"))


def _check_k(k: int | None) -> None:
    if k is not None and k < 1:
        raise ValueError(f"k must be at least 1, not {k}")


def top_k(
    queries: torch.Tensor, database: torch.Tensor, k: int, *, query_block: int = 1024,
    database_block: int = 65536, device: torch.device | str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact k nearest neighbours by dot product, blockwise: (similarities, indices), each (Q, k').

    k' = min(k, D). Rows are sorted best first, ties by database index. Results are on the CPU.
    """
    _check_k(k)
    device = torch.device(device) if device is not None else queries.device
    k = min(k, database.shape[0])
    out_sims, out_idx = [], []
    for q0 in range(0, queries.shape[0], query_block):
        q = queries[q0:q0 + query_block].to(device, torch.float32)
        best_sims = torch.empty(q.shape[0], 0, device=device)
        best_idx = torch.empty(q.shape[0], 0, dtype=torch.int64, device=device)
        for d0 in range(0, database.shape[0], database_block):
            block = database[d0:d0 + database_block].to(device, torch.float32)
            sims = torch.cat([best_sims, q @ block.T], dim=1)
            idx = torch.arange(d0, d0 + block.shape[0], device=device).expand(q.shape[0], -1)
            idx = torch.cat([best_idx, idx], dim=1)
            # the kept best come from earlier blocks (lower indices) and sit first, so a stable
            # sort keeps ties in database order; topk would not
            order = torch.sort(sims, dim=1, descending=True, stable=True).indices[:, :k]
            best_sims, best_idx = sims.gather(1, order), idx.gather(1, order)
        out_sims.append(best_sims.cpu())
        out_idx.append(best_idx.cpu())
    return torch.cat(out_sims), torch.cat(out_idx)


def query_average_precisions(
    queries: torch.Tensor, database: torch.Tensor, query_labels: np.ndarray | torch.Tensor,
    database_labels: np.ndarray | torch.Tensor, *, k: int | None = None, normalise: Normalise = "min",
    device: torch.device | str | None = None, memory_bytes: int = 1 << 30, database_block: int = 65536,
) -> np.ndarray:
    """AP (k None: AP@all; else AP@k) of every query, float64 (Q,), NaN for queries without positives.

    A database item is a positive of a query when their integer labels (object identities) are
    equal. `memory_bytes` bounds the working set of one block of queries.
    """
    device = torch.device(device) if device is not None else queries.device
    query_labels = torch.as_tensor(np.asarray(query_labels), dtype=torch.int64).to(device)
    database_labels = torch.as_tensor(np.asarray(database_labels), dtype=torch.int64).to(device)
    positives = _count_equal(query_labels, database_labels)
    num_db = database.shape[0]
    if num_db == 0:
        return np.full(queries.shape[0], np.nan)
    if k is not None:
        query_block = max(1, memory_bytes // (_BYTES_PER_CELL * (min(k, num_db) + min(database_block, num_db))))
        _, idx = top_k(queries, database, k, query_block=query_block, database_block=database_block, device=device)
        relevance = database_labels[idx.to(device)] == query_labels[:, None]
        return _ap_rows(relevance, positives, k, normalise).cpu().numpy()
    query_block = max(1, memory_bytes // (_BYTES_PER_CELL * num_db))
    db = database.to(device, torch.float32)
    out = []
    for q0 in range(0, queries.shape[0], query_block):
        sims = queries[q0:q0 + query_block].to(device, torch.float32) @ db.T
        order = torch.sort(sims, dim=1, descending=True, stable=True).indices
        del sims
        relevance = database_labels[order] == query_labels[q0:q0 + query_block, None]
        out.append(_ap_rows(relevance, positives[q0:q0 + query_block], None, normalise).cpu())
    return torch.cat(out).numpy()


def _count_equal(values: torch.Tensor, pool: torch.Tensor) -> torch.Tensor:
    """For each value, how many entries of `pool` equal it."""
    pool = torch.sort(pool).values
    return torch.searchsorted(pool, values, right=True) - torch.searchsorted(pool, values)


def summarise(ap: np.ndarray, query_levels: np.ndarray | None = None) -> MapSummary:
    """mAP of per-query APs (NaN = no positives: left out, counted), overall and per query level."""
    ap = np.asarray(ap, dtype=np.float64)
    has = ~np.isnan(ap)
    per_level, per_level_queries = {}, {}
    if query_levels is not None:
        query_levels = np.asarray(query_levels)
        for level in np.unique(query_levels).tolist():
            chosen = has & (query_levels == level)
            per_level[int(level)] = _mean(ap[chosen])
            per_level_queries[int(level)] = int(chosen.sum())
    return MapSummary(
        map=_mean(ap[has]), num_queries=int(has.sum()), num_without_positives=int((~has).sum()),
        per_level=per_level, per_level_queries=per_level_queries,
    )


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else float("nan")


def per_database_level_table(
    queries: torch.Tensor, database: torch.Tensor, query_labels: np.ndarray, database_labels: np.ndarray,
    query_levels: np.ndarray, database_levels: np.ndarray, *, k: int | None = None,
    normalise: Normalise = "min", device: torch.device | str | None = None, memory_bytes: int = 1 << 30,
) -> LevelTable:
    """Table 4 of the paper: for each database blur level, the database restricted to that level,
    mAP per query blur level and over all queries; range and std over the cells."""
    query_levels, database_levels = np.asarray(query_levels), np.asarray(database_levels)
    database_labels = np.asarray(database_labels)
    q_levels = [int(v) for v in np.unique(query_levels)]
    db_levels = [int(v) for v in np.unique(database_levels)]
    cells = np.full((len(db_levels), len(q_levels)), np.nan)
    all_queries = np.full(len(db_levels), np.nan)
    for row, level in enumerate(db_levels):
        keep = np.flatnonzero(database_levels == level)
        ap = query_average_precisions(
            queries, database[torch.as_tensor(keep)], query_labels, database_labels[keep],
            k=k, normalise=normalise, device=device, memory_bytes=memory_bytes,
        )
        summary = summarise(ap, query_levels)
        cells[row] = [summary.per_level[level_q] for level_q in q_levels]
        all_queries[row] = summary.map
    row_range, row_std = zip(*(spread(row) for row in cells)) if len(cells) else ((), ())
    total_range, total_std = spread(cells)
    return LevelTable(
        database_levels=db_levels, query_levels=q_levels, cells=cells, all_queries=all_queries,
        range=total_range, std=total_std, row_range=np.array(row_range), row_std=np.array(row_std),
    )


def spread(values: np.ndarray) -> tuple[float, float]:
    """(max - min, population std) of the non-NaN values: Table 4's "range" and "std"."""
    values = np.asarray(values, dtype=np.float64)
    values = values[~np.isnan(values)]
    if not values.size:
        return float("nan"), float("nan")
    return float(values.max() - values.min()), float(values.std())
