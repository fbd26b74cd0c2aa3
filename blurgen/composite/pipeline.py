"""``blurgen composite`` end to end: plan, run tasks, write shards, manifest and a preview.

A task takes its contiguous block of items (``blurgen.farm.task_block``), loads each source
photo and its instance masks once, makes that photo's samples and writes one shard per split.
A task whose shards exist and verify is skipped, so re-running the command finishes a killed job.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
from collections import Counter
from pathlib import Path
from typing import Any, Callable

from blurgen.composite.config import RUN_ONLY, SCHEMA, CompositeConfig, allowed_types
from blurgen.composite.plan import CompositeItem, list_sources, make_plan
from blurgen.composite.sample import make_sample
from blurgen.composite.sources import (FolderMasks, MaskSource, ProceduralMasks, SamMasks, SkipSource,
                                       load_source)
from blurgen.config import to_dict
from blurgen.errors import BlurgenError
from blurgen.farm import task_block
from blurgen.job import (count_line, describe_tasks, finish_job, open_writers, run_job_tasks, start_job,
                         task_is_complete)

SAM_CACHE_DIR = "sam-cache"


@dataclasses.dataclass
class TaskSummary:
    """What one task did; also stored (as ``stats``) in each of its shards."""

    task_index: int
    skipped_complete: bool = False
    sources: int = 0
    samples: int = 0
    blurred: int = 0
    types: dict[str, int] = dataclasses.field(default_factory=dict)           # blur type -> instances
    skipped_sources: dict[str, int] = dataclasses.field(default_factory=dict)  # reason -> photos

    def stats(self) -> dict[str, Any]:
        return {"sources": self.sources, "samples": self.samples, "blurred": self.blurred,
                "types": self.types, "skipped_sources": self.skipped_sources}


@dataclasses.dataclass
class CompositeSummary:
    out_dir: Path
    tasks: list[TaskSummary]
    preview: Path | None

    def describe(self) -> str:
        ran = [t for t in self.tasks if not t.skipped_complete]
        samples, blurred = sum(t.samples for t in ran), sum(t.blurred for t in ran)
        lines = [f"{samples} samples ({blurred} with blur) from {sum(t.sources for t in ran)} photos in "
                 f"{len(ran)} task(s) -> {self.out_dir}", *describe_tasks(self.tasks)]
        types: Counter = Counter()
        skipped: Counter = Counter()
        for t in ran:
            types.update(t.types)
            skipped.update(t.skipped_sources)
        lines += count_line("blurred instances", types)
        lines += count_line("skipped photos", skipped)
        if self.preview:
            lines.append(f"preview: {self.preview}")
        return "\n".join(lines)


def composite_dataset(config: CompositeConfig, out_dir: str | Path, *, task_index: int | None = None,
                      num_tasks: int | None = None, jobs: int = 1, progress: bool = True) -> CompositeSummary:
    """Make the dataset ``config`` describes into shards in ``out_dir``.

    With a task index (argument, ``SLURM_ARRAY_TASK_ID`` or ``JOB_COMPLETION_INDEX``) only that
    task runs; without one every task runs here, ``jobs`` at a time, and a preview is written.
    """
    allowed_types(config)  # a stage/types mismatch fails before any work
    sources = list_sources(config)  # so does a folder without photos
    masks = mask_source(config, Path(out_dir))  # and missing mask sources
    job = start_job(config, out_dir, task_index, num_tasks, RUN_ONLY)
    config = job.config
    plan = make_plan(config, sources)
    if job.index is None and isinstance(masks, SamMasks):
        # Segment every photo once here, before tasks fan out, so that --jobs J does not load
        # the checkpoint (2.4 GB for vit_h) J times; the tasks then only read the cache.
        masks.warm_cache(sorted({item.source for item in plan}, key=lambda ref: ref.index))
    total = sum(len(task_block(plan, t, job.num_tasks)) for t in job.tasks)
    summaries = run_job_tasks(lambda t, on_item: run_task(config, plan, job.out_dir, t, job.num_tasks, on_item),
                              job.tasks, jobs=jobs, total=total, unit="sample", desc="composite",
                              progress=progress)
    return CompositeSummary(job.out_dir, summaries, finish_job(job, sum(s.samples for s in summaries)))


def mask_source(config: CompositeConfig, out_dir: Path) -> MaskSource:
    """Where instance masks come from: procedural, mask files, or SAM (cached next to the output)."""
    src = config.sources
    if src.images is None:
        if src.masks or src.sam_checkpoint:
            raise BlurgenError("masks or a SAM checkpoint were given without sources.images (--images): "
                               "give the photos they belong to")
        return ProceduralMasks(config.seed, tuple(src.procedural_size))
    if src.masks and src.sam_checkpoint:
        raise BlurgenError("give either a masks folder (--masks) or a SAM checkpoint (--sam-checkpoint), not both")
    if src.masks:
        return FolderMasks(Path(src.masks).expanduser())
    if src.sam_checkpoint:
        generator = {k: v for k, v in to_dict(config.sam).items() if k != "device"}
        return SamMasks(Path(src.sam_checkpoint).expanduser(), src.sam_model, generator,
                        out_dir / SAM_CACHE_DIR, device=config.sam.device)
    raise BlurgenError("photos need instance masks: give --masks DIR (mask files) or --sam-checkpoint FILE "
                       "(segment with SAM)")


def run_task(config: CompositeConfig, plan: list[CompositeItem], out_dir: Path, task_index: int,
             num_tasks: int, on_sample: Callable[[int], None] | None = None) -> TaskSummary:
    """Make one task's samples into one shard per split; skip when those shards already verify."""
    items = task_block(plan, task_index, num_tasks)
    splits = sorted({item.split for item in items})
    summary = TaskSummary(task_index)
    if task_is_complete(out_dir, splits, task_index, num_tasks):
        summary.skipped_complete = True
        if on_sample:
            on_sample(len(items))
        return summary
    masks = mask_source(config, out_dir)
    types: Counter = Counter()
    skipped: Counter = Counter()
    with contextlib.ExitStack() as stack:
        writers = open_writers(stack, config, out_dir, SCHEMA, splits, task_index, num_tasks)
        for ref, group in itertools.groupby(items, key=lambda item: item.source):
            group = list(group)
            try:
                source = load_source(ref, masks, seed=config.seed, min_area=config.sources.min_area,
                                     max_area=config.sources.max_area)
            except SkipSource as exc:
                skipped[exc.reason] += 1
                if on_sample:
                    on_sample(len(group))
                continue
            summary.sources += 1
            views: dict = {}
            for item in group:
                sample = make_sample(config, item, source, views)
                writers[item.split].add(sample)
                summary.samples += 1
                summary.blurred += int(sample["blurred"])
                types.update(r["params"]["type"] for r in json.loads(sample["instances"]) if "params" in r)
                if on_sample:
                    on_sample(1)
        summary.types, summary.skipped_sources = dict(sorted(types.items())), dict(sorted(skipped.items()))
        for writer in writers.values():
            writer.close(summary.stats())
    return summary
