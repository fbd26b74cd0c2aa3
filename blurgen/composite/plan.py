"""Planning a composite job: its sources, their split, and one work item per sample.

The split is by source photo (a seeded shuffle, as in the paper §3.1), so no photo gives samples
to both train and val. Items of one photo are contiguous, and item ids follow the photo's
position in the sorted source list, so a task loads each photo (and its masks) once and cutting
the job into other tasks changes no sample.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from blurgen.composite.config import CompositeConfig
from blurgen.composite.sources import SourceRef, list_image_files, procedural_refs
from blurgen.rng import item_rng

STREAM_SPLIT = 1
STREAM_SAMPLE = 2


@dataclasses.dataclass(frozen=True)
class CompositeItem:
    item_id: int
    source: SourceRef
    split: str


def list_sources(config: CompositeConfig) -> list[SourceRef]:
    """The job's source photos: the images folder, or the procedural photos."""
    if config.sources.images is None:
        return procedural_refs(config.sources.procedural_count)
    return list_image_files(Path(config.sources.images).expanduser())


def split_sources(config: CompositeConfig, sources: list[SourceRef]) -> dict[str, str]:
    """source_id -> 'train' or 'val': a seeded shuffle, the first round(n * val_fraction) are val."""
    n = len(sources)
    n_val = round(n * config.samples.val_fraction)
    if config.samples.val_fraction > 0 and n >= 2:
        n_val = max(1, min(n - 1, n_val))  # both splits non-empty when both are asked for
    order = item_rng(config.seed, 0, STREAM_SPLIT).permutation(n)
    val = {sources[i].source_id for i in order[:n_val]}
    return {s.source_id: ("val" if s.source_id in val else "train") for s in sources}


def make_plan(config: CompositeConfig, sources: list[SourceRef]) -> list[CompositeItem]:
    splits = split_sources(config, sources)
    k = config.samples.per_source
    return [CompositeItem(source.index * k + j, source, splits[source.source_id])
            for source in sources for j in range(k)]
