"""Sample counts per split and blur level, like Table 1 of the blur-retrieval paper.

Computed from the manifest alone (each entry's ``blur_levels``), so it costs nothing however
large the dataset. Schemas without a ``blur_level`` field get counts per split only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

BLUR_LEVELS = tuple(range(1, 11))
_SPLIT_ORDER = ("train", "val", "valid", "validation", "test")


@dataclass(frozen=True)
class LevelTable:
    """Counts per split (rows) and blur level (columns).

    ``levels`` is empty when no shard has blur levels. ``samples[split]`` counts every sample
    of the split, including those of shards without levels.
    """

    splits: tuple[str, ...]
    levels: tuple[int, ...]
    counts: Mapping[str, Mapping[int, int]]
    samples: Mapping[str, int]

    def level_total(self, level: int) -> int:
        return sum(self.counts[s].get(level, 0) for s in self.splits)

    @property
    def total(self) -> int:
        return sum(self.samples.values())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: ``{"levels": [...], "splits": {split: {"1": n, ..., "total": n}}, "total": {...}}``."""
        def row(cells: Mapping[int, int], total: int) -> dict[str, int]:
            return {**{str(level): cells.get(level, 0) for level in self.levels}, "total": total}
        return {"levels": list(self.levels),
                "splits": {s: row(self.counts[s], self.samples[s]) for s in self.splits},
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
    # Always the paper's 10 columns, plus any level outside 1..10 so that nothing is hidden.
    extra = {lv for row in counts.values() for lv in row} - set(BLUR_LEVELS)
    levels = tuple(sorted(set(BLUR_LEVELS) | extra)) if has_levels else ()
    return LevelTable(tuple(splits), levels, counts, samples)


def format_level_table(table: LevelTable) -> str:
    """The table as aligned text, one row per split and a total row."""
    header = ["split", *map(str, table.levels), "total"]
    rows = [[s, *(str(table.counts[s].get(lv, 0)) for lv in table.levels), str(table.samples[s])]
            for s in table.splits]
    rows.append(["total", *(str(table.level_total(lv)) for lv in table.levels), str(table.total)])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(r, widths)))
             for r in [header, *rows]]
    return "\n".join(lines)
