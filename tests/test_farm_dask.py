"""--backend dask: a job's tasks on an existing Dask cluster (blurgen.dask_farm, blurgen.job).

The refusals run without a cluster. The rest runs real generators on a local ``distributed``
cluster of two worker processes (one offers a resource ``GPU=1``, the other none) and checks
the shards against a run on this machine, a task that asks for the GPU resource against the
worker it ran on, and a worker killed in the middle of a task against Dask's retry.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Sequence

import cloudpickle
import dask
import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from blurgen.cli import main
from blurgen.config import resolve_config
from blurgen.dask_farm import parse_resources
from blurgen.errors import BlurgenError
from blurgen.flowpairs.config import KIND, FlowpairsConfig
from blurgen.flowpairs.pipeline import FlowpairsGenerator, flowpairs_dataset
from blurgen.flowpairs.plan import PairItem, make_plan
from blurgen.job import TaskRun, run_job

# the workers unpickle this module's generator without importing the module
cloudpickle.register_pickle_by_value(sys.modules[__name__])

SYNTH = ["synth", "--set", "synth.scenes=6", "--set", "synth.size=[64,48]", "--set", "output.preview=false",
         "--num-tasks", "3"]
COMPOSITE = ["--set", "sources.procedural_count=3", "--set", "sources.procedural_size=[160,120]",
             "--set", "samples.per_source=2", "--set", "samples.width=96", "--set", "samples.height=80",
             "--set", "samples.min_instance_px=16", "--set", "output.preview=false", "--num-tasks", "3"]


def synth_config(**farm: object) -> FlowpairsConfig:
    return resolve_config(FlowpairsConfig, KIND, overrides={
        "mode": "synth", "synth": {"scenes": 6, "size": [64, 48]}, "output": {"preview": False},
        "farm": {"num_tasks": 3, **farm}})


# ----------------------------------------------------------------------------- without a cluster


def test_resources_read_like_dask_workers_and_bad_ones_are_named():
    assert parse_resources(["GPU=1", "MEM=4e9 SSD=0.5", "TPU=2,FOO=3"]) == {
        "GPU": 1.0, "MEM": 4e9, "SSD": 0.5, "TPU": 2.0, "FOO": 3.0}
    assert parse_resources([]) == {}
    for bad in ("GPU", "GPU=", "=1", "GPU=one", "GPU=0", "GPU=-1"):
        with pytest.raises(BlurgenError, match="is not NAME=AMOUNT"):
            parse_resources([bad])


def _refused(args: list[str], out: Path) -> str:
    result = CliRunner().invoke(main, ["flowpairs", *args, "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert not out.exists()  # refused before anything was written
    return result.output


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("extra, message", [
    (["--backend", "dask"], "backend dask needs a scheduler: --scheduler ADDRESS"),
    (["--backend", "dask", "--scheduler", "nowhere.json"], "scheduler file nowhere.json cannot be read"),
    (["--backend", "dask", "--scheduler", "tcp://127.0.0.1:1", "--task-index", "1"],
     "backend dask runs every task on the cluster, but this process is task 1"),
    (["--backend", "dask", "--scheduler", "tcp://127.0.0.1:1", "--jobs", "2"], "--jobs is for backend local"),
    (["--backend", "dask", "--scheduler", "tcp://127.0.0.1:1", "--resources", "GPU"], "'GPU' is not NAME=AMOUNT"),
    (["--scheduler", "tcp://127.0.0.1:1"], "--scheduler and --resources are for --backend dask"),
])
def test_dask_runs_that_cannot_work_are_refused_in_one_line(tmp_path, extra, message):
    output = _refused([*SYNTH, *extra], tmp_path / "out")
    errors = [line for line in output.splitlines() if line.startswith(("blurgen: error: ", "Error: "))]
    assert len(errors) == 1 and message in errors[0], output  # one line (click adds usage lines above)


def test_an_unreachable_scheduler_is_one_line_and_writes_nothing(tmp_path):
    address = f"tcp://127.0.0.1:{_closed_port()}"
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        output = _refused([*SYNTH, "--backend", "dask", "--scheduler", address], tmp_path / "out")
    assert output.startswith(f"blurgen: error: cannot reach the Dask scheduler at {address} (")
    assert len(output.strip().splitlines()) == 1


def test_without_distributed_the_backend_names_the_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # what an import sees when it is not installed
    output = _refused([*SYNTH, "--backend", "dask", "--scheduler", "tcp://127.0.0.1:1"], tmp_path / "out")
    assert output.strip() == ("blurgen: error: backend dask needs Dask's distributed package, which is not "
                              "installed: pip install 'blurgen[dask]'")


# ----------------------------------------------------------------------------- on a local cluster


# the worker setting docs/farm.md recommends: Dask's MALLOC_TRIM_THRESHOLD_ halves numpy-heavy tasks' speed
WORKER_SETTINGS = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}


@pytest.fixture(scope="module")
def cluster():
    from distributed import Nanny, Scheduler, SpecCluster

    workers = {"gpu": {"cls": Nanny, "options": {"nthreads": 2, "resources": {"GPU": 1}}},
               "cpu": {"cls": Nanny, "options": {"nthreads": 1}}}
    with dask.config.set(WORKER_SETTINGS), SpecCluster(
            scheduler={"cls": Scheduler, "options": {"dashboard_address": ":0"}}, workers=workers) as spec:
        yield spec


def shard_contents(folder: Path) -> dict[str, tuple[dict[str, np.ndarray], dict[str, object]]]:
    """Every shard's datasets and root attributes (config and stats parsed), by file name."""
    contents = {}
    for path in sorted(folder.glob("*.h5")):
        with h5py.File(path, "r") as f:
            contents[path.name] = ({name: f[name][()] for name in f},
                                   {k: (json.loads(v) if k in ("config", "stats") else v) for k, v in f.attrs.items()})
    return contents


