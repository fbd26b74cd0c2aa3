"""What a set of shards is made of, as count tables for a dataset card.

Each generator is counted the way its paper describes its data: render by blur level for each
split and role (the blur-retrieval paper's Table 1), composite by blur type, coverage, sampling
mode and curriculum stage (the subtle-blur paper's §3), flow pairs by frames averaged, source and
what computed the flow. Counts come from the shards' small columns (read whole, one shard at a
time), never from images.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from blurgen.shards.manifest import read_manifest
from blurgen.shards.reader import ShardDataset
from blurgen.shards.release import shard_folder
from blurgen.shards.stats import SHARP, LevelTable, level_table, role_table

TOTAL = "total"
MAX_ROWS = 50  # a card lists at most this many rows of one table (e.g. videos); the rest are summed


@dataclass(frozen=True)
class CountTable:
    """Counts in rows x columns, with each row's number of samples in a last ``total`` column.

    A sample can count in several columns (a composite sample with two blur types) or in none,
    so ``totals`` is given, not summed; ``note`` says what is counted.
    """

    title: str
    row_label: str
    columns: tuple[str, ...]
    rows: tuple[str, ...]
    cells: dict[str, dict[str, int]]
    totals: dict[str, int]
    note: str = ""
    total_first: bool = False  # the total column right after the row name (the paper's Table 1)

    def cell(self, row: str, column: str) -> int:
        return self.cells.get(row, {}).get(column, 0)

    def header(self) -> list[str]:
        return self._arrange(self.row_label, list(self.columns), TOTAL)

    def body(self) -> list[list[Any]]:
        """The rows as lists of cells, ending in a total row when there are several rows."""
        rows = [self._arrange(r, [self.cell(r, c) for c in self.columns], self.totals.get(r, 0)) for r in self.rows]
        if len(self.rows) > 1:
            rows.append(self._arrange(TOTAL, [sum(self.cell(r, c) for r in self.rows) for c in self.columns],
                                      sum(self.totals.get(r, 0) for r in self.rows)))
        return rows

    def _arrange(self, name: Any, cells: list[Any], total: Any) -> list[Any]:
        return [name, total, *cells] if self.total_first else [name, *cells, total]


def from_level_table(title: str, table: LevelTable, note: str = "") -> CountTable:
    """A split or role table of blur levels as a card table in the paper's Table 1 layout: the
    total, then ``BL 1`` ... ``BL 10`` (then ``sharp`` when the table leaves the sharp images out)."""
    columns = tuple(f"BL {lv}" for lv in table.levels) + ((SHARP,) if table.sharp is not None else ())
    cells = {r: {**{f"BL {lv}": n for lv, n in table.counts[r].items()},
                 **({SHARP: table.sharp[r]} if table.sharp is not None else {})} for r in table.splits}
    return CountTable(title, table.row_label, columns, table.splits, cells, dict(table.samples), note,
                      total_first=True)


def crosstab(title: str, row_label: str, pairs: Iterable[tuple[str, Iterable[str]]],
             column_order: Sequence[str] = (), note: str = "", rows_by: str = "order") -> CountTable:
    """Count ``(row, columns of one sample)`` pairs; each pair is one sample of its row.

    Columns are ``column_order`` first (those that occur), then the others sorted. Rows keep
    their first appearance (``rows_by="order"``) or go by falling total (``"count"``); beyond
    :data:`MAX_ROWS` the rest are summed into one row.
    """
    cells: dict[str, Counter] = {}
    totals: Counter = Counter()
    for row, columns in pairs:
        totals[row] += 1
        cells.setdefault(row, Counter()).update(columns)
    seen = {c for counter in cells.values() for c in counter}
    columns = tuple(c for c in column_order if c in seen) + tuple(sorted(seen - set(column_order)))
    rows = list(totals) if rows_by == "order" else sorted(totals, key=lambda r: (-totals[r], r))
    if len(rows) > MAX_ROWS:
        rest = rows[MAX_ROWS - 1:]
        other = f"({len(rest)} more)"
        cells[other] = sum((cells.pop(r) for r in rest), Counter())
        totals[other] = sum(totals.pop(r) for r in rest)
        rows = rows[:MAX_ROWS - 1] + [other]
    return CountTable(title, row_label, columns, tuple(rows), {r: dict(cells[r]) for r in rows},
                      {r: totals[r] for r in rows}, note)


def _splits_in_order(folder: Path) -> list[str]:
    manifest = read_manifest(folder)
    return list(level_table(manifest).splits) if manifest else []


def _ordered(table: CountTable, order: Sequence[str]) -> CountTable:
    rows = tuple(r for r in order if r in table.rows) + tuple(r for r in table.rows if r not in order)
    return CountTable(table.title, table.row_label, table.columns, rows, table.cells, table.totals, table.note)


def render_tables(dataset: ShardDataset, folder: Path) -> list[CountTable]:
    """Table 1 of the blur-retrieval paper: images per blur level for each split (every image,
    from the manifest), then blurred images for each role (queries and database images of the
    test objects, the distractor set; from ``dataset``'s columns)."""
    tables = [from_level_table("Images per blur level and split", level_table(read_manifest(folder)),
                               "every image, each trajectory's sharp image included")]
    roles = role_table(dataset)
    if roles is not None:
        note = _ROLE_NOTE + (_SHARP_NOTE if roles.sharp is not None else "")
        tables.append(from_level_table(_role_title(roles), roles, note))
    return tables


_ROLE_NOTE = ("query and database: the test objects' images (a query's positives are the database images of its "
              "object); distractor: images of objects disjoint from the retrieval set")
_SHARP_NOTE = ("; sharp: each trajectory's sharp image (level 1 by construction), which the paper renders "
               "additionally and Table 1 does not count, so it is in neither the total nor a level")


def _role_title(roles: LevelTable) -> str:
    if roles.sharp is None:  # no window_count: sharp and blurred images cannot be told apart
        return "Images per blur level and role"
    return "Blurred images per blur level and role (the paper's Table 1 rows)"


def composite_tables(dataset: ShardDataset, folder: Path) -> list[CountTable]:
    """Samples per blur type, instances per coverage, samples per sampling mode and stage."""
    splits = dataset.column("split")
    types = dataset.column("blur_types")
    instances = [json.loads(text) for text in dataset.column("instances")]
    order = _splits_in_order(folder)
    by_type = crosstab("Samples per blur type", "split",
                       ((s, t.split(",") if t else ["none (sharp)"]) for s, t in zip(splits, types)),
                       note="a sample with several blurred instances counts under each of their types")
    coverage = crosstab("Instances per coverage", "split",
                        ((s, [i.get("coverage", "?") for i in inst]) for s, inst in zip(splits, instances)),
                        column_order=("sharp", "full", "partial"),
                        note="cells count chosen instances; total counts samples")
    mode = crosstab("Samples per sampling mode", "split",
                    ((s, [m]) for s, m in zip(splits, dataset.column("mode"))), column_order=("mask", "image"),
                    note="mask: mask-centric (one instance, a crop around it); image: image-centric")
    stage = crosstab("Samples per curriculum stage", "split",
                     ((s, [g]) for s, g in zip(splits, dataset.column("stage"))),
                     column_order=("stabilization", "mixed", "advanced"))
    return [_ordered(t, order) for t in (by_type, coverage, mode, stage)]


def flowpairs_tables(dataset: ShardDataset, folder: Path) -> list[CountTable]:
    """Pairs per frames averaged, per source, and per flow source."""
    splits = dataset.column("split")
    order = _splits_in_order(folder)
    frames = crosstab("Pairs per number of frames averaged", "split",
                      ((s, [str(int(n))]) for s, n in zip(splits, dataset.column("frames"))))
    frames = CountTable(frames.title, frames.row_label, tuple(sorted(frames.columns, key=int)), frames.rows,
                        frames.cells, frames.totals)
    sources = crosstab("Pairs per source", "source",
                       ((src, [s]) for src, s in zip(dataset.column("source"), splits)),
                       column_order=order, rows_by="count",
                       note="a source (video, frame folder, pair or scene) is in one split only")
    flow = crosstab("Pairs per flow source", "split",
                    ((s, [f]) for s, f in zip(splits, dataset.column("flow_source"))),
                    note="exact: from known motion; otherwise the estimator that computed the pseudo ground truth")
    return [_ordered(frames, order), sources, _ordered(flow, order)]


# schema name -> its tables; a schema without an entry gets the split table alone
_TABLES: dict[str, Callable[[ShardDataset, Path], list[CountTable]]] = {
    "blurgen.render/1": render_tables,
    "blurgen.composite/1": composite_tables,
    "blurgen.flowpairs/1": flowpairs_tables,
}


def composition(source: str | Path, schema: str) -> list[CountTable]:
    """The count tables of the shards in ``source`` (a folder or a release) for their schema."""
    folder = shard_folder(source)
    dataset = ShardDataset(folder)
    if len(dataset) == 0:
        return []
    tables = _TABLES.get(schema)
    if tables is None:
        return [from_level_table("Samples per split", level_table(read_manifest(folder)))]
    return tables(dataset, folder)
