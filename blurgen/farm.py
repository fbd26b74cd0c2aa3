"""The farm contract: which task this process is, and running every task here when none is named.

A task is ``(config, seed, task_index, num_tasks)``. Its index comes from ``--task-index``, else
``SLURM_ARRAY_TASK_ID`` (Slurm job arrays), else ``JOB_COMPLETION_INDEX`` (Kubernetes Indexed
Jobs); with none, all tasks run on this machine through joblib. blurgen schedules nothing itself:
the cluster's own array mechanism (or joblib's Dask/Ray backends) does.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence, TypeVar

import h5py

from blurgen.errors import BlurgenError

T = TypeVar("T")

TASK_INDEX_VARIABLES = ("SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX")


def task_index_from(option: int | None, num_tasks: int,
                    environ: Mapping[str, str] | None = None) -> int | None:
    """This process's task index, or None when it should run every task itself."""
    environ = os.environ if environ is None else environ
    source, value = "--task-index", option
    if value is None:
        for name in TASK_INDEX_VARIABLES:
            if environ.get(name, "").strip():
                source, text = name, environ[name].strip()
                try:
                    value = int(text)
                except ValueError:
                    raise BlurgenError(f"{name}={text!r} is not a task index (an integer)") from None
                break
    if value is not None and not 0 <= value < num_tasks:
        raise BlurgenError(f"{source} is {value} but the job has {num_tasks} task(s): indices run "
                           f"0..{num_tasks - 1} (set --num-tasks to the array size, arrays from 0)")
    return value


def run_tasks(run_one: Callable[[int], T], tasks: Sequence[int], jobs: int) -> list[T]:
    """Run ``run_one`` for every task, ``jobs`` at a time in separate processes (joblib)."""
    if jobs <= 1 or len(tasks) <= 1:
        return [run_one(t) for t in tasks]
    from joblib import Parallel, delayed

    return Parallel(n_jobs=jobs, backend="loky")(delayed(run_one)(t) for t in tasks)


def job_identity(config_json: str, run_only: Iterable[Sequence[str]] = ()) -> dict[str, Any]:
    """A shard's config without the settings (dotted paths) that do not change its samples."""
    config = json.loads(config_json)
    for *sections, key in run_only:
        node = config
        for name in sections:
            node = node.get(name, {}) if isinstance(node, dict) else {}
        if isinstance(node, dict):
            node.pop(key, None)
    return config


def stored_config_json(config: Any) -> str:
    """The config JSON a job's shards store: the resolved config without its run-only fields.

    Run-only fields say how a job ran (worker processes, timeouts, the preview, the farm backend
    and scheduler), not what it made; leaving them out keeps a job's shards the same bytes
    whether it ran here, as an array job or on a Dask cluster.
    """
    from blurgen.config import to_json
    from blurgen.config.schema import run_only_keys

    stored = job_identity(to_json(config), run_only_keys(type(config)))
    return json.dumps(stored, sort_keys=True, separators=(",", ":"))  # to_json's canonical form


def refuse_other_jobs(out_dir: Path, config_json: str, run_only: Iterable[Sequence[str]] = ()) -> None:
    """Stop when ``out_dir`` holds shards of another job (other config, seed or task count).

    Finished shards are skipped on a re-run; one made with other settings must not be taken
    for this job's (nor its samples mixed with this job's by the reader). Settings named in
    ``run_only`` (how a job runs, not what it makes: the config fields marked ``run_only``) may
    differ.
    """
    run_only = list(run_only)
    ours = job_identity(config_json, run_only)
    for path in sorted(Path(out_dir).glob("*.h5")):
        try:
            with h5py.File(path, "r") as f:
                other = f.attrs.get("config")
        except OSError:
            continue  # not a readable shard: verification deals with it
        if other is not None and job_identity(other, run_only) != ours:
            raise BlurgenError(f"{out_dir} holds shards of another job ({path.name} has another config, "
                               "seed or task count): choose a new --out, or delete them to start over")


@contextlib.contextmanager
def progress_bar(total: int, unit: str, desc: str, enabled: bool = True) -> Iterator[Callable[[int], None]]:
    """A tqdm bar as an ``advance(n)`` callable; quiet when ``enabled`` is false or not a terminal."""
    from tqdm import tqdm

    with tqdm(total=total, unit=unit, desc=desc, disable=not enabled or None) as bar:
        yield bar.update


def task_block(items: Sequence[T], task_index: int, num_tasks: int) -> Sequence[T]:
    """Task ``task_index`` of ``num_tasks`` takes a contiguous block of the plan's items.

    Contiguous blocks keep the items of one source (a photo, a video, an object) together, so
    a task loads each source once; block sizes differ by at most one item.
    """
    if num_tasks < 1 or not 0 <= task_index < num_tasks:
        raise BlurgenError(f"task index {task_index} is outside 0..{num_tasks - 1} (num_tasks {num_tasks})")
    n = len(items)
    return items[task_index * n // num_tasks:(task_index + 1) * n // num_tasks]
