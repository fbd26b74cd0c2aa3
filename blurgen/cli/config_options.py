"""The config options every configurable command shares: --preset, --config, --set, --print-config."""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Any, Callable

import click

from blurgen.config import preset_names, resolve_config, to_yaml


def config_options(kind: str, schema: type, default_preset: str = "default"
                   ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Add the config options to a click command; the command receives the resolved ``config``.

    With ``--print-config`` the resolved config is printed as documented YAML and the command
    does nothing else.
    """
    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        @click.option("--preset", default=default_preset, show_default=True,
                      type=click.Choice(preset_names(kind)), help="Built-in preset the config starts from.")
        @click.option("--config", "config_file", type=click.Path(dir_okay=False),
                      help="YAML file with config values (over the preset).")
        @click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                      help="Override one config value (dotted keys for nested values); repeatable.")
        @click.option("--print-config", is_flag=True, help="Print the resolved config and exit.")
        @functools.wraps(command)
        def wrapper(preset: str, config_file: str | None, overrides: tuple[str, ...],
                    print_config: bool, **kwargs: Any) -> Any:
            config = resolve_config(schema, kind, preset=preset, config_file=config_file,
                                    overrides=overrides)
            if print_config:
                click.echo(to_yaml(config), nl=False)
                return None
            return command(config=config, **kwargs)
        return wrapper
    return decorate


def out_option(help_text: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--out``: required to run, but not to ``--print-config`` (which returns before the command
    runs), so it is checked here rather than by click. Place it below :func:`config_options`."""
    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        @click.option("--out", type=click.Path(file_okay=False, path_type=Path), help=help_text)
        @functools.wraps(command)  # keeps click's parameters (__click_params__)
        def wrapper(*args: Any, out: Path | None, **kwargs: Any) -> Any:
            if out is None:
                raise click.UsageError("Missing option '--out'.")
            return command(*args, out=out, **kwargs)
        return wrapper
    return decorate


def job_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--out, --task-index, --num-tasks, --jobs, --backend, --scheduler, --resources: the farm
    contract every generator command shares. Place it below :func:`config_options`: the last
    three set ``farm.backend``, ``farm.scheduler`` and ``farm.resources`` of the resolved config."""
    for decorator in reversed([
        out_option("Folder for the shards, manifest.json and preview.png."),
        click.option("--task-index", type=int, default=None,
                     help="Run only this task (default: SLURM_ARRAY_TASK_ID, else JOB_COMPLETION_INDEX, "
                          "else every task here)."),
        click.option("--num-tasks", type=click.IntRange(min=1), default=None,
                     help="Tasks the job is split into (default: farm.num_tasks of the config)."),
        click.option("--jobs", type=click.IntRange(min=1), default=1, show_default=True,
                     help="Tasks run at once when every task runs here."),
        _backend_options,
    ]):
        command = decorator(command)
    return command


def _backend_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--backend, --scheduler, --resources over the config's farm section (run-only fields)."""
    @click.option("--backend", type=click.Choice(["local", "dask"]), default=None,
                  help="Where the tasks run when every task runs from here: local (--jobs at a time) or "
                       "dask (an existing Dask cluster, --scheduler) (default: farm.backend).")
    @click.option("--scheduler", metavar="ADDRESS", default=None,
                  help="The Dask scheduler: tcp://host:8786 or a scheduler file (default: farm.scheduler).")
    @click.option("--resources", metavar="NAME=AMOUNT", multiple=True,
                  help="Dask worker resources each task holds, e.g. GPU=1; repeatable "
                       "(default: farm.resources).")
    @functools.wraps(command)  # keeps click's parameters (__click_params__)
    def wrapper(*args: Any, config: Any, backend: str | None, scheduler: str | None,
                resources: tuple[str, ...], **kwargs: Any) -> Any:
        given = {"backend": backend, "scheduler": scheduler, "resources": resources or None}
        farm = dataclasses.replace(config.farm, **{k: v for k, v in given.items() if v is not None})
        if farm.backend != "dask" and (scheduler or resources):
            raise click.UsageError("--scheduler and --resources are for --backend dask (or farm.backend: dask).")
        return command(*args, config=dataclasses.replace(config, farm=farm), **kwargs)
    return wrapper
