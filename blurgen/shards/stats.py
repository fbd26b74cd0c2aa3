"""Sample counts per split and blur level, like Table 1 of the blur-retrieval paper.

The split rows come from the manifest alone (each entry's ``blur_levels``), so they cost nothing
however large the dataset. Schemas without a ``blur_level`` field get counts per split only.
The role rows of Table 1 (query and database images of the test objects, and the distractor
set) are in no manifest: :func:`role_table` reads the shards' small ``role``, ``split`` and
``blur_level`` columns.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

BLUR_LEVELS = tuple(range(1, 11))
_SPLIT_ORDER = ("train", "val", "valid", "validation", "test")
# Table 1's rows by role: render's test objects are queries or database images; the distractor
# set is its own split, whose samples have no role.
ROLE_ROWS = ("query", "database", "distractor")
DISTRACTOR_SPLIT = "distractor"


@dataclass(frozen=True)
class LevelTable:
    """Counts per split (rows) and blur level (columns); or per role, with ``row_label`` "role".

    ``levels`` is empty when no shard has blur levels. ``samples[split]`` counts every sample
    of the split, including those of shards without levels.
    """

    splits: tuple[str, ...]  # the rows: splits, or roles (row_label)
    levels: tuple[int, ...]
    counts: Mapping[str, Mapping[int, int]]
    samples: Mapping[str, int]
    row_label: str = "split"

    def level_total(self, level: int) -> int:
        return sum(self.counts[s].get(level, 0) for s in self.splits)

    @property
    def total(self) -> int:
        return sum(self.samples.values())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: ``{"levels": [...], "splits": {split: {"1": n, ..., "total": n}}, "total": {...}}``
        (``"roles"`` instead of ``"splits"`` for a role table)."""
        def row(cells: Mapping[int, int], total: int) -> dict[str, int]:
            return {**{str(level): cells.get(level, 0) for level in self.levels}, "total": total}
        return {"levels": list(self.levels),
                f"{self.row_label}s": {s: row(self.counts[s], self.samples[s]) for s in self.splits},
                "total": row({lv: self.level_total(lv) for lv in self.levels}, self.total)}


def level_table(manifest: Mapping[str, Any]) -> LevelTable:
    """The table for a manifest (as returned by ``read_manifest``)."""
    counts: dict[str, dict[int, int]] = {}
    samples: dict[str, int] = {}
    has_levels = False
    for entry in manifest["shards"]:
        split = entry["split"]
        row = counts.setdefault(split, {})
        samples[split] = samples.get(split, 0) + int(entry["samples"])
        if "blur_levels" in entry:
            has_levels = True
            for level, n in entry["blur_levels"].items():
                row[int(level)] = row.get(int(level), 0) + int(n)
    splits = sorted(counts, key=lambda s: (_SPLIT_ORDER.index(s) if s in _SPLIT_ORDER else len(_SPLIT_ORDER), s))
    return LevelTable(tuple(splits), _level_columns(counts, has_levels), counts, samples)


def _level_columns(counts: Mapping[str, Mapping[int, int]], has_levels: bool) -> tuple[int, ...]:
    """Always the paper's 10 columns, plus any level outside 1..10 so that nothing is hidden."""
    extra = {lv for row in counts.values() for lv in row} - set(BLUR_LEVELS)
    return tuple(sorted(set(BLUR_LEVELS) | extra)) if has_levels else ()


def table_role(role: str, split: str) -> str:
    """A sample's row in Table 1's role rows: its role, ``distractor`` for the distractor split,
    empty for the rest (train and val images have no role)."""
    return role or (DISTRACTOR_SPLIT if split == DISTRACTOR_SPLIT else "")


def role_table(source: str | Path) -> LevelTable | None:
    """Table 1's rows by role for the shards of ``source`` (a folder or a release): the test
    objects' ``query`` and ``database`` images and the ``distractor`` split, per blur level.
    None when the shards have no ``role`` field (only render's do).
    """
    from blurgen.shards.reader import ShardDataset  # the reader imports this package's modules

    dataset = ShardDataset(source)  # no file stays open; only three small columns are read
    if len(dataset) == 0 or "role" not in dataset.fields:
        return None
    roles = dataset.column("role")
    splits = dataset.column("split")
    has_levels = "blur_level" in dataset.fields
    levels = np.asarray(dataset.column("blur_level")) if has_levels else np.zeros(len(roles), np.int64)
    counts: dict[str, dict[int, int]] = {}
    samples: Counter = Counter()
    for role, split, level in zip(roles, splits, levels.tolist()):
        row = table_role(role, split)
        if not row:
            continue  # train and val images have no role
        samples[row] += 1
        if has_levels:
            cells = counts.setdefault(row, {})
            cells[level] = cells.get(level, 0) + 1
    rows = tuple(sorted(samples, key=lambda r: (ROLE_ROWS.index(r) if r in ROLE_ROWS else len(ROLE_ROWS), r)))
    counts = {r: counts.get(r, {}) for r in rows}
    return LevelTable(rows, _level_columns(counts, has_levels), counts, dict(samples), row_label="role")



def format_level_table(table: LevelTable) -> str:
    """The table as aligned text, one row per split and a total row."""
    header = [table.row_label, *map(str, table.levels), "total"]
    rows = [[s, *(str(table.counts[s].get(lv, 0)) for lv in table.levels), str(table.samples[s])]
            for s in table.splits]
    rows.append(["total", *(str(table.level_total(lv)) for lv in table.levels), str(table.total)])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(r, widths)))
             for r in [header, *rows]]
    return "\n".join(lines)
