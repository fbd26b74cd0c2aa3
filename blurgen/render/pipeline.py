"""``blurgen render`` end to end: plan, run tasks (Blender batches), write shards and a preview.

One task renders its contiguous block of work items in Blender processes of ``farm.batch_size``
trajectories each, turns every rendered item into samples (:mod:`blurgen.render.samples`) and
writes one shard per split it has items of. A task whose shards exist and verify is skipped, so
re-running the same command finishes a killed or preempted job.
"""

from __future__ import annotations

import contextlib
import dataclasses
import queue
import shutil
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from blurgen.job import Generator, JobSummary, TaskRun, Wording, run_job
from blurgen.render.blender import ItemFailure, RenderedItem, blender_job, item_result, render_batch
from blurgen.render.config import SCHEMA, RenderConfig
from blurgen.render.manifests import load_manifests
from blurgen.render.plan import Plan, WorkItem, make_plan
from blurgen.render.prepare import PreparedItem, SkipItem, prepare_item
from blurgen.render.samples import item_samples


WORDING = Wording(samples="images", sources="trajectories", unit="traj",
                  counts={"dropped": "dropped images", "skipped_items": "skipped trajectories",
                          "truncated": "images cut by the frame (kept, by split)"},
                  job_counts={"skipped_objects": "objects left out (see the object manifest)"})


def render_dataset(config: RenderConfig, out_dir: str | Path, *, task_index: int | None = None,
                   num_tasks: int | None = None, jobs: int = 1, blender: str | None = None,
                   progress: bool = True) -> JobSummary:
    """Render the dataset ``config`` describes into shards in ``out_dir``.

    With a task index (argument, ``SLURM_ARRAY_TASK_ID`` or ``JOB_COMPLETION_INDEX``) only that
    task runs; without one every task runs here, ``jobs`` at a time, and a preview is written.
    """
    objects, backgrounds = load_manifests(config)
    plan = make_plan(config, objects, backgrounds)  # bad inputs fail before the output folder is made
    return run_job(RenderGenerator(config, plan, Path(out_dir), blender), out_dir,
                   task_index=task_index, num_tasks=num_tasks, jobs=jobs, progress=progress)


@dataclasses.dataclass(frozen=True)
class RenderGenerator(Generator):
    """``blurgen render`` for the job skeleton: items are trajectories, rendered in Blender batches."""

    config: RenderConfig
    plan: Plan
    out_dir: Path
    blender: str | None = None
    schema: str = SCHEMA
    name: str = "render"
    wording: Wording = WORDING

    @property
    def items(self) -> Sequence[WorkItem]:
        return self.plan.items

    def job_counts(self) -> dict[str, dict[str, int]]:
        return {"skipped_objects": dict(self.plan.skipped_objects)}

    def make(self, items: Sequence[WorkItem], task: TaskRun) -> None:
        """Render the items in batches of ``farm.batch_size`` (one Blender process each); write
        each item's samples as soon as Blender reports it done."""
        config = self.config
        # A fixed name per task: a killed attempt's leftovers (hundreds of MB of layers) go now.
        work = self.out_dir / f".render-work-{task.summary.task_index:05d}-of-{config.farm.num_tasks:05d}"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        try:
            for number, batch in enumerate(batches(items, config.farm.batch_size)):
                prepared = []
                for item in batch:
                    try:
                        prepared.append(prepare_item(config, self.plan, item))
                    except SkipItem as exc:
                        task.count("skipped_items", exc.reason)
                        task.advance()
                if prepared:
                    folder = work / f"batch-{number:05d}"
                    # Blender renders with the task's cores: its share of this machine or of its Dask worker
                    job = blender_job(config, self.plan, prepared, folder, task.cores)
                    for p, result in _render_streaming(prepared, job, folder, config, self.blender, task.advance):
                        _write_item(config, p, result, task)
                    # only now: the runner checks the items' files on disk when its process ends
                    shutil.rmtree(folder, ignore_errors=True)
        finally:
            shutil.rmtree(work, ignore_errors=True)


def _render_streaming(prepared: Sequence[PreparedItem], job: dict[str, Any], folder: Path,
                      config: RenderConfig, blender: str | None, on_item: Callable[[int], None] | None
                      ) -> Iterator[tuple[PreparedItem, RenderedItem | ItemFailure]]:
    """Render a batch in Blender; yield each item's result, in job order, as soon as it is done.

    One thread waits on the Blender subprocess while the caller composites and writes the items
    already finished, so the numpy side overlaps with rendering instead of following it.
    """
    finished: queue.Queue[int] = queue.Queue()

    def reported(item_id: int) -> None:
        finished.put(int(item_id))
        if on_item:
            on_item(1)

    cancel = threading.Event()
    with ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(render_batch, job, folder, blender=blender, timeout_s=config.farm.timeout_s,
                             on_item=reported, cancel=cancel)
        try:
            done: set[int] = set()
            for p, item in zip(prepared, job["items"]):
                while item["item_id"] not in done and not future.done():
                    with contextlib.suppress(queue.Empty):
                        done.add(finished.get(timeout=0.2))
                if item["item_id"] in done:
                    yield p, item_result(item)
                else:  # the batch is over: its result (or its RenderError, which aborts the task)
                    yield p, future.result()[item["item_id"]]
            future.result()
        finally:
            # An error or Ctrl-C here must not wait for Blender to finish the batch: stop it.
            if not future.done():
                cancel.set()


def _write_item(config: RenderConfig, p: PreparedItem, result: RenderedItem | ItemFailure | None,
                task: TaskRun) -> None:
    """One rendered item's samples into its split's shard (or its failure into the counts)."""
    if result is None:  # reported, yet neither its arrays nor its error report are there
        task.count("skipped_items", "no output")
        return
    if isinstance(result, ItemFailure):
        task.count("skipped_items", _reason_key(result.reason))
        return
    task.source_done()
    rendered = result.load()
    task.add_time("cycles", float(rendered.get("cycles_seconds", 0.0)))  # inside Cycles' render calls
    dropped: Counter = Counter()
    for sample in item_samples(config, p, rendered, dropped):
        task.write(p.item.split, sample)
        if sample["truncated"]:
            task.count("truncated", p.item.split)
    for reason, n in dropped.items():
        task.count("dropped", reason, n)


def batches(items: Sequence[WorkItem], size: int) -> Iterator[Sequence[WorkItem]]:
    """Consecutive items, ``size`` a batch (one Blender process each; it imports each mesh once)."""
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _reason_key(reason: object) -> str:
    """A short, countable reason: the text before any detail in parentheses or after a colon."""
    return str(reason).split(":")[0].split(" (")[0].strip() or "unknown"