def assert_same_shards(dask_out: Path, local_out: Path) -> None:
    """The same shard files with the same samples and attributes, byte for byte: the stored
    config leaves out the run-only fields that say where the tasks ran."""
    assert sorted(p.name for p in dask_out.iterdir()) == sorted(p.name for p in local_out.iterdir())
    ours, theirs = shard_contents(dask_out), shard_contents(local_out)
    assert ours.keys() == theirs.keys() and ours
    for name in ours:
        (data, attrs), (their_data, their_attrs) = ours[name], theirs[name]
        assert data.keys() == their_data.keys() and data
        for field, value in data.items():  # every value, as the golden test compares them
            expected = their_data[field]
            assert value.dtype == expected.dtype and value.shape == expected.shape, (name, field)
            assert np.array_equal(value, expected, equal_nan=value.dtype.kind in "fc"), (name, field)
        assert attrs == their_attrs, name  # schema, version, config, seed, task, stats, ...
        assert "backend" not in attrs["config"]["farm"] and "scheduler" not in attrs["config"]["farm"]
        if name.endswith(".h5"):
            assert (dask_out / name).read_bytes() == (local_out / name).read_bytes(), name


@pytest.mark.slow
@pytest.mark.parametrize("command", [["flowpairs", *SYNTH], ["composite", *COMPOSITE]])
def test_a_dask_run_writes_the_shards_of_a_local_run(cluster, tmp_path, command):
    scheduler_file = tmp_path / "scheduler.json"  # as `dask scheduler --scheduler-file` writes it
    scheduler_file.write_text(json.dumps({"address": cluster.scheduler_address}))
    local = CliRunner().invoke(main, [*command, "--out", str(tmp_path / "local")])
    remote = CliRunner().invoke(main, [*command, "--backend", "dask", "--scheduler", str(scheduler_file),
                                       "--out", str(tmp_path / "dask")])
    assert local.exit_code == 0 and remote.exit_code == 0, (local.output, remote.output)
    assert remote.output.splitlines()[0].endswith(f"in 3 task(s) -> {tmp_path / 'dask'}")
    assert_same_shards(tmp_path / "dask", tmp_path / "local")
    again = CliRunner().invoke(main, [*command, "--backend", "dask", "--scheduler", cluster.scheduler_address,
                                      "--out", str(tmp_path / "dask")])
    assert "3 task(s) already complete, skipped" in again.output  # the skip rule, on Dask too


