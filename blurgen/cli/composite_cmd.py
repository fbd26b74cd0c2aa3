"""``blurgen composite``: six kinds of physically motivated 2D blur on segmented photo regions."""

from __future__ import annotations

from pathlib import Path

import click

from blurgen.cli.config_options import config_options, job_options
from blurgen.composite.config import KIND, CompositeConfig

@click.command()
@config_options(KIND, CompositeConfig, default_preset="demo")
@click.option("--images", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder of source photos (default: built-in procedural photos with exact masks).")
@click.option("--masks", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder of instance masks for the photos (label images or one PNG per instance).")
@click.option("--sam-checkpoint", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="SAM checkpoint to segment the photos with (masks cached in OUT/sam-cache).")
@click.option("--sam-model", type=click.Choice(["vit_b", "vit_l", "vit_h"]), default=None,
              help="SAM model type of the checkpoint (default: sources.sam_model, vit_h).")
@job_options
def composite(config: CompositeConfig, out: Path, images: Path | None, masks: Path | None,
              sam_checkpoint: Path | None, sam_model: str | None, task_index: int | None,
              num_tasks: int | None, jobs: int) -> None:
    """Blur segmented regions of photos with six kinds of motion blur; exact masks and intensities.

    With no photos this uses the built-in procedural photos and their exact instance masks.
    Re-running the same command skips tasks whose shards exist and verify.
    """
    import dataclasses

    from blurgen.composite.pipeline import composite_dataset

    given = {"images": images, "masks": masks, "sam_checkpoint": sam_checkpoint, "sam_model": sam_model}
    sources = {k: str(v) if isinstance(v, Path) else v for k, v in given.items() if v is not None}
    if sources:
        config = dataclasses.replace(config, sources=dataclasses.replace(config.sources, **sources))
    summary = composite_dataset(config, out, task_index=task_index, num_tasks=num_tasks, jobs=jobs)
    click.echo(summary.describe())
