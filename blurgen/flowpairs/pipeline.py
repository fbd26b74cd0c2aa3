"""``blurgen flowpairs`` end to end: plan, run tasks, write shards, manifest and a preview.

One code path for both modes: the plan (:mod:`blurgen.flowpairs.plan`) lists the items, a task
takes its contiguous block (``blurgen.farm.task_block``), makes each source's samples
(:mod:`blurgen.flowpairs.samples`) and writes one shard per split it has items of. A task whose
shards exist and verify is skipped, so re-running the same command finishes a killed job.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable

from blurgen.errors import BlurgenError, ShardError
from blurgen.farm import task_block
from blurgen.flow.estimators import make_estimator
from blurgen.flowpairs.config import RUN_ONLY, SCHEMA, FlowpairsConfig
from blurgen.flowpairs.plan import Plan, make_plan
from blurgen.flowpairs.samples import Drop, synth_sample, video_samples
from blurgen.job import (count_line, describe_tasks, finish_job, open_writers, run_job_tasks, start_job,
                         task_is_complete)
from blurgen.shards import ShardWriter

_MAX_DETAILS = 20  # named bad inputs kept per task (the counts are complete)


@dataclasses.dataclass
class TaskSummary:
    """What one task did; also stored (as ``stats``) in each of its shards."""

    task_index: int
    skipped_complete: bool = False
    sources: int = 0
    samples: int = 0
    dropped: dict[str, int] = dataclasses.field(default_factory=dict)   # reason -> items
    details: list[str] = dataclasses.field(default_factory=list)        # e.g. unusable user pairs
    skipped_sources: dict[str, int] = dataclasses.field(default_factory=dict)  # the plan's
    # seconds per stage (decode, average, flow, synth, write); not stored: it varies run to run
    timings: dict[str, float] = dataclasses.field(default_factory=dict)

    def stats(self) -> dict[str, Any]:
        return {"sources": self.sources, "samples": self.samples, "dropped": self.dropped,
                "details": self.details, "skipped_sources": self.skipped_sources}


@dataclasses.dataclass
class FlowpairsSummary:
    out_dir: Path
    mode: str
    tasks: list[TaskSummary]
    preview: Path | None

    @property
    def samples(self) -> int:
        return sum(t.samples for t in self.tasks)

    def describe(self) -> str:
        ran = [t for t in self.tasks if not t.skipped_complete]
        what = "videos" if self.mode == "video" else "sources"
        lines = [f"{sum(t.samples for t in ran)} flow pairs from {sum(t.sources for t in ran)} {what} in "
                 f"{len(ran)} task(s) -> {self.out_dir}", *describe_tasks(self.tasks)]
        dropped: Counter = Counter()
        for t in ran:
            dropped.update(t.dropped)
        lines += count_line("dropped", dropped)
        details = [d for t in ran for d in t.details]
        lines.extend(f"  {d}" for d in details[:5])
        if len(details) > 5:
            lines.append(f"  ... and {len(details) - 5} more (see the shards' stats)")
        if self.tasks and self.tasks[0].skipped_sources:
            lines.append("sources without windows: " + ", ".join(
                f"{k} {v}" for k, v in sorted(self.tasks[0].skipped_sources.items())))
        if self.preview:
            lines.append(f"preview: {self.preview}")
        return "\n".join(lines)


def flowpairs_dataset(config: FlowpairsConfig, out_dir: str | Path, *, task_index: int | None = None,
                      num_tasks: int | None = None, jobs: int = 1, progress: bool = True) -> FlowpairsSummary:
    """Make the flow pairs ``config`` describes (``config.mode``: video or synth) into shards in ``out_dir``.

    With a task index (argument, ``SLURM_ARRAY_TASK_ID`` or ``JOB_COMPLETION_INDEX``) only that
    task runs; without one every task runs here, ``jobs`` at a time, and a preview is written.
    """
    if config.mode == "video":
        make_estimator(config.flow.estimator)  # an unknown name fails before any work
    plan = make_plan(config)  # bad inputs fail before the output folder is made
    job = start_job(config, out_dir, task_index, num_tasks, RUN_ONLY)
    config = job.config
    total = sum(len(task_block(plan.items, t, job.num_tasks)) for t in job.tasks)
    summaries = run_job_tasks(lambda t, on_item: run_task(config, plan, job.out_dir, t, job.num_tasks, on_item),
                              job.tasks, jobs=jobs, total=total, unit="pair", desc=f"flowpairs {config.mode}",
                              progress=progress)
    return FlowpairsSummary(job.out_dir, config.mode, summaries, finish_job(job, sum(s.samples for s in summaries)))


def run_task(config: FlowpairsConfig, plan: Plan, out_dir: Path, task_index: int, num_tasks: int,
             on_item: Callable[[int], None] | None = None) -> TaskSummary:
    """Make one task's samples into one shard per split; skip when those shards already verify."""
    items = task_block(plan.items, task_index, num_tasks)
    splits = sorted({item.split for item in items})
    summary = TaskSummary(task_index, skipped_sources=dict(plan.skipped_sources))
    if task_is_complete(out_dir, splits, task_index, num_tasks):
        summary.skipped_complete = True
        if on_item:
            on_item(len(items))
        return summary
    estimator = make_estimator(config.flow.estimator) if plan.mode == "video" else None
    dropped: Counter = Counter()
    timings = summary.timings
    with contextlib.ExitStack() as stack:
        writers = open_writers(stack, config, out_dir, SCHEMA, splits, task_index, num_tasks)
        for source_index, group in itertools.groupby(items, key=lambda item: item.source):
            group = list(group)
            source = plan.sources[source_index]
            summary.sources += 1
            if plan.mode == "video":
                results = video_samples(config, plan, source, group, estimator, timings)
            else:
                results = ((item, synth_sample(config, source, item, timings)) for item in group)
            for item, result in results:
                if isinstance(result, Drop):
                    dropped[result.reason] += 1
                    if result.detail and len(summary.details) < _MAX_DETAILS:
                        summary.details.append(result.detail)
                else:
                    _write(writers[item.split], result, source.source_id, timings)
                    summary.samples += 1
                if on_item:
                    on_item(1)
        summary.dropped = dict(sorted(dropped.items()))
        start = time.perf_counter()
        for writer in writers.values():
            writer.close(summary.stats())
        timings["write"] = timings.get("write", 0.0) + time.perf_counter() - start
    return summary


def _write(writer: ShardWriter, sample: dict[str, Any], source_id: str, timings: dict[str, float]) -> None:
    start = time.perf_counter()
    try:
        writer.add(sample)
    except ShardError as exc:  # e.g. a pair of another size than the ones before it
        raise BlurgenError(f"{source_id}: {exc}") from None
    timings["write"] = timings.get("write", 0.0) + time.perf_counter() - start

