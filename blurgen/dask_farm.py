"""Running a job's tasks on an existing Dask cluster, through joblib's Dask backend.

blurgen schedules nothing: it connects to a scheduler the user started (``dask scheduler``,
dask-jobqueue's ``SLURMCluster``, a Kubernetes operator), and joblib submits one Dask task per
blurgen task (``batch_size=1``: no auto-batching, so a lost worker costs Dask one task to rerun,
and each task's shards are written by one call). Dask reruns a task whose worker died (up to its
``distributed.scheduler.allowed-failures``); the rerun is an ordinary task run, so the skip rule
and the shard writer's temporary names apply as on a farm array.

``distributed`` is an optional dependency (``pip install 'blurgen[dask]'``): it is imported only
here, and only when the Dask backend is asked for.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import sys
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence, TypeVar

from joblib._dask import DaskDistributedBackend  # to subclass; importable without dask installed

from blurgen.errors import BlurgenError

R = TypeVar("R")

INSTALL_HINT = "pip install 'blurgen[dask]'"


def parse_resources(specs: Sequence[str]) -> dict[str, float]:
    """``["GPU=1", "MEM=4e9 SSD=1"]`` -> ``{"GPU": 1.0, "MEM": 4e9, "SSD": 1.0}``.

    Each spec holds one or more ``NAME=AMOUNT`` pairs separated by spaces or commas (the form
    ``dask worker --resources`` takes); a name given twice keeps its last amount.
    """
    resources: dict[str, float] = {}
    for spec in specs:
        for pair in re.split(r"[\s,]+", spec.strip()):
            if not pair:
                continue
            name, sep, amount = pair.partition("=")
            try:
                value = float(amount)
            except ValueError:
                value = -1.0
            if not sep or not name or not value > 0:
                raise BlurgenError(f"resource {pair!r} is not NAME=AMOUNT with an amount above 0 "
                                   "(e.g. --resources GPU=1)")
            resources[name] = value
    return resources


def scheduler_address(scheduler: str) -> str:
    """The scheduler's address: ``scheduler`` itself, or the one its scheduler file names."""
    scheduler = scheduler.strip()
    if not scheduler:
        raise BlurgenError("backend dask needs a scheduler: --scheduler ADDRESS (or farm.scheduler), the "
                           "address of a running Dask scheduler (tcp://host:8786) or its scheduler file")
    if not (scheduler.endswith(".json") or Path(scheduler).is_file()):
        return scheduler
    try:
        address = json.loads(Path(scheduler).read_text("utf-8"))["address"]
    except (OSError, ValueError, KeyError, TypeError):
        raise BlurgenError(f"scheduler file {scheduler} cannot be read as one (a JSON file with an 'address', "
                           "as `dask scheduler --scheduler-file` writes): check the path") from None
    return str(address)


@contextlib.contextmanager
def dask_client(scheduler: str) -> Iterator[Any]:
    """A ``distributed.Client`` of the scheduler at ``scheduler`` (address or scheduler file).

    The scheduler is reached once before the client is made, so that a wrong address or a
    scheduler that is not running is one line (after ``distributed.comm.timeouts.connect``,
    30 s by default) rather than a client's traceback.
    """
    try:
        from distributed import Client
        from distributed.comm import connect
    except ImportError:
        raise BlurgenError(f"backend dask needs Dask's distributed package, which is not installed: "
                           f"{INSTALL_HINT}") from None
    address = scheduler_address(scheduler)

    async def reach() -> None:
        comm = await connect(address)
        await comm.close()

    try:
        asyncio.run(reach())
    except (OSError, ValueError, TimeoutError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise BlurgenError(f"cannot reach the Dask scheduler at {address} ({reason}): start it, or check "
                           "--scheduler and that this machine may connect to it") from None
    client = Client(address, set_as_default=False)
    try:
        yield client
    finally:
        client.close()


def run_on_dask(client: Any, function: Callable[..., R], shared: Any, calls: Sequence[tuple],
                resources: Mapping[str, float], on_done: Callable[[int], None] | None = None) -> list[R]:
    """``[function(shared, *call) for call in calls]``, one Dask task each, through joblib.

    ``shared`` (e.g. a generator with its whole plan) is sent to the workers once (joblib's
    ``scatter``), not once per task. Each task holds ``resources`` on its worker while it runs.
    ``on_done(i)`` is called here as call ``i`` finishes (in the order they finish); the results
    come back in the order of ``calls``.
    """
    from joblib import Parallel, delayed, parallel_config

    _wait_for_workers(client, resources)
    results: dict[int, R] = {}
    backend = _ClusterOnly(client=client, scatter=[shared], resources=dict(resources) or None)
    with parallel_config(backend=backend):
        # pre_dispatch "all": every task goes to the scheduler at once, which queues them and lets
        # an adaptive cluster scale to the backlog
        parallel = Parallel(n_jobs=-1, batch_size=1, pre_dispatch="all", return_as="generator_unordered")
        for i, result in parallel(delayed(_numbered)(i, function, shared, *call) for i, call in enumerate(calls)):
            results[i] = result
            if on_done:
                on_done(i)
    return [results[i] for i in range(len(calls))]


class _ClusterOnly(DaskDistributedBackend):  # type: ignore[misc]
    """joblib's Dask backend, never running the calls in this process.

    joblib runs a call in the calling process when its backend reports one job at a time, which
    the Dask backend does for a cluster of one worker thread: the tasks would then run here, not
    on the cluster. Reporting at least two keeps them on the workers (the number has no other
    use with ``batch_size=1`` and ``pre_dispatch="all"``).
    """

    def effective_n_jobs(self, n_jobs: int) -> int:
        return max(2, super().effective_n_jobs(n_jobs))


def _numbered(i: int, function: Callable[..., R], *args: Any) -> tuple[int, R]:
    return i, function(*args)


def _wait_for_workers(client: Any, resources: Mapping[str, float]) -> None:
    """Wait, saying so once, until a worker that can run the tasks (one with ``resources``) is
    connected: without limit, as Slurm may queue workers for hours.

    The wait is a probe task with the tasks' resources rather than a wait for workers: an adaptive
    cluster (dask-jobqueue's ``adapt``) starts workers only for tasks it sees queued.
    """
    workers = client.scheduler_info(n_workers=-1)["workers"].values()
    if any(all(w.get("resources", {}).get(name, 0) >= amount for name, amount in resources.items())
           for w in workers):
        return
    wanted = " with " + " ".join(f"{name}={amount:g}" for name, amount in resources.items()) if resources else ""
    print(f"waiting for a worker{wanted} to join the Dask scheduler at {client.scheduler.address}",
          file=sys.stderr, flush=True)
    client.submit(_probe, resources=dict(resources) or None, pure=False).result()


def _probe() -> None:
    """Nothing: the task whose start tells that a worker is there."""


def worker_cores(resources: Mapping[str, float]) -> int:
    """On a Dask worker: the cores one task may use, the worker's cores shared by the tasks it can
    run at once (its threads, or fewer when each task holds a scarce resource).

    A worker's cores are its threads (Dask's convention: ``dask worker --nworkers 4`` or
    dask-jobqueue's ``processes=4`` split a machine's cores among the processes as threads),
    at most the cores this process may run on: every worker process on a machine sees all of
    its cores, so counting those would give each of several workers the whole machine.
    """
    from distributed import get_worker

    state = get_worker().state
    at_once = state.nthreads
    for name, amount in resources.items():
        at_once = min(at_once, int(state.total_resources.get(name, 0) // amount))
    own = min(state.nthreads, len(os.sched_getaffinity(0)))
    return max(1, own // max(1, at_once))
