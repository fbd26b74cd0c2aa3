"""The farm contract: which task this process is, and running every task here when none is named.

A task is ``(config, seed, task_index, num_tasks)``. Its index comes from ``--task-index``, else
``SLURM_ARRAY_TASK_ID`` (Slurm job arrays), else ``JOB_COMPLETION_INDEX`` (Kubernetes Indexed
Jobs); with none, all tasks run on this machine through joblib. blurgen schedules nothing itself:
the cluster's own array mechanism (or joblib's Dask/Ray backends) does.
"""

from __future__ import annotations

import os
from typing import Callable, Mapping, Sequence, TypeVar

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
