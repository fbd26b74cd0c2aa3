"""``blurgen flowpairs`` end to end: plan, run tasks, write shards, manifest and a preview.

One code path for both modes: the plan (:mod:`blurgen.flowpairs.plan`) lists the items, a task
takes its contiguous block (``blurgen.farm.task_block``), makes each source's samples
(:mod:`blurgen.flowpairs.samples`) and writes one shard per split it has items of. A task whose
shards exist and verify is skipped, so re-running the same command finishes a killed job.
"""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path
from typing import Sequence

from blurgen.flow.estimators import make_estimator
from blurgen.flowpairs.config import SCHEMA, FlowpairsConfig
from blurgen.flowpairs.plan import PairItem, Plan, make_plan
from blurgen.flowpairs.samples import Drop, synth_sample, video_samples
from blurgen.job import Generator, JobSummary, TaskRun, Wording, run_job

WORDING = {mode: Wording(samples="flow pairs", sources="videos" if mode == "video" else "sources", unit="pair",
                         counts={"dropped": "dropped"},
                         job_counts={"skipped_sources": "sources without windows"})
           for mode in ("video", "synth")}


def flowpairs_dataset(config: FlowpairsConfig, out_dir: str | Path, *, task_index: int | None = None,
                      num_tasks: int | None = None, jobs: int = 1, progress: bool = True) -> JobSummary:
    """Make the flow pairs ``config`` describes (``config.mode``: video or synth) into shards in ``out_dir``.

    With a task index (argument, ``SLURM_ARRAY_TASK_ID`` or ``JOB_COMPLETION_INDEX``) only that
    task runs; without one every task runs here, ``jobs`` at a time, and a preview is written.
    """
    if config.mode == "video":
        make_estimator(config.flow.estimator)  # an unknown name fails before any work
    plan = make_plan(config)  # bad inputs fail before the output folder is made
    return run_job(FlowpairsGenerator(config, plan), out_dir, task_index=task_index, num_tasks=num_tasks,
                   jobs=jobs, progress=progress)


@dataclasses.dataclass(frozen=True)
class FlowpairsGenerator(Generator):
    """``blurgen flowpairs`` for the job skeleton: items are blurred images, grouped by source."""

    config: FlowpairsConfig
    plan: Plan
    schema: str = SCHEMA

    @property
    def name(self) -> str:
        return f"flowpairs {self.config.mode}"

    @property
    def wording(self) -> Wording:
        return WORDING[self.config.mode]

    @property
    def items(self) -> Sequence[PairItem]:
        return self.plan.items

    def job_counts(self) -> dict[str, dict[str, int]]:
        return {"skipped_sources": dict(self.plan.skipped_sources)}

    def make(self, items: Sequence[PairItem], task: TaskRun) -> None:
        """Make each source's samples (a video is decoded once for all its windows)."""
        config, plan = self.config, self.plan
        estimator = make_estimator(config.flow.estimator) if plan.mode == "video" else None
        for source_index, group in itertools.groupby(items, key=lambda item: item.source):
            group = list(group)
            source = plan.sources[source_index]
            task.source_done()
            if plan.mode == "video":
                results = video_samples(config, plan, source, group, estimator, task.timings)
            else:
                results = ((item, synth_sample(config, source, item, task.timings)) for item in group)
            for item, result in results:
                if isinstance(result, Drop):
                    task.count("dropped", result.reason)
                    if result.detail:
                        task.detail(result.detail)
                else:
                    task.write(item.split, result)
                task.advance()
