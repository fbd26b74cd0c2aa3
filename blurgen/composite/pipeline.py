"""``blurgen composite`` end to end: plan, run tasks, write shards, manifest and a preview.

A task takes its contiguous block of items (``blurgen.farm.task_block``), loads each source
photo and its instance masks once, makes that photo's samples and writes one shard per split.
A task whose shards exist and verify is skipped, so re-running the command finishes a killed job.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from pathlib import Path
from typing import Sequence

from blurgen.composite.config import SCHEMA, CompositeConfig, allowed_types
from blurgen.composite.plan import CompositeItem, list_sources, make_plan
from blurgen.composite.sample import make_sample
from blurgen.composite.mask_sources import mask_source
from blurgen.composite.sam import SamMasks
from blurgen.composite.sources import SkipSource, load_source
from blurgen.farm import task_block
from blurgen.job import Generator, JobSummary, TaskRun, Wording, run_job

WORDING = Wording(samples="samples", sources="photos", unit="sample",
                  counts={"blur": "samples", "types": "blurred instances", "skipped_sources": "skipped photos"})


def composite_dataset(config: CompositeConfig, out_dir: str | Path, *, task_index: int | None = None,
                      num_tasks: int | None = None, jobs: int = 1, progress: bool = True) -> JobSummary:
    """Make the dataset ``config`` describes into shards in ``out_dir``.

    With a task index (argument, ``SLURM_ARRAY_TASK_ID`` or ``JOB_COMPLETION_INDEX``) only that
    task runs; without one every task runs here, ``jobs`` at a time, and a preview is written.
    """
    allowed_types(config)  # a stage/types mismatch fails before any work
    sources = list_sources(config)  # so does a folder without photos
    mask_source(config, Path(out_dir))  # and missing mask sources
    generator = CompositeGenerator(config, make_plan(config, sources), Path(out_dir))
    return run_job(generator, out_dir, task_index=task_index, num_tasks=num_tasks, jobs=jobs, progress=progress)


@dataclasses.dataclass(frozen=True)
class CompositeGenerator(Generator):
    """``blurgen composite`` for the job skeleton: items are samples, grouped by source photo."""

    config: CompositeConfig
    plan: list[CompositeItem]
    out_dir: Path
    schema: str = SCHEMA
    name: str = "composite"
    wording: Wording = WORDING

    @property
    def items(self) -> Sequence[CompositeItem]:
        return self.plan

    def before_tasks(self, tasks: Sequence[int], num_tasks: int) -> None:
        masks = mask_source(self.config, self.out_dir)
        if len(tasks) > 1 and isinstance(masks, SamMasks):
            # Segment every photo once here, before tasks fan out, so that --jobs J does not load
            # the checkpoint (2.4 GB for vit_h) J times; the tasks then only read the cache.
            refs = {item.source for t in tasks for item in task_block(self.plan, t, num_tasks)}
            masks.warm_cache(sorted(refs, key=lambda ref: ref.index))

    def make(self, items: Sequence[CompositeItem], task: TaskRun) -> None:
        """Load each source photo and its masks once, then make its samples."""
        config = self.config
        masks = mask_source(config, self.out_dir)
        for ref, group in itertools.groupby(items, key=lambda item: item.source):
            group = list(group)
            try:
                source = load_source(ref, masks, min_area=config.sources.min_area,
                                     max_area=config.sources.max_area)
            except SkipSource as exc:
                task.count("skipped_sources", exc.reason)
                task.advance(len(group))
                continue
            task.source_done()
            views: dict = {}
            for item in group:
                sample = make_sample(config, item, source, views)
                task.write(item.split, sample)
                task.count("blur", "blurred" if sample["blurred"] else "sharp")
                for record in json.loads(sample["instances"]):
                    if "params" in record:
                        task.count("types", record["params"]["type"])
                task.advance()
