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
from blurgen.config import to_dict, to_json
from blurgen.errors import BlurgenError
from blurgen.farm import progress_bar, refuse_other_jobs, run_tasks, task_block, task_index_from
from blurgen.shards import ShardWriter, shard_filename, shard_is_complete

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
                 f"{len(ran)} task(s) -> {self.out_dir}"]
        if len(ran) < len(self.tasks):
            lines.append(f"{len(self.tasks) - len(ran)} task(s) already complete, skipped")
        types: Counter = Counter()
        skipped: Counter = Counter()
        for t in ran:
            types.update(t.types)
            skipped.update(t.skipped_sources)
        if types:
            lines.append("blurred instances: " + ", ".join(f"{k} {v}" for k, v in sorted(types.items())))
        if skipped:
            lines.append("skipped photos: " + ", ".join(f"{k} {v}" for k, v in sorted(skipped.items())))
        if self.preview:
            lines.append(f"preview: {self.preview}")
        return "\n".join(lines)


def composite_dataset(config: CompositeConfig, out_dir: str | Path, *, task_index: int | None = None,
                      num_tasks: int | None = None, jobs: int = 1, progress: bool = True) -> CompositeSummary:
    """Make the dataset ``config`` describes into shards in ``out_dir``.

    With a task index (argument, ``SLURM_ARRAY_TASK_ID`` or ``JOB_COMPLETION_INDEX``) only that
    task runs; without one every task runs here, ``jobs`` at a time, and a preview is written.
    """
    if num_tasks is not None:
        config = dataclasses.replace(config, farm=dataclasses.replace(config.farm, num_tasks=num_tasks))
    num_tasks = config.farm.num_tasks
    index = task_index_from(task_index, num_tasks)
    allowed_types(config)  # a stage/types mismatch fails before any work
    sources = list_sources(config)  # so do a folder without photos
    masks = mask_source(config, Path(out_dir))  # and missing mask sources
    plan = make_plan(config, sources)
    if index is None and isinstance(masks, SamMasks):
        # Segment every photo once here, before tasks fan out, so that --jobs J does not load
        # the checkpoint (2.4 GB for vit_h) J times; the tasks then only read the cache.
        masks.warm_cache(sorted({item.source for item in plan}, key=lambda ref: ref.index))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    refuse_other_jobs(out_dir, to_json(config), RUN_ONLY)
    tasks = [index] if index is not None else list(range(num_tasks))
    if jobs <= 1:
        total = len(plan) if index is None else len(task_block(plan, index, num_tasks))
        with progress_bar(total, "sample", "composite", progress) as advance:
            summaries = [run_task(config, plan, out_dir, t, num_tasks, on_sample=advance) for t in tasks]
    else:
        summaries = run_tasks(lambda t: run_task(config, plan, out_dir, t, num_tasks), tasks, jobs)
    preview = None
    if index is None and config.output.preview and sum(s.samples for s in summaries):
        from blurgen.viz.preview import preview_shards

        preview = preview_shards(out_dir, out_dir / "preview.png")
    return CompositeSummary(out_dir, summaries, preview)


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
    if all(shard_is_complete(out_dir, shard_filename(s, task_index, num_tasks)) for s in splits):
        summary.skipped_complete = True
        if on_sample:
            on_sample(len(items))
        return summary
    masks = mask_source(config, out_dir)
    types: Counter = Counter()
    skipped: Counter = Counter()
    with contextlib.ExitStack() as stack:
        writers = {s: stack.enter_context(ShardWriter(
            out_dir, schema=SCHEMA, split=s, task_index=task_index, num_tasks=num_tasks,
            seed=config.seed, config_json=to_json(config), compression=config.output.compression,
            compression_level=config.output.compression_level)) for s in splits}
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
