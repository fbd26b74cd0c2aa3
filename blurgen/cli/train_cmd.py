"""``blurgen train`` and ``blurgen evaluate``: the papers' baselines on blurgen shards.

Several GPUs or nodes: ``torchrun --nproc-per-node G -m blurgen train retrieval ...`` (each rank
joins the process group ``torchrun`` describes; blurgen launches nothing itself).
torch is imported only when a command runs, so the other commands start without it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import click

from blurgen.cli.config_options import config_options, out_option

DEVICE = click.option("--device", default="auto", show_default=True, metavar="auto|cpu|cuda|cuda:N",
                      help="Where to run: CUDA when present (auto), or the named device.")


def train_options(data_help: str):
    """``--data``, ``--val``, ``--out``, ``--device``, ``--resume``: what every ``train`` command takes."""
    folder = click.Path(exists=True, file_okay=False, path_type=Path)
    options = [click.option("--data", type=folder, required=False, help=data_help),
               click.option("--val", type=folder, default=None, help="Folder whose val split is validated on "
                                                                      "after each epoch (default: --data's, if any)."),
               out_option("Run folder: checkpoints/, metrics.jsonl, curves (PNG)."), DEVICE,
               click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint.")]

    def apply(command):
        for option in reversed(options):
            command = option(command)
        return command
    return apply


def run_train_command(make_task: Callable[[], Any], data: Path | None, out: Path, device: str, resume: bool) -> None:
    """A ``train`` command's work: join the ranks ``torchrun`` started (or run alone), train the
    task ``make_task()`` builds into ``out``, and print the result on rank 0."""
    from blurgen.train.distributed import close_distributed, init_distributed
    from blurgen.train.loop import train as run_training

    if data is None:
        raise click.UsageError("Missing option '--data'.")
    dist = init_distributed(device)
    try:
        result = run_training(make_task(), out, dist, resume=resume)
    finally:
        close_distributed()
    if dist.is_main:
        metrics = ", ".join(f"{k} {v:.4f}" for k, v in result.metrics.items()) or "no validation split"
        click.echo(f"{result.epochs} epochs, {result.global_step} steps -> {out}\nvalidation: {metrics}\n"
                   f"model: {result.checkpoint}")


def model_options(command):
    """``--run RUN`` or ``--checkpoint FILE``: the model every ``evaluate`` command scores."""
    command = click.option("--checkpoint", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                           default=None, help="A checkpoint file instead of --run.")(command)
    return click.option("--run", "run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
                        default=None, help="A blurgen train --out folder (its final model, else its last "
                                           "checkpoint).")(command)


def chosen_checkpoint(run_dir: Path | None, checkpoint: Path | None) -> Path:
    """The checkpoint file ``model_options`` name (exactly one of them must be given)."""
    from blurgen.train.checkpoint import run_checkpoint

    if (run_dir is None) == (checkpoint is None):
        raise click.UsageError("give either --run RUN or --checkpoint FILE")
    return checkpoint if checkpoint is not None else run_checkpoint(run_dir)


@click.group(no_args_is_help=True)
def train() -> None:
    """Train a baseline of the papers on shards: retrieval (BRIDGE + BLISS), blur-seg (U-Net), flow."""


@click.group(no_args_is_help=True)
def evaluate() -> None:
    """Score a trained baseline with its paper's protocol; write a report folder."""


def _retrieval_config_options(command):
    from blurgen.train.retrieval_config import KIND, RetrievalConfig  # torch-free

    return config_options(KIND, RetrievalConfig, default_preset="demo")(command)


@train.command("retrieval")
@_retrieval_config_options
@train_options("Folder of render shards (blurgen render); training reads its train split.")
def train_retrieval(config, data: Path | None, val: Path | None, out: Path, device: str, resume: bool) -> None:
    """Train BRIDGE with BLISS tuples (blur-retrieval paper §3, §5) on a render job's shards."""
    from blurgen.train.retrieval import RetrievalTask

    run_train_command(lambda: RetrievalTask(config, data, val), data, out, device, resume)


@evaluate.command("retrieval")
@model_options
@click.option("--data", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True,
              help="Folder of render shards whose test split holds the query and database images.")
@click.option("--distractors", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Folder of distractor shards (blurgen render --preset paper-distractor) added to the database.")
@out_option("Report folder: report.json, report.md, descriptors, retrievals.png.")
@DEVICE
@click.option("--k", type=click.IntRange(min=1), default=100, show_default=True, help="mAP@k's k.")
def evaluate_retrieval_cmd(run_dir: Path | None, checkpoint: Path | None, data: Path, distractors: Path | None,
                           out: Path, device: str, k: int) -> None:
    """mAP@all and mAP@k per query blur level, and the per-database-level table (paper §5)."""
    from blurgen.train.retrieval_eval import evaluate_retrieval

    report = evaluate_retrieval(chosen_checkpoint(run_dir, checkpoint), data, out, distractors=distractors,
                                device=device, k=k)
    click.echo(report.describe())
