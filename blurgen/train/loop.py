"""The one training loop every baseline runs in.

A task (:class:`TrainTask`: retrieval, blur segmentation, flow) supplies its model, its data as
batches of uint8 tensors, its losses and its validation metrics; the loop supplies everything
else, the same way for all of them:

- the device and, under ``torchrun``, DistributedDataParallel (:mod:`blurgen.train.distributed`);
- mixed precision (float16 autocast with a gradient scaler) and channels-last memory on CUDA;
  full float32 on the CPU, where autocast is slower and would break bit-reproducibility;
- the optimizer (Adam or AdamW), a step schedule of the learning rate over epochs (a function of
  the epoch alone, so a resumed run needs no scheduler state), gradient clipping, a progress bar
  with images/s and loss;
- checkpoints written atomically every epoch and every ``train.checkpoint_every`` steps, and
  ``resume``: the run continues at the exact batch after the checkpoint. Nothing random is
  carried in process state: the epoch's draw depends on (seed, epoch), a batch's augmentation
  on (seed, epoch, step), so a run killed with ``kill -9`` and resumed ends with the same
  weights as one that never stopped (on the CPU, same seed; tested);
- ``RUN/metrics.jsonl``, curves as PNG and TensorBoard events (:mod:`blurgen.train.runlog`).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any, Iterator, Protocol

import torch

from blurgen import __version__
from blurgen.config import to_json
from blurgen.config.schema import run_only_keys
from blurgen.errors import BlurgenError
from blurgen.farm import job_identity
from blurgen.rng import seeded_torch
from blurgen.train.checkpoint import FINAL, LAST, load_checkpoint, save_checkpoint
from blurgen.train.data import augment_generator
from blurgen.train.distributed import DistContext, mean_across_ranks
from blurgen.train.runlog import RunLog

CHECKPOINTS = "checkpoints"


class TrainTask(Protocol):
    """What a baseline supplies to the loop."""

    name: str    # "retrieval", "blur-seg", "flow": the checkpoint records it
    config: Any  # the resolved config: ``seed`` and a ``train`` section (:class:`TrainSection`)

    def build_model(self) -> torch.nn.Module:
        """The module trained, with every trainable parameter (e.g. ArcFace's class weights);
        its ``forward`` computes what the losses need, so DDP sees one forward per step."""

    find_unused_parameters: bool  # some parameters get no gradient in a step (DDP must be told)

    def steps_per_epoch(self, epoch: int, dist: DistContext) -> int:
        """Batches one rank runs in ``epoch`` (the same on every rank; may differ per epoch)."""

    def data_identity(self) -> str:
        """What a resumed run must train on again (e.g. a digest of the training objects)."""

    def data_sources(self) -> dict[str, Any]:
        """Where the training and validation shards came from (``data.run_sources``): the
        checkpoints keep it, so evaluation knows which shards the run has already seen."""

    def batches(self, epoch: int, start_step: int, dist: DistContext) -> Iterator[Any]:
        """This rank's batches of ``epoch`` from ``start_step`` on, on the CPU (uint8 images)."""

    def loss(self, model: torch.nn.Module, batch: Any, dist: DistContext,
             rng: torch.Generator) -> tuple[torch.Tensor, dict[str, float], int]:
        """The total loss of a batch, its parts (for the log) and its number of images;
        ``rng`` (on the device) drives the batch's augmentation."""

    def validate(self, model: torch.nn.Module, dist: DistContext) -> dict[str, float]:
        """Validation metrics after an epoch; ``{}`` when the run has no validation data."""

    def epoch_stats(self, epoch: int) -> dict[str, float]:
        """Counts about the epoch's data to log beside the metrics, named ``data_*`` (e.g. samples
        left out); the curves leave them out."""


class LossWeightsSetUnused:
    """``find_unused_parameters`` of a task whose ``config.loss.weights()`` can set a loss to 0:
    that loss's head then gets no gradient, and DDP must not wait for it."""

    config: Any

    @property
    def find_unused_parameters(self) -> bool:
        return any(w == 0 for w in self.config.loss.weights().values())


@dataclasses.dataclass(frozen=True)
class RunResult:
    run_dir: Path
    epochs: int
    global_step: int
    metrics: dict[str, float]     # the last validation's
    checkpoint: Path


def train(task: TrainTask, run_dir: str | Path, dist: DistContext, *, resume: bool = False,
          progress: bool = True) -> RunResult:
    """Train ``task`` into ``run_dir`` (checkpoints, log, curves); continue the last checkpoint
    with ``resume``."""
    run_dir = Path(run_dir)
    settings = task.config.train
    if task.steps_per_epoch(0, dist) < 1:  # data that cannot train fails before anything is written
        raise BlurgenError("the training data gives no batch: fewer samples than train.batch_size "
                           "(lower it, or give more data)")
    with seeded_torch(task.config.seed):  # the initial weights: the same on every rank
        model = task.build_model()
    model = model.to(dist.device)
    if dist.device.type == "cuda" and settings.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(settings, model)
    amp = settings.amp and dist.device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    epoch, start_step, global_step = 0, 0, 0
    metrics: dict[str, float] = {}
    last = run_dir / CHECKPOINTS / LAST
    if resume:
        if not last.is_file():
            raise BlurgenError(f"--resume: {run_dir} has no {CHECKPOINTS}/{LAST} to continue from "
                               "(run without --resume to start)")
        state = load_checkpoint(last, task.name)
        run_only = run_only_keys(type(task.config))  # e.g. workers: how it runs, not what it learns
        if job_identity(state["config"], run_only) != job_identity(to_json(task.config), run_only):
            raise BlurgenError(f"--resume: {last} was made with another config; resume with the same "
                               "--preset/--config/--set, or start a new --out")
        if state.get("data") != task.data_identity():
            raise BlurgenError(f"--resume: {last} was trained on other data; resume with the same --data")
        if state.get("world", 1) != dist.world:
            raise BlurgenError(f"--resume: {last} was made by {state.get('world', 1)} rank(s), this run has "
                               f"{dist.world}: resume with the same number (a step is a step of each rank)")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if state["scaler"] and scaler.is_enabled():  # a CPU or amp=false run saved no scale: start afresh
            scaler.load_state_dict(state["scaler"])
        epoch, start_step, global_step = state["epoch"], state["step"], state["global_step"]
        metrics = dict(state.get("metrics", {}))
    elif last.is_file():
        raise BlurgenError(f"{run_dir} already holds a run ({CHECKPOINTS}/{LAST}): add --resume to "
                           "continue it, or choose a new --out")
    trained = model
    if dist.distributed:
        ids = [dist.device.index] if dist.device.type == "cuda" else None
        trained = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=ids, find_unused_parameters=task.find_unused_parameters)
    log = RunLog(run_dir, enabled=dist.is_main, resume_at=global_step if resume else None)

    def checkpoint(at_epoch: int, at_step: int) -> None:
        if dist.is_main:
            save_checkpoint(last, {
                "task": task.name, "config": to_json(task.config), "blurgen_version": __version__,
                "data": task.data_identity(), "sources": task.data_sources(), "world": dist.world,
                "epoch": at_epoch, "step": at_step, "global_step": global_step, "metrics": metrics,
                "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scaler": scaler.state_dict()})

    try:
        while epoch < settings.epochs:
            trained.train()
            lr = learning_rate(settings, epoch)
            for group in optimizer.param_groups:
                group["lr"] = lr
            steps = task.steps_per_epoch(epoch, dist)
            bar = _progress(steps, start_step, f"epoch {epoch + 1}/{settings.epochs}", progress and dist.is_main)
            seen, clock = 0, time.perf_counter()
            for step, batch in enumerate(task.batches(epoch, start_step, dist), start=start_step):
                # each rank its own draws (one process: the step's); rank r of R at step s: s R + r
                rng = augment_generator(task.config.seed, epoch, step * dist.world + dist.rank, dist.device)
                with torch.autocast(dist.device.type, dtype=torch.float16, enabled=amp):
                    loss, parts, images = task.loss(trained, batch, dist, rng)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                if settings.grad_clip > 0:
                    scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
                scaler.step(optimizer)
                scaler.update()
                global_step += 1
                seen += images * dist.world
                parts = mean_across_ranks({"loss": float(loss.detach()), **parts}, dist)
                rate = seen / max(time.perf_counter() - clock, 1e-9)
                bar.set_postfix(loss=f"{parts['loss']:.4f}", img_s=f"{rate:.0f}")
                bar.update(1)
                if global_step % settings.log_every == 0:
                    log.write("step", epoch, global_step, {**parts, "images_per_s": rate, "lr": lr})
                if settings.checkpoint_every and global_step % settings.checkpoint_every == 0 and step + 1 < steps:
                    checkpoint(epoch, step + 1)
            bar.close()
            epoch, start_step = epoch + 1, 0
            trained.eval()
            with torch.no_grad():
                metrics = task.validate(model, dist)
            log.write("epoch", epoch, global_step, {**metrics, **task.epoch_stats(epoch - 1)})
            checkpoint(epoch, 0)
            log.plot()
    finally:
        log.close()
    final = run_dir / CHECKPOINTS / FINAL
    if dist.is_main:
        save_checkpoint(final, {"task": task.name, "config": to_json(task.config), "blurgen_version": __version__,
                                "sources": task.data_sources(), "epoch": epoch, "step": 0, "global_step": global_step,
                                "metrics": metrics, "model": model.state_dict()})
    return RunResult(run_dir, epoch, global_step, metrics, final)


def make_optimizer(settings: Any, model: torch.nn.Module) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if settings.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay)
    return torch.optim.Adam(params, lr=settings.lr, weight_decay=settings.weight_decay)


def learning_rate(settings: Any, epoch: int) -> float:
    """The rate of ``epoch``: ``lr`` times ``lr_gamma`` once per milestone reached (MultiStepLR's law)."""
    return settings.lr * settings.lr_gamma ** sum(epoch >= m for m in settings.lr_milestones)


def _progress(total: int, initial: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit="batch", disable=not enabled or None)
