"""The one skeleton every generator job runs in: tasks, the skip rule, shard writers, summaries.

A job (``render``, ``composite``, ``flowpairs``) is cut into tasks (:mod:`blurgen.farm`); each
task writes one shard per split it has items of, and is skipped when those shards already
verify. A generator supplies only what differs (the :class:`Generator` protocol): its plan's
items, in order, and how the items of a task become samples. Everything else is here:

- :func:`run_job`: the farm contract (task count, this process's task, the output folder, the
  refusal of another job's folder), the tasks (here with a progress bar, ``jobs`` at a time
  through joblib, or on a Dask cluster with ``farm.backend: dask``), and the contact sheet when
  every task ran from here;
- :func:`run_task`: one task: its block of items, the skip rule, one writer per split, the
  counts, closing the shards with the task's stats (or deleting them on an error);
- :class:`TaskSummary`, :class:`JobSummary`: what a task and a job did, one shape for every
  generator, worded by the generator's :class:`Wording`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Protocol, Sequence, TypeVar

from blurgen.config import to_json
from blurgen.config.schema import run_only_keys
from blurgen.errors import BlurgenError, ShardError
from blurgen.farm import progress_bar, refuse_other_jobs, run_tasks, stored_config_json, task_block, task_index_from
from blurgen.shards import ShardWriter, shard_filename, shard_is_complete

S = TypeVar("S")


class Item(Protocol):
    """A work item of a plan: it knows the split its samples go to."""

    split: str


@dataclasses.dataclass(frozen=True)
class Wording:
    """How a generator's summary names its things."""

    samples: str                 # what a sample is: "images", "samples", "flow pairs"
    sources: str                 # what TaskSummary.sources counts: "trajectories", "photos", ...
    unit: str                    # the progress bar's unit: one work item
    counts: Mapping[str, str] = dataclasses.field(default_factory=dict)  # count table -> summary label
    job_counts: Mapping[str, str] = dataclasses.field(default_factory=dict)  # the plan's tables -> label


class Generator:
    """What a generator supplies to the skeleton; subclasses are frozen dataclasses with these
    fields (see :class:`blurgen.render.pipeline.RenderGenerator` for one)."""

    config: Any        # a config with ``seed``, ``output`` and ``farm.num_tasks``
    schema: str        # the shard schema its samples follow
    name: str          # the progress bar's label
    wording: Wording

    @property
    def items(self) -> Sequence[Item]:
        """Every work item of the job, in plan order (a task takes a contiguous block)."""
        raise NotImplementedError

    def make(self, items: Sequence[Item], task: TaskRun) -> None:
        """Turn a task's items into samples: ``task.write`` each one, ``task.count`` what was
        dropped or skipped, ``task.advance`` the progress bar by each item done."""
        raise NotImplementedError

    def job_counts(self) -> dict[str, dict[str, int]]:
        """Counts the plan made (e.g. objects left out), the same for every task."""
        return {}

    def before_tasks(self, tasks: Sequence[int], num_tasks: int) -> None:
        """Work the tasks that run from this process share, done once before they start on this
        machine (not before they go to a Dask cluster: there each task does its own, as on a farm)."""


@dataclasses.dataclass
class TaskSummary:
    """What one task did; :meth:`stats` is also stored in each of its shards."""

    task_index: int
    skipped_complete: bool = False  # its shards already existed and verified
    sources: int = 0                # work units done: trajectories rendered, photos or videos read
    samples: int = 0                # samples written
    counts: dict[str, dict[str, int]] = dataclasses.field(default_factory=dict)  # table -> key -> n
    details: list[str] = dataclasses.field(default_factory=list)  # named bad inputs (a few)
    # seconds per stage (e.g. cycles, decode, flow, write); not stored: it varies run to run
    timings: dict[str, float] = dataclasses.field(default_factory=dict)

    def stats(self) -> dict[str, Any]:
        return {"sources": self.sources, "samples": self.samples, **self.counts, "details": self.details}


@dataclasses.dataclass
class JobSummary:
    """What a job did, task by task; ``describe()`` is what the command prints."""

    out_dir: Path
    wording: Wording
    tasks: list[TaskSummary]
    preview: Path | None

    @property
    def samples(self) -> int:
        return sum(t.samples for t in self.tasks)

    def count(self, table: str) -> Counter:
        """One count table summed over the tasks that ran."""
        total: Counter = Counter()
        for t in self.tasks:
            total.update(t.counts.get(table, {}))
        return total

    def describe(self) -> str:
        w = self.wording
        ran = [t for t in self.tasks if not t.skipped_complete]
        lines = [f"{sum(t.samples for t in ran)} {w.samples} from {sum(t.sources for t in ran)} {w.sources} "
                 f"in {len(ran)} task(s) -> {self.out_dir}"]
        skipped = len(self.tasks) - len(ran)
        if skipped:
            lines.append(f"{skipped} task(s) already complete, skipped")
        for table, label in w.counts.items():
            lines += count_line(label, self.count(table))
        details = [d for t in ran for d in t.details]
        lines += [f"  {d}" for d in details[:5]]
        if len(details) > 5:
            lines.append(f"  ... and {len(details) - 5} more (see the shards' stats)")
        for table, label in w.job_counts.items():  # the plan's: every task holds the same table
            lines += count_line(label, self.tasks[0].counts.get(table, {}) if self.tasks else {})
        if self.preview:
            lines.append(f"preview: {self.preview}")
        return "\n".join(lines)


