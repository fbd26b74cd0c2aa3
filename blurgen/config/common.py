"""Config sections that several generators share word for word."""

from __future__ import annotations

from blurgen.config.schema import option, section


@section
class OutputSection:
    compression: str = option("gzip", "shard compression", choices=("gzip", "zstd", "none"))
    compression_level: int | None = option(None, "compression level; null: the format's default",
                                           min=0, max=22)
    preview: bool = option(True, "write preview.png (a contact sheet) when all tasks ran here", run_only=True)


@section
class TasksSection:
    num_tasks: int = option(1, "tasks the job is split into (a farm array's size); --num-tasks "
                               "overrides", min=1)
    backend: str = option("local", "where the tasks run when no task index is given: 'local' (here, "
                                   "--jobs at a time) or 'dask' (an existing Dask cluster at farm.scheduler, "
                                   "one Dask task per task); --backend overrides",
                          choices=("local", "dask"), run_only=True)
    scheduler: str = option("", "backend dask: the scheduler's address (tcp://host:8786) or its scheduler "
                                "file (*.json); --scheduler overrides", run_only=True)
    resources: tuple[str, ...] = option((), "backend dask: worker resources each task holds while it runs, "
                                            "NAME=AMOUNT (e.g. GPU=1); only workers started with them "
                                            "(dask worker --resources) take tasks; --resources overrides",
                                        run_only=True)