@pytest.mark.slow
def test_a_render_on_dask_writes_the_shards_of_a_local_render(cluster, tmp_path):
    from blurgen.assets.config import DemoAssetsConfig
    from blurgen.assets.demo import make_demo_assets
    from blurgen.render.config import RenderConfig
    from blurgen.render.pipeline import render_dataset

    demo = make_demo_assets(tmp_path / "assets", DemoAssetsConfig(
        categories=2, objects_per_category=1, texture_size=32, backgrounds=2, background_width=96,
        background_height=72, preview=False))

    def config(*farm: str) -> RenderConfig:
        return resolve_config(RenderConfig, "render", preset="demo", overrides=[
            f"assets.objects={demo.objects}", f"assets.backgrounds={demo.backgrounds}",
            "assets.objects_per_category=1", "trajectory.per_object=1", "camera.width=64", "camera.height=48",
            "cycles.samples=2", "images.max_window=2", "labels.erosion_px=1", "output.preview=false",
            "farm.num_tasks=2", *farm])

    render_dataset(config(), tmp_path / "local", progress=False)
    summary = render_dataset(config("farm.backend=dask", f"farm.scheduler={cluster.scheduler_address}"),
                             tmp_path / "dask", progress=False)  # Blender runs inside the workers
    assert summary.samples > 0
    assert_same_shards(tmp_path / "dask", tmp_path / "local")


@dataclasses.dataclass(frozen=True)
class Recording(FlowpairsGenerator):
    """The real synth generator, which notes where each task attempt ran; the first attempt of
    ``hang_task`` reports its process through the FIFO ``fifo`` after its first sample and then
    waits to be killed."""

    log: str = ""
    hang_task: int | None = None
    fifo: str = ""

    def before_tasks(self, tasks: Sequence[int], num_tasks: int) -> None:
        Path(self.log).with_suffix(".before").write_text("ran here")

    def make(self, items: Sequence[PairItem], task: TaskRun) -> None:
        import cv2
        from distributed import get_worker

        index = task.summary.task_index
        with open(self.log, "a") as log:
            log.write(f"{index} {get_worker().name} {os.getpid()} {cv2.getNumThreads()}\n")
        if index == self.hang_task and _first_attempt(Path(self.log).with_suffix(f".attempt-{index}")):
            write = task.write

            def write_then_wait_to_be_killed(split: str, sample: dict) -> None:
                write(split, sample)  # the shard is half written now
                with open(self.fifo, "w") as fifo:
                    fifo.write(f"{os.getpid()}\n")
                threading.Event().wait(120)
                raise RuntimeError("the test did not kill this worker")

            task.write = write_then_wait_to_be_killed  # type: ignore[method-assign]
        super().make(items, task)


def _first_attempt(marker: Path) -> bool:
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL))
    except FileExistsError:
        return False
    return True


def attempts(log: Path) -> list[tuple[int, str, int, int]]:
    """(task, worker name, pid, OpenCV threads) of every task attempt, in the order they began."""
    rows = [line.split() for line in log.read_text().splitlines()]
    return [(int(t), name, int(pid), int(threads)) for t, name, pid, threads in rows]


