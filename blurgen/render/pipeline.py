"""``blurgen render`` end to end: plan, run tasks (Blender batches), write shards and a preview.

One task renders its contiguous block of work items in Blender processes of ``farm.batch_size``
trajectories each, turns every rendered item into samples (:mod:`blurgen.render.samples`) and
writes one shard per split it has items of. A task whose shards exist and verify is skipped, so
re-running the same command finishes a killed or preempted job.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import queue
import shutil
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from blurgen.job import (count_line, describe_tasks, finish_job, open_writers, run_job_tasks, start_job,
                         task_is_complete)
from blurgen.render.blender import ItemFailure, RenderedItem, item_result, render_batch
from blurgen.render.config import SCHEMA, RenderConfig
from blurgen.render.plan import Plan, WorkItem, load_manifests, make_plan
from blurgen.render.samples import PreparedItem, SkipItem, item_samples, needed_renders, prepare_item
from blurgen.shards import ShardWriter


# Settings that change how a job runs, not what its shards hold: a re-run may change them.
RUN_ONLY = {"farm": ("batch_size", "timeout_s"), "output": ("preview",)}


@dataclasses.dataclass
class TaskSummary:
    """What one task did; also stored (as ``stats``) in each of its shards."""

    task_index: int
    skipped_complete: bool = False  # its shards already existed and verified
    items: int = 0
    images: int = 0
    cycles_seconds: float = 0.0  # wall time inside Cycles' render calls (not stored: it varies)
    dropped: dict[str, int] = dataclasses.field(default_factory=dict)        # image filter -> count
    skipped_items: dict[str, int] = dataclasses.field(default_factory=dict)  # reason -> count
    # objects the manifest marks unusable (broken, untextured): the job's, left out when planning
    skipped_objects: dict[str, int] = dataclasses.field(default_factory=dict)

    def stats(self) -> dict[str, Any]:
        return {"items": self.items, "images": self.images, "dropped": self.dropped,
                "skipped_items": self.skipped_items, "skipped_objects": self.skipped_objects}


@dataclasses.dataclass
class RenderSummary:
    out_dir: Path
    tasks: list[TaskSummary]
    preview: Path | None

    @property
    def images(self) -> int:
        return sum(t.images for t in self.tasks)

    def describe(self) -> str:
        ran = [t for t in self.tasks if not t.skipped_complete]
        dropped: Counter = Counter()
        skipped: Counter = Counter()
        for t in self.tasks:
            dropped.update(t.dropped)
            skipped.update(t.skipped_items)
        lines = [f"{self.images} images from {sum(t.items for t in ran)} trajectories in {len(ran)} "
                 f"task(s) -> {self.out_dir}", *describe_tasks(self.tasks)]
        lines += count_line("dropped images", dropped)
        lines += count_line("skipped trajectories", skipped)
        if self.tasks and self.tasks[0].skipped_objects:
            lines.append("objects left out (see the object manifest): "
                         + ", ".join(f"{k} {v}" for k, v in self.tasks[0].skipped_objects.items()))
        if self.preview:
            lines.append(f"preview: {self.preview}")
        return "\n".join(lines)


def render_dataset(config: RenderConfig, out_dir: str | Path, *, task_index: int | None = None,
                   num_tasks: int | None = None, jobs: int = 1, blender: str | None = None,
                   progress: bool = True) -> RenderSummary:
    """Render the dataset ``config`` describes into shards in ``out_dir``.

    With a task index (argument, ``SLURM_ARRAY_TASK_ID`` or ``JOB_COMPLETION_INDEX``) only that
    task runs; without one every task runs here, ``jobs`` at a time, and a preview is written.
    """
    objects, backgrounds = load_manifests(config)
    plan = make_plan(config, objects, backgrounds)  # bad inputs fail before the output folder is made
    job = start_job(config, out_dir, task_index, num_tasks, RUN_ONLY)
    config = job.config
    # the cores this process may use (a farm slot, not the whole node), shared by the jobs
    threads = max(1, len(os.sched_getaffinity(0)) // max(1, jobs))
    total = sum(len(plan.task_items(t, job.num_tasks)) for t in job.tasks)
    summaries = run_job_tasks(
        lambda t, on_item: run_task(config, plan, job.out_dir, t, job.num_tasks, blender=blender,
                                    threads=threads, on_item=on_item),
        job.tasks, jobs=jobs, total=total, unit="traj", desc="render", progress=progress)
    return RenderSummary(job.out_dir, summaries, finish_job(job, sum(s.images for s in summaries)))


def run_task(config: RenderConfig, plan: Plan, out_dir: Path, task_index: int, num_tasks: int, *,
             blender: str | None = None, threads: int = 0,
             on_item: Callable[[int], None] | None = None) -> TaskSummary:
    """Render one task's items into one shard per split; skip when those shards already verify."""
    items = plan.task_items(task_index, num_tasks)
    splits = sorted({item.split for item in items})
    summary = TaskSummary(task_index, skipped_objects=dict(plan.skipped_objects))
    if task_is_complete(out_dir, splits, task_index, num_tasks):
        summary.skipped_complete = True
        if on_item:
            on_item(len(items))
        return summary
    dropped: Counter = Counter()
    skipped: Counter = Counter()
    with contextlib.ExitStack() as stack:
        writers = open_writers(stack, config, out_dir, SCHEMA, splits, task_index, num_tasks)
        # A fixed name per task: a killed attempt's leftovers (hundreds of MB of layers) go now.
        work = out_dir / f".render-work-{task_index:05d}-of-{num_tasks:05d}"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        stack.callback(shutil.rmtree, work, ignore_errors=True)
        for number, batch in enumerate(batches(items, config.farm.batch_size)):
            prepared = []
            for item in batch:
                try:
                    prepared.append(prepare_item(config, plan, item))
                except SkipItem as exc:
                    skipped[exc.reason] += 1
                    if on_item:
                        on_item(1)
            if prepared:
                folder = work / f"batch-{number:05d}"
                job = blender_job(config, plan, prepared, folder, threads)
                for p, result in _render_streaming(prepared, job, folder, config, blender, on_item):
                    _write_item(config, p, result, writers, summary, dropped, skipped)
                # only now: the runner checks the items' files on disk when its process ends
                shutil.rmtree(folder, ignore_errors=True)
        summary.dropped, summary.skipped_items = dict(sorted(dropped.items())), dict(sorted(skipped.items()))
        for writer in writers.values():
            writer.close(summary.stats())
    return summary


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
                writers: dict[str, ShardWriter], summary: TaskSummary, dropped: Counter,
                skipped: Counter) -> None:
    """One rendered item's samples into its split's shard (or its failure into the counts)."""
    if result is None:  # reported, yet neither its arrays nor its error report are there
        skipped["no output"] += 1
        return
    if isinstance(result, ItemFailure):
        skipped[_reason_key(result.reason)] += 1
        return
    summary.items += 1
    rendered = result.load()
    summary.cycles_seconds += float(rendered.get("cycles_seconds", 0.0))
    for sample in item_samples(config, p, rendered, dropped):
        writers[p.item.split].add(sample)
        summary.images += 1


