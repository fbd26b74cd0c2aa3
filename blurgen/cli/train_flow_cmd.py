"""``blurgen train flow`` and ``blurgen evaluate flow``: flow from one blurred image (Argaw et al.).

Registered on the ``train`` and ``evaluate`` groups of :mod:`blurgen.cli.train_cmd`; torch is
imported only when a command runs.
"""

from __future__ import annotations

from pathlib import Path

import click

from blurgen.cli.config_options import config_options, out_option
from blurgen.cli.train_cmd import (DEVICE, chosen_checkpoint, evaluate, model_options, run_train_command, train,
                                   train_options)


def _flow_config_options(command):
    from blurgen.train.flow_config import KIND, FlowConfig  # torch-free

    return config_options(KIND, FlowConfig, default_preset="demo")(command)


@train.command("flow")
@_flow_config_options
@train_options("Folder of flow-pair shards (blurgen flowpairs) or renders made with images.flow: true; "
               "training reads its train split.")
def train_flow(config, data: Path | None, val: Path | None, out: Path, device: str, resume: bool) -> None:
    """Train the flow-from-one-blurred-image network (multi-scale EPE) on flow shards."""
    from blurgen.train.flow import FlowTask

    run_train_command(lambda: FlowTask(config, data, val), data, out, device, resume)


@evaluate.command("flow")
@model_options
@click.option("--data", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True,
              help="Folder of flow-pair shards or flow renders to score on.")
@click.option("--split", default="test", show_default=True, help="Which split of --data to score.")
@out_option("Report folder: report.json, report.md, flows.h5 (the predicted flows), flows.png.")
@DEVICE
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True,
              help="Images per forward pass.")
def evaluate_flow_cmd(run_dir: Path | None, checkpoint: Path | None, data: Path, split: str, out: Path,
                      device: str, batch_size: int) -> None:
    """EPE, min(EPE fwd, EPE bwd) and 1/3/5 px accuracy on a split of flow shards."""
    from blurgen.train.flow_eval import evaluate_flow

    report = evaluate_flow(chosen_checkpoint(run_dir, checkpoint), data, out, split=split, device=device,
                           batch_size=batch_size)
    click.echo(report.describe())