class TaskRun:
    """A running task as its generator sees it: where samples go and what is counted."""

    MAX_DETAILS = 20  # named bad inputs kept per task (the counts are complete)

    def __init__(self, summary: TaskSummary, writers: Mapping[str, ShardWriter],
                 on_item: Callable[[int], None] | None, *, cores: int = 1) -> None:
        self.summary = summary
        self.cores = cores  # what the task may use, e.g. Blender's render threads
        self._writers = writers
        self._on_item = on_item
        self._counts: dict[str, Counter] = {}

    @property
    def timings(self) -> dict[str, float]:
        return self.summary.timings

    def write(self, split: str, sample: Mapping[str, Any]) -> None:
        """Add ``sample`` to the shard of ``split``; a sample the shard refuses names itself."""
        start = time.perf_counter()
        try:
            self._writers[split].add(sample)
        except ShardError as exc:  # e.g. a video of another size than the ones before it
            raise BlurgenError(f"{sample.get('sample_id', '?')}: {exc}") from None
        self.summary.samples += 1
        self._time("write", start)

    def count(self, table: str, key: str, n: int = 1) -> None:
        """Count ``n`` under ``key`` in the table ``table`` (e.g. "dropped", "small")."""
        self._counts.setdefault(table, Counter())[key] += n

    def source_done(self) -> None:
        self.summary.sources += 1

    def detail(self, text: str) -> None:
        if len(self.summary.details) < self.MAX_DETAILS:
            self.summary.details.append(text)

    def advance(self, n: int = 1) -> None:
        """Move the progress bar by ``n`` work items."""
        if self._on_item:
            self._on_item(n)

    def add_time(self, stage: str, seconds: float) -> None:
        self.timings[stage] = self.timings.get(stage, 0.0) + seconds

    def _time(self, stage: str, start: float) -> None:
        self.add_time(stage, time.perf_counter() - start)

    def close(self) -> None:
        """Close every shard with the task's stats (counts sorted, so the bytes are the same)."""
        for table, counter in sorted(self._counts.items()):
            self.summary.counts[table] = dict(sorted(counter.items()))
        start = time.perf_counter()
        for writer in self._writers.values():
            writer.close(self.summary.stats())
        self._time("write", start)


def run_job(generator: Generator, out_dir: str | Path, *, task_index: int | None = None,
            num_tasks: int | None = None, jobs: int = 1, progress: bool = True) -> JobSummary:
    """Run ``generator``'s job into ``out_dir`` under the farm contract.

    With a task index (argument, ``SLURM_ARRAY_TASK_ID`` or ``JOB_COMPLETION_INDEX``) only that
    task runs; without one every task runs from here (``farm.backend``: on this machine, ``jobs``
    at a time, or on the Dask cluster at ``farm.scheduler``), and a preview is written.
    ``num_tasks`` overrides the config's ``farm.num_tasks`` (and is stored with it).
    """
    config = generator.config
    if num_tasks is not None:
        farm = dataclasses.replace(config.farm, num_tasks=num_tasks)
        generator = dataclasses.replace(generator, config=dataclasses.replace(config, farm=farm))  # type: ignore
    num_tasks = generator.config.farm.num_tasks
    index = task_index_from(task_index, num_tasks)
    out = Path(out_dir)
    with _dask_client_if_asked(generator.config.farm, index, jobs) as (client, resources):  # before any write
        out.mkdir(parents=True, exist_ok=True)
        refuse_other_jobs(out, to_json(generator.config), run_only_keys(type(generator.config)))
        tasks = [index] if index is not None else list(range(num_tasks))
        if client is None:  # on Dask the tasks run on the workers and each does its own share
            generator.before_tasks(tasks, num_tasks)
        sizes = [len(task_block(generator.items, t, num_tasks)) for t in tasks]
        unit, desc = generator.wording.unit, generator.name
        if client is not None:
            from blurgen.dask_farm import run_on_dask

            with progress_bar(sum(sizes), unit, desc, progress) as advance:  # moves as each task finishes
                summaries = run_on_dask(client, _run_task_on_dask_worker, generator,
                                        [(out, t, num_tasks, resources) for t in tasks], resources,
                                        on_done=lambda i: advance(sizes[i]))
        else:
            cores = task_cores(jobs if len(tasks) > 1 else 1)
            summaries = run_job_tasks(lambda t, on_item: run_task(generator, out, t, num_tasks, on_item, cores=cores),
                                      tasks, jobs=jobs, total=sum(sizes), unit=unit, desc=desc,
                                      progress=progress)
    preview = None
    if index is None and generator.config.output.preview and any(s.samples for s in summaries):
        from blurgen.viz.preview import preview_shards

        preview = preview_shards(out, out / "preview.png")
    return JobSummary(out, generator.wording, summaries, preview)


