"""Sample counts per split and blur level, like Table 1 of the blur-retrieval paper.

The split rows come from the manifest alone (each entry's ``blur_levels``), so they cost nothing
however large the dataset; they count every image, render's sharp ones included. Schemas without
a ``blur_level`` field get counts per split only. The role rows of Table 1 (query and database
images of the test objects, and the distractor set) are in no manifest: :func:`role_table` reads
the shards' small ``role``, ``split``, ``blur_level`` and ``window_count`` columns. Table 1
counts blurred images only (docs/render.md, "Which images Table 1 counts"), so the role rows
leave each trajectory's sharp image (``window_count == 0``) out of their cells and totals and
count those in a column of their own.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping

import numpy as np

if TYPE_CHECKING:
    from blurgen.shards.reader import ShardDataset

BLUR_LEVELS = tuple(range(1, 11))
_SPLIT_ORDER = ("train", "val", "valid", "validation", "test")
# Table 1's rows by role: render's test objects are queries or database images; the distractor
# set is its own split, whose samples have no role.
ROLE_ROWS = ("query", "database", "distractor")
DISTRACTOR_SPLIT = "distractor"
SHARP = "sharp"  # the column of a role table that counts the sharp images its other cells leave out


@dataclass(frozen=True)
class LevelTable:
    """Counts per split (rows) and blur level (columns); or per role, with ``row_label`` "role".

    ``levels`` is empty when no shard has blur levels. ``samples[split]`` counts every sample
    of the split that the table counts, including those of shards without levels. ``sharp``
    (role tables of render shards) counts per row the sharp images left out of ``counts`` and
    ``samples``; None when the table counts every image.
    """

    splits: tuple[str, ...]  # the rows: splits, or roles (row_label)
    levels: tuple[int, ...]
    counts: Mapping[str, Mapping[int, int]]
    samples: Mapping[str, int]
    row_label: str = "split"
    sharp: Mapping[str, int] | None = None

    def level_total(self, level: int) -> int:
        return sum(self.counts[s].get(level, 0) for s in self.splits)

    @property
    def total(self) -> int:
        return sum(self.samples.values())

    @property
    def sharp_total(self) -> int:
        return sum((self.sharp or {}).values())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: ``{"levels": [...], "splits": {split: {"1": n, ..., "total": n}}, "total": {...}}``
        (``"roles"`` instead of ``"splits"`` for a role table, whose rows also hold ``"sharp"``:
        the sharp images left out of the levels and the total)."""
        def row(cells: Mapping[int, int], total: int, sharp: int) -> dict[str, int]:
            extra = {SHARP: sharp} if self.sharp is not None else {}
            return {**{str(level): cells.get(level, 0) for level in self.levels}, "total": total, **extra}
        sharp = self.sharp or {}
        return {"levels": list(self.levels),
                f"{self.row_label}s": {s: row(self.counts[s], self.samples[s], sharp.get(s, 0)) for s in self.splits},
                "total": row({lv: self.level_total(lv) for lv in self.levels}, self.total, self.sharp_total)}


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


def role_table(source: str | Path | ShardDataset) -> LevelTable | None:
    """Table 1's rows by role for the shards of ``source`` (a folder, a release, or a dataset
    already open): the test objects' ``query`` and ``database`` images and the ``distractor``
    split, per blur level. Blurred images only, as Table 1 counts them: each row's sharp images
    (``window_count == 0``) are counted in ``sharp`` instead. None when the shards have no
    ``role`` field (only render's do).
    """
    from blurgen.shards.reader import ShardDataset  # the reader imports this package's modules

    dataset = source if isinstance(source, ShardDataset) else ShardDataset(source)
    if len(dataset) == 0 or "role" not in dataset.fields:
        return None
    has_levels = "blur_level" in dataset.fields
    has_windows = "window_count" in dataset.fields
    counts: dict[str, dict[int, int]] = {}
    samples: Counter = Counter()
    sharp: Counter = Counter()
    for row, level, is_blurred in _role_rows(dataset, has_levels, has_windows):
        if not is_blurred:
            sharp[row] += 1
            continue
        samples[row] += 1
        if has_levels:
            cells = counts.setdefault(row, {})
            cells[level] = cells.get(level, 0) + 1
    rows = tuple(sorted(samples | sharp, key=lambda r: (ROLE_ROWS.index(r) if r in ROLE_ROWS else len(ROLE_ROWS), r)))
    counts = {r: counts.get(r, {}) for r in rows}
    return LevelTable(rows, _level_columns(counts, has_levels), counts, {r: samples[r] for r in rows},
                      row_label="role", sharp={r: sharp[r] for r in rows} if has_windows else None)


def _role_rows(dataset: ShardDataset, has_levels: bool, has_windows: bool) -> Iterator[tuple[str, int, bool]]:
    """``(Table 1 row, blur level, blurred)`` of each image that has a row (train and val images
    have none), from four small columns; no file stays open. Render marks the sharp image of a
    trajectory with ``window_count == 0``."""
    n = len(dataset)
    levels = np.asarray(dataset.column("blur_level")) if has_levels else np.zeros(n, np.int64)
    blurred = np.asarray(dataset.column("window_count")) > 0 if has_windows else np.ones(n, bool)
    for role, split, level, is_blurred in zip(dataset.column("role"), dataset.column("split"), levels.tolist(),
                                              blurred.tolist()):
        row = table_role(role, split)
        if row:
            yield row, level, is_blurred


def format_level_table(table: LevelTable) -> str:
    """The table as aligned text, one row per split and a total row (and a last ``sharp``
    column when the table leaves the sharp images out)."""
    header = [table.row_label, *map(str, table.levels), "total"]
    rows = [[s, *(str(table.counts[s].get(lv, 0)) for lv in table.levels), str(table.samples[s])]
            for s in table.splits]
    rows.append(["total", *(str(table.level_total(lv)) for lv in table.levels), str(table.total)])
    if table.sharp is not None:
        header.append(SHARP)
        for row, n in zip(rows, [*(table.sharp[s] for s in table.splits), table.sharp_total]):
            row.append(str(n))
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(r, widths)))
             for r in [header, *rows]]
    return "\n".join(lines)
