"""``blurgen render``: Blender Cycles object motion blur on 6D trajectories, into shards."""

from __future__ import annotations

from pathlib import Path

import click

from blurgen.cli.config_options import config_options, job_options
from blurgen.render.config import KIND, RenderConfig


@click.command()
@config_options(KIND, RenderConfig, default_preset="demo")
@job_options
@click.option("--blender", metavar="PATH",
              help="A Blender binary (path or name on PATH) to render with (default: the bpy module "
                   "of this Python).")
def render(config: RenderConfig, out: Path, task_index: int | None, num_tasks: int | None,
           jobs: int, blender: str | None) -> None:
    """Render objects moving on random 6D trajectories with Cycles motion blur, over backgrounds.

    With no config this renders the built-in demo preset on the demo assets (made on first use).
    Re-running the same command skips tasks whose shards exist and verify.
    """
    from blurgen.render.pipeline import render_dataset  # Blender runner and OpenCV only when rendering

    summary = render_dataset(config, out, task_index=task_index, num_tasks=num_tasks, jobs=jobs,
                             blender=blender)
    click.echo(summary.describe())