def blender_job(config: RenderConfig, plan: Plan, prepared: Sequence[PreparedItem], work: Path,
                threads: int) -> dict[str, Any]:
    """The JSON job one Blender process renders (contract: blender_scripts/render_trajectories.py)."""
    c, cy = config.camera, config.cycles
    layers, silhouettes = needed_renders(config)
    return {
        "width": c.width, "height": c.height,
        "camera": {"focal_mm": c.focal_mm, "sensor_width_mm": c.sensor_width_mm},
        "cycles": {"device": cy.device, "samples": cy.samples, "adaptive_threshold": cy.adaptive_threshold,
                   "denoise": cy.denoise, "max_bounces": cy.max_bounces, "threads": threads,
                   "pixel_filter_width": cy.pixel_filter_width},
        "silhouette_samples": cy.silhouette_samples,
        "items": [{
            "item_id": p.item.item_id,
            "mesh": str(plan.objects.path_of(p.item.object_id)),
            "out": str(work / f"item-{p.item.item_id:013d}.npz"),
            **p.trajectory.to_job(),
            "seed": p.cycles_seed,
            "renders": {"sub_intervals": layers, "sharp": config.images.sharp, "silhouettes": silhouettes,
                        # the flow's object-coordinate layers, at the windows' endpoints
                        **({"coords": silhouettes} if config.images.flow else {})},
        } for p in prepared],
    }


def batches(items: Sequence[WorkItem], size: int) -> Iterator[Sequence[WorkItem]]:
    """Consecutive items, ``size`` a batch (one Blender process each; it imports each mesh once)."""
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _reason_key(reason: object) -> str:
    """A short, countable reason: the text before any detail in parentheses or after a colon."""
    return str(reason).split(":")[0].split(" (")[0].strip() or "unknown"
