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
from blurgen.splits import split_sources

STREAM_SAMPLE = 2  # (stream 1 is the split's: blurgen.splits)


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


def make_plan(config: CompositeConfig, sources: list[SourceRef]) -> list[CompositeItem]:
    splits = split_sources(config.seed, [s.source_id for s in sources], config.samples.val_fraction, 0.0)
    k = config.samples.per_source
    return [CompositeItem(source.index * k + j, source, splits[source.source_id])
            for source in sources for j in range(k)]
