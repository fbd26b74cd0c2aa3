"""``blurgen flowpairs``: blurred frames averaged in linear light, paired with first<->last flow."""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Any, Callable

import click

from blurgen.cli.config_options import config_options, job_options
from blurgen.flowpairs.config import KIND, FlowpairsConfig

def _mode(mode: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Resolve the config with ``mode`` set by the command (last, so it wins over --set and files);
    placed above ``config_options`` so that --print-config shows it too."""
    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(command)  # keeps click's parameters (__click_params__)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            kwargs["overrides"] = (*kwargs.get("overrides", ()), f"mode={mode}")
            return command(*args, **kwargs)
        return wrapper
    return decorate


def _run(config: FlowpairsConfig, out: Path, task_index: int | None, num_tasks: int | None,
         jobs: int) -> None:
    from blurgen.flowpairs.pipeline import flowpairs_dataset  # OpenCV and h5py only when running

    summary = flowpairs_dataset(config, out, task_index=task_index, num_tasks=num_tasks, jobs=jobs)
    click.echo(summary.describe())


@click.group(no_args_is_help=True)
def flowpairs() -> None:
    """Blurred images made by averaging frames in linear light, paired with optical flow."""


@flowpairs.command()
@_mode("video")
@config_options(KIND, FlowpairsConfig, default_preset="default")
@click.option("--videos", type=click.Path(exists=True, path_type=Path),
              help="Folder of videos and frame folders (searched recursively), or one video file.")
@job_options
def video(config: FlowpairsConfig, videos: Path | None, out: Path, task_index: int | None,
          num_tasks: int | None, jobs: int) -> None:
    """Average windows of consecutive high-frame-rate frames; DIS flow between first and last frame.

    Each window of N frames (default 7) becomes a blurred image with its first, middle (sharp)
    and last frames and the flow both ways; windows across scene cuts or with too much motion
    are dropped and counted. Re-running the same command skips tasks whose shards verify.
    """
    video_section = config.video
    if videos is not None:
        video_section = dataclasses.replace(video_section, videos=str(videos))
    _run(dataclasses.replace(config, video=video_section), out, task_index, num_tasks, jobs)


@flowpairs.command()
@_mode("synth")
@config_options(KIND, FlowpairsConfig, default_preset="default")
@click.option("--pairs", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder of frame pairs with .flo flow (default: built-in procedural scenes).")
@job_options
def synth(config: FlowpairsConfig, pairs: Path | None, out: Path, task_index: int | None,
          num_tasks: int | None, jobs: int) -> None:
    """Blur from pairs with known flow: n = max(|s|, 5) frames along the flow, averaged; exact flow.

    With no pairs this uses built-in procedural scenes (textured layers in known affine motion).
    Pairs moving more than 100 px are discarded (synth.max_displacement).
    """
    synth_section = config.synth
    if pairs is not None:
        synth_section = dataclasses.replace(synth_section, pairs=str(pairs))
    _run(dataclasses.replace(config, synth=synth_section), out, task_index, num_tasks, jobs)