def run_task(generator: Generator, out_dir: Path, task_index: int, num_tasks: int,
             on_item: Callable[[int], None] | None = None, *, cores: int | None = None) -> TaskSummary:
    """One task's items into one shard per split; skipped when those shards already verify.

    ``cores``: the CPU cores the task may use (its share of this process's or the Dask worker's);
    default: every core this process may use."""
    items = task_block(generator.items, task_index, num_tasks)
    splits = sorted({item.split for item in items})
    summary = TaskSummary(task_index, counts=generator.job_counts())
    if all(shard_is_complete(out_dir, shard_filename(s, task_index, num_tasks)) for s in splits):
        summary.skipped_complete = True
        if on_item:
            on_item(len(items))
        return summary
    config = generator.config
    with contextlib.ExitStack() as stack:  # on an error every writer deletes its temporary file
        writers = {s: stack.enter_context(ShardWriter(
            out_dir, schema=generator.schema, split=s, task_index=task_index, num_tasks=num_tasks,
            seed=config.seed, config_json=stored_config_json(config), compression=config.output.compression,
            compression_level=config.output.compression_level)) for s in splits}
        task = TaskRun(summary, writers, on_item, cores=cores or task_cores(1))
        generator.make(items, task)
        task.close()
    return summary


def run_job_tasks(run_one: Callable[[int, Callable[[int], None] | None], S], tasks: Sequence[int], *,
                  jobs: int, total: int, unit: str, desc: str, progress: bool = True) -> list[S]:
    """Run ``run_one(task, on_item)`` for every task: here with a progress bar over ``total``
    items, or ``jobs`` at a time in worker processes, each with its share of the cores."""
    if jobs <= 1 or len(tasks) <= 1:
        with progress_bar(total, unit, desc, progress) as advance:
            return [run_one(t, advance) for t in tasks]
    return run_tasks(lambda t: _with_threads(task_cores(jobs), run_one, t), tasks, jobs)


def task_cores(tasks_at_once: int) -> int:
    """The cores each of ``tasks_at_once`` tasks run side by side here may use: this process's
    share of the machine (a farm slot's affinity, not the whole node) divided among them."""
    return max(1, len(os.sched_getaffinity(0)) // max(1, tasks_at_once))


@contextlib.contextmanager
def _dask_client_if_asked(farm: Any, index: int | None, jobs: int
                          ) -> Iterator[tuple[Any, dict[str, float]]]:
    """A client of the Dask scheduler and the resources each task asks for when ``farm.backend``
    is ``dask``, else ``(None, {})``; every refusal comes before the output folder is touched."""
    if farm.backend != "dask":
        yield None, {}
        return
    if index is not None:
        raise BlurgenError(f"backend dask runs every task on the cluster, but this process is task {index} "
                           "(--task-index, SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX): drop one of them")
    if jobs > 1:
        raise BlurgenError("--jobs is for backend local: on Dask, the workers' threads (and --resources) "
                           "decide how many tasks run at once")
    from blurgen.dask_farm import dask_client, parse_resources

    resources = parse_resources(farm.resources)  # a malformed resource fails before connecting
    with dask_client(farm.scheduler) as client:
        yield client, resources


def _run_task_on_dask_worker(generator: Generator, out_dir: Path, task_index: int, num_tasks: int,
                             resources: Mapping[str, float]) -> TaskSummary:
    """One task on a Dask worker, with the worker's cores shared by the tasks it runs at once."""
    from blurgen.dask_farm import worker_cores

    cores = worker_cores(resources)
    return _with_threads(cores, lambda t, _: run_task(generator, out_dir, t, num_tasks, cores=cores), task_index)


def _with_threads(threads: int, run_one: Callable[[int, Any], S], task: int) -> S:
    import cv2

    cv2.setNumThreads(threads)  # a joblib worker process: OpenCV would start a thread per core
    return run_one(task, None)


def count_line(label: str, counts: Mapping[str, int]) -> list[str]:
    """``["label: a 3, b 1"]`` (sorted by key), or nothing when there is nothing to count."""
    return [f"{label}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))] if counts else []