@pytest.mark.slow
def test_tasks_asking_for_a_resource_run_only_where_it_is_with_the_cores_they_may_use(cluster, tmp_path):
    # Both workers run on this machine and see all of its cores; each owns its threads' worth of
    # them (gpu 2, cpu 1), never more than the machine has.
    owned = {name: min(threads, len(os.sched_getaffinity(0))) for name, threads in (("gpu", 2), ("cpu", 1))}
    config = synth_config(backend="dask", scheduler=cluster.scheduler_address, resources=["GPU=1"])
    run_job(Recording(config, make_plan(config), log=str(tmp_path / "gpu.log")), tmp_path / "gpu", progress=False)
    # only the GPU worker takes them; it has 2 threads but 1 GPU: one task at a time, with all its cores
    assert [(t, name, n) for t, name, _, n in sorted(attempts(tmp_path / "gpu.log"))] == [
        (0, "gpu", owned["gpu"]), (1, "gpu", owned["gpu"]), (2, "gpu", owned["gpu"])]
    config = synth_config(backend="dask", scheduler=cluster.scheduler_address)
    run_job(Recording(config, make_plan(config), log=str(tmp_path / "any.log")), tmp_path / "any", progress=False)
    # without resources: a worker's cores over its threads (2 tasks at once on gpu, 1 on cpu)
    shares = {"gpu": max(1, owned["gpu"] // 2), "cpu": owned["cpu"]}
    assert [n for _, name, _, n in attempts(tmp_path / "any.log")] == [
        shares[name] for _, name, _, _ in attempts(tmp_path / "any.log")]
    assert not list(tmp_path.glob("*.before"))  # work before the tasks is the tasks' own on Dask
    gpu, anywhere = shard_contents(tmp_path / "gpu"), shard_contents(tmp_path / "any")
    assert gpu.keys() == anywhere.keys()
    for name, (data, _) in gpu.items():
        assert all(np.array_equal(v, anywhere[name][0][k], equal_nan=v.dtype.kind in "fc") for k, v in data.items())


@pytest.mark.slow
def test_a_lost_workers_task_is_run_again_and_the_shards_are_a_local_runs(cluster, tmp_path):
    fifo = tmp_path / "started"
    os.mkfifo(fifo)
    killed: list[int] = []

    def kill_the_worker_that_reports() -> None:
        with open(fifo) as f:  # blocks until the hanging task opens it
            pid = int(f.readline())
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    killer = threading.Thread(target=kill_the_worker_that_reports, daemon=True)
    killer.start()
    config = synth_config(backend="dask", scheduler=cluster.scheduler_address)
    log = tmp_path / "tasks.log"
    summary = run_job(Recording(config, make_plan(config), log=str(log), hang_task=2, fifo=str(fifo)),
                      tmp_path / "dask", progress=False)
    killer.join()
    rows = attempts(log)
    assert [pid for t, _, pid, _ in rows if t == 2][0] == killed[0]
    assert len([t for t, *_ in rows if t == 2]) == 2  # killed in its first attempt, then run again
    # every task the killed worker held (the one that hung, and any other it ran or kept the
    # result of) ran again in another process; a rerun of a finished one is skipped by the rule
    lost = {t for t, _, pid, _ in rows if pid == killed[0]}
    assert all(any(t == lost_task and pid != killed[0] for t, _, pid, _ in rows) for lost_task in lost)
    assert [t.task_index for t in summary.tasks] == [0, 1, 2]
    flowpairs_dataset(synth_config(), tmp_path / "local", progress=False)
    assert_same_shards(tmp_path / "dask", tmp_path / "local")
    assert not list((tmp_path / "dask").glob(".*.tmp"))  # the killed attempt's temporary shard is gone


@pytest.mark.slow
def test_with_no_worker_that_can_run_the_tasks_the_command_says_so_and_waits_for_one(tmp_path):
    from distributed import LocalCluster

    with dask.config.set(WORKER_SETTINGS), LocalCluster(n_workers=0, threads_per_worker=1, resources={"TPU": 1},
                                                        dashboard_address=":0") as empty:
        command = [sys.executable, "-c", "from blurgen.cli import main; main()", "flowpairs", *SYNTH,
                   "--backend", "dask", "--scheduler", empty.scheduler_address, "--resources", "TPU=1",
                   "--out", str(tmp_path / "out")]
        with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as run:
            said = ""
            while not said.startswith("waiting for a worker"):
                said = run.stderr.readline()
                assert said, "the command ended without saying it waits"
            assert said.strip() == f"waiting for a worker with TPU=1 to join the Dask scheduler at {empty.scheduler_address}"
            empty.scale(1)  # a worker with TPU=1 joins
            out, err = run.communicate()
        assert run.returncode == 0, err
        assert out.splitlines()[0] == f"6 flow pairs from 6 sources in 3 task(s) -> {tmp_path / 'out'}"
