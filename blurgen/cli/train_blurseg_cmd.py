"""``blurgen train blur-seg`` and ``blurgen evaluate blur-seg``: the subtle-blur detector (SMBlurDetect).

Registered on the ``train`` and ``evaluate`` groups of :mod:`blurgen.cli.train_cmd`; torch is
imported only when a command runs.
"""

from __future__ import annotations

from pathlib import Path

import click

from blurgen.cli.config_options import config_options, out_option
from blurgen.cli.train_cmd import (DEVICE, chosen_checkpoint, evaluate, model_options, run_train_command,
                                   train, train_options)

FOLDER = click.Path(exists=True, file_okay=False, path_type=Path)


def _blurseg_config_options(command):
    from blurgen.train.blurseg_config import KIND, BlurSegConfig  # torch-free

    return config_options(KIND, BlurSegConfig, default_preset="demo")(command)


@train.command("blur-seg")
@_blurseg_config_options
@train_options("A blurgen composite folder, or a folder of one per curriculum stage (stabilization/, mixed/, "
               "advanced/); training reads the train split.")
def train_blurseg(config, data: Path | None, val: Path | None, out: Path, device: str, resume: bool) -> None:
    """Train the U-Net blur detector (mask + intensity heads, curriculum; subtle-blur paper §3.3-3.5)."""
    from blurgen.train.blurseg import BlurSegTask

    run_train_command(lambda: BlurSegTask(config, data, val), data, out, device, resume)


@evaluate.command("blur-seg")
@model_options
@click.option("--data", type=FOLDER, default=None, help="Composite shards to score (pixel and image level).")
@click.option("--split", default=None,
              help="Split of --data to score (default: test; a folder without one needs --split). The split the "
                   "thresholds were chosen on is refused.")
@click.option("--images", type=FOLDER, default=None, help="Folder of images with blur masks (with --masks).")
@click.option("--masks", type=FOLDER, default=None,
              help="Binary blur masks, one per image: same relative path and stem, .png (e.g. CUHK's).")
@click.option("--blurred", type=FOLDER, default=None, help="Folder of blurred images (with --sharp; image level).")
@click.option("--sharp", type=FOLDER, default=None, help="Folder of sharp images (with --blurred).")
@click.option("--val", type=FOLDER, default=None,
              help="Composite folder whose val split chooses the thresholds (default: the run's last validation).")
@out_option("Report folder: report.json, report.md, predictions/ (16-bit PNGs), predictions.h5, sheet.png.")
@DEVICE
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True,
              help="Same-size images per forward pass.")
def evaluate_blurseg_cmd(run_dir: Path | None, checkpoint: Path | None, data: Path | None, split: str | None,
                         images: Path | None, masks: Path | None, blurred: Path | None, sharp: Path | None,
                         val: Path | None, out: Path, device: str, batch_size: int) -> None:
    """Pixel accuracy, mIoU, weighted IoU, class accuracy, blur P/R/F1, PR-AUC; image-level accuracy,
    P/R, specificity, F1, ROC AUC (subtle-blur paper §4.2)."""
    from blurgen.train.blurseg_eval import evaluate_blurseg

    report = evaluate_blurseg(chosen_checkpoint(run_dir, checkpoint), out, data=data, split=split, images=images,
                              masks=masks, blurred=blurred, sharp=sharp, val=val, device=device,
                              batch_size=batch_size)
    click.echo(report.describe())
