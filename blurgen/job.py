"""What every generator job does the same way around its own samples.

A job (``render``, ``composite``, ``flowpairs``) is cut into tasks (:mod:`blurgen.farm`); each
task writes one shard per split it has items of, and is skipped when those shards already
verify. This module holds that skeleton, so the generators differ only in how they make samples:

- :func:`start_job`: the task count, this process's task (farm contract), the output folder, and
  a refusal if the folder holds another job's shards;
- :func:`run_job_tasks`: the tasks, here one after another with a progress bar, or ``jobs`` at
  a time through joblib;
- :func:`task_is_complete`, :func:`open_writers`: the skip rule and the task's shard writers;
- :func:`finish_job`: the contact sheet when the whole job ran here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence, TypeVar

from blurgen.config import to_json
from blurgen.farm import progress_bar, refuse_other_jobs, run_tasks, task_index_from
from blurgen.shards import ShardWriter, shard_filename, shard_is_complete

C = TypeVar("C")
S = TypeVar("S")


@dataclasses.dataclass(frozen=True)
class JobStart:
    config: Any              # the config, with farm.num_tasks set to the job's task count
    out_dir: Path
    num_tasks: int
    index: int | None        # this process's task, or None: every task runs here
    tasks: list[int]         # the tasks this process runs


def start_job(config: C, out_dir: str | Path, task_index: int | None, num_tasks: int | None,
              run_only: Mapping[str, Sequence[str]]) -> JobStart:
    """Resolve the farm contract for ``config`` (which has a ``farm.num_tasks``) and ``out_dir``."""
    if num_tasks is not None:
        farm = dataclasses.replace(config.farm, num_tasks=num_tasks)  # type: ignore[attr-defined]
        config = dataclasses.replace(config, farm=farm)  # type: ignore[type-var]
    num_tasks = config.farm.num_tasks  # type: ignore[attr-defined]
    index = task_index_from(task_index, num_tasks)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    refuse_other_jobs(out_dir, to_json(config), run_only)
    tasks = [index] if index is not None else list(range(num_tasks))
    return JobStart(config, out_dir, num_tasks, index, tasks)


def run_job_tasks(run_task: Callable[[int, Callable[[int], None] | None], S], tasks: Sequence[int], *,
                  jobs: int, total: int, unit: str, desc: str, progress: bool = True) -> list[S]:
    """Run ``run_task(task, on_item)`` for every task: here with a progress bar over ``total``
    items, or ``jobs`` at a time in worker processes, each with its share of the cores."""
    if jobs <= 1 or len(tasks) <= 1:
        with progress_bar(total, unit, desc, progress) as advance:
            return [run_task(t, advance) for t in tasks]
    threads = max(1, len(os.sched_getaffinity(0)) // jobs)
    return run_tasks(lambda t: _with_threads(threads, run_task, t), tasks, jobs)


def _with_threads(threads: int, run_task: Callable[[int, Any], S], task: int) -> S:
    import cv2

    cv2.setNumThreads(threads)  # a joblib worker process: OpenCV would start a thread per core
    return run_task(task, None)


def task_is_complete(out_dir: Path, splits: Iterable[str], task_index: int, num_tasks: int) -> bool:
    """The farm skip rule: every shard this task writes exists and verifies."""
    return all(shard_is_complete(out_dir, shard_filename(s, task_index, num_tasks)) for s in splits)


def open_writers(stack: contextlib.ExitStack, config: Any, out_dir: Path, schema: str, splits: Iterable[str],
                 task_index: int, num_tasks: int) -> dict[str, ShardWriter]:
    """One shard writer per split, closed (or, on an error, deleted) with ``stack``."""
    return {s: stack.enter_context(ShardWriter(
        out_dir, schema=schema, split=s, task_index=task_index, num_tasks=num_tasks, seed=config.seed,
        config_json=to_json(config), compression=config.output.compression,
        compression_level=config.output.compression_level)) for s in splits}


def finish_job(job: JobStart, samples: int) -> Path | None:
    """The contact sheet ``preview.png``, when every task ran here and made samples."""
    if job.index is not None or not job.config.output.preview or not samples:
        return None
    from blurgen.viz.preview import preview_shards

    return preview_shards(job.out_dir, job.out_dir / "preview.png")


def describe_tasks(tasks: Sequence[Any]) -> list[str]:
    """The summary line about tasks skipped because their shards were complete (or none)."""
    skipped = sum(1 for t in tasks if t.skipped_complete)
    return [f"{skipped} task(s) already complete, skipped"] if skipped else []


def count_line(label: str, counts: Mapping[str, int]) -> list[str]:
    """``["label: a 3, b 1"]`` (sorted by key), or nothing when there is nothing to count."""
    return [f"{label}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))] if counts else []
