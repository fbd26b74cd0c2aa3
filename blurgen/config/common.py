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
