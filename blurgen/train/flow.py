"""Flow from one blurred image as a training task (Argaw et al., AAAI 2021): the loop's TrainTask.

Each step takes ``train.batch_size`` samples of the epoch's seeded order from the training split
(flow pairs, or renders made with ``images.flow: true``), decodes the image and both flows in
worker processes, and on the device normalises (and optionally mirrors or recolours) the image,
takes the central crop (``data.crop``), pads to the network's multiple (images by repeating the
edge, flows as invalid), runs :class:`~blurgen.train.flow_model.BlurFlowNet` and adds the
multi-scale EPE (:mod:`blurgen.train.flow_losses`). Validation after each epoch predicts every
validation image at full size (padded, cropped back) and scores it (:mod:`blurgen.flow.metrics`).
``docs/train-flow.md`` sets every config field against the paper.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch

from blurgen.errors import BlurgenError
from blurgen.flow.metrics import min_direction_epe
from blurgen.shards import ShardDataset
from blurgen.shards.schemas import FLOWPAIRS, RENDER
from blurgen.train.data import (DeviceAugment, EpochBatches, ShardTorchDataset, device_images,
                                require_schema, run_sources, split_files, to_device, validation_files)
from blurgen.train.distributed import DistContext
from blurgen.train.flow_config import TASK, FlowConfig, check_flow_config
from blurgen.train.flow_losses import flow_loss
from blurgen.train.flow_model import BlurFlowNet
from blurgen.train.padding import crop_to, pad_to_multiple

FLOW_FIELDS = ("image", "flow_fwd", "flow_bwd", "flow_valid")
EXACT = "exact"  # the flow source of render shards: computed from the stored poses, never estimated
_ORDER_STREAM = 0x464C4F57  # "FLOW": SeedSequence word of the epoch order


def flow_split_files(folder: str | Path, split: str) -> list[str]:
    """The shard files of ``split`` in ``folder``; flow shards only (checked over the whole folder
    first, so composite shards get the schema line, not a missing-split line)."""
    schema = require_schema(folder, [FLOWPAIRS, RENDER], f"flow needs {FLOWPAIRS.name} shards (blurgen flowpairs) "
                                                         f"or {RENDER.name} shards made with images.flow: true")
    if not schema.has("flow_fwd"):
        raise BlurgenError(f"{folder}: these render shards hold no flow (made with images.flow: false); "
                           "render again with --set images.flow=true")
    return split_files(folder, split)


def flow_sources(files: list[str]) -> list[str]:
    """What computed each sample's flow, in shard order: a flow-pairs shard's ``flow_source``
    (``exact`` or the estimator, e.g. ``dis-medium``); ``exact`` for renders (from the poses)."""
    data = ShardDataset(files, fields=())
    if data.shard_attrs(0).get("schema") == RENDER.name:
        return [EXACT] * len(data)
    return [str(s) for s in data.column("flow_source")]


def center_crop(x: torch.Tensor, crop: tuple[int, ...] | None) -> torch.Tensor:
    """The central ``[width, height]`` of (..., H, W, C) values (images, flows, masks); as is for None."""
    if crop is None:
        return x
    h, w = x.shape[-3:-1]
    cw, ch = int(crop[0]), int(crop[1])
    if cw > w or ch > h:
        raise BlurgenError(f"data.crop {cw}x{ch} is larger than the stored images ({w}x{h}): choose a smaller "
                           "crop, or null for the whole image")
    y0, x0 = (h - ch) // 2, (w - cw) // 2
    return x[..., y0:y0 + ch, x0:x0 + cw, :]


def check_crop_fits(config: FlowConfig, image_size: tuple[int, int]) -> None:
    center_crop(torch.zeros(1, *image_size, 1), config.data.crop)  # raises the one-line error


def network_input(images: torch.Tensor, config: FlowConfig, stride: int, *, augment: DeviceAugment | None = None,
                  generator: torch.Generator | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor | None, tuple[int, int]]:
    """uint8 (N, H, W, 3) on the device -> the padded normalised input, the mirror flags (None
    without augmentation) and the (height, width) before padding."""
    images = center_crop(images, config.data.crop)
    x, flipped = device_images(images, augment=augment, generator=generator)
    size = (x.shape[-2], x.shape[-1])
    return pad_to_multiple(x, stride), flipped, size


def flow_targets(batch: dict[str, Any], config: FlowConfig, stride: int,
                 flipped: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The batch's forward and backward flow (N, 2, H, W) and validity (N, 2, H, W) on the device,
    cropped like the image, mirrored where it was (the flow's u negated) and padded as invalid."""
    fwd, bwd, valid = (center_crop(batch[name], config.data.crop) for name in ("flow_fwd", "flow_bwd", "flow_valid"))
    fwd, bwd = (f.permute(0, 3, 1, 2).float() for f in (fwd, bwd))
    valid = valid.permute(0, 3, 1, 2).bool()
    if flipped is not None:
        sign = torch.tensor([-1.0, 1.0], device=fwd.device).view(1, 2, 1, 1)
        mirror = flipped.view(-1, 1, 1, 1)
        fwd = torch.where(mirror, fwd.flip(-1) * sign, fwd)
        bwd = torch.where(mirror, bwd.flip(-1) * sign, bwd)
        valid = torch.where(mirror, valid.flip(-1), valid)
    fwd, bwd = (pad_to_multiple(f, stride, mode="constant") for f in (fwd, bwd))
    valid = pad_to_multiple(valid.float(), stride, mode="constant").bool()
    return fwd, bwd, valid


def epoch_order(size: int, seed: int, epoch: int, batch_size: int, dist: DistContext) -> np.ndarray:
    """This rank's training samples of ``epoch``, in order: a permutation drawn from (seed, epoch),
    every R-th index for rank r of R, cut to whole batches."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, _ORDER_STREAM, epoch]))
    mine = rng.permutation(size)[dist.rank::dist.world]
    return mine[:batches_per_rank(size, batch_size, dist) * batch_size]


def batches_per_rank(size: int, batch_size: int, dist: DistContext) -> int:
    """Whole batches of one rank's share of ``size`` samples (every rank runs as many)."""
    return (size // dist.world) // batch_size


@dataclasses.dataclass
class FlowTask:
    """``blurgen train flow``: the task the loop (:mod:`blurgen.train.loop`) runs."""

    config: FlowConfig
    data: Path
    val: Path | None = None
    name: str = TASK
    find_unused_parameters: bool = False  # every parameter takes part in every step

    def __post_init__(self) -> None:
        check_flow_config(self.config)
        self.train_files = files = flow_split_files(self.data, self.config.data.train_split)
        self.dataset = ShardTorchDataset(files, FLOW_FIELDS, purpose="flow training")
        self.sample_ids = [str(s) for s in ShardDataset(files, fields=()).column("sample_id")]
        check_crop_fits(self.config, tuple(self.dataset.shards[0]["image"].shape[:2]))
        self.val_files = validation_files(self.data, self.val, self.config.data.val_split, flow_split_files)
        self._batches: EpochBatches | None = None  # made on the first epoch, on the run's device

    # ------------------------------------------------------------------ the loop's interface

    def build_model(self) -> torch.nn.Module:
        return BlurFlowNet(self.config)

    def data_identity(self) -> str:
        """The training samples by id, in shard order: a resume must see the same."""
        return hashlib.sha256(json.dumps(self.sample_ids).encode()).hexdigest()

    def data_sources(self) -> dict[str, Any]:
        return run_sources(self.data, self.config.data.train_split, self.train_files, self.val,
                           self.config.data.val_split, self.val_files)

    def steps_per_epoch(self, epoch: int, dist: DistContext) -> int:
        return batches_per_rank(len(self.dataset), self.config.train.batch_size, dist)

    def epoch_stats(self, epoch: int) -> dict[str, float]:
        return {}

    def batches(self, epoch: int, start_step: int, dist: DistContext) -> Iterator[Any]:
        if self._batches is None:
            c = self.config
            self._batches = EpochBatches(
                self.dataset, lambda e: epoch_order(len(self.dataset), c.seed, e, c.train.batch_size, dist),
                c.train, c.seed, dist.device)
        return self._batches(epoch, start_step)

    def loss(self, model: torch.nn.Module, batch: Any, dist: DistContext,
             rng: torch.Generator) -> tuple[torch.Tensor, dict[str, float], int]:
        batch = to_device(batch, dist.device)
        a = self.config.augment
        augment = DeviceAugment(a.hflip, a.brightness, a.contrast) if (a.hflip or a.brightness or a.contrast) else None
        stride = 2 ** self.config.model.levels
        x, flipped, _ = network_input(batch["image"], self.config, stride, augment=augment, generator=rng)
        fwd, bwd, valid = flow_targets(batch, self.config, stride, flipped)
        out = model(x)
        loss, parts = flow_loss(out.levels, fwd, bwd, valid, self.config.loss.level_weights,
                                self.config.loss.direction)
        return loss, parts, x.shape[0]

    def validate(self, model: torch.nn.Module, dist: DistContext) -> dict[str, float]:
        if self.val_files is None or not dist.is_main:
            return {}
        scores = [min_direction_epe(pred, truth["flow_fwd"], truth["flow_bwd"], truth["flow_valid"])
                  for pred, truth in predict_flows(model, self.val_files, self.config, dist.device,
                                                   workers=self.config.train.workers)]
        return {"epe_min": float(np.nanmean(scores)) if scores else float("nan")}


@torch.no_grad()
def predict_flows(model: torch.nn.Module, files: list[str], config: FlowConfig, device: torch.device, *,
                  batch_size: int = 16, workers: int = 0,
                  on_batch: Callable[[int], None] | None = None) -> Iterator[tuple[np.ndarray, dict[str, np.ndarray]]]:
    """Each sample's predicted full-resolution flow (H, W, 2) float32 in shard order, with its true
    ``flow_fwd``, ``flow_bwd``, ``flow_valid`` and ``image`` (all cropped by ``data.crop``)."""
    model.eval()
    stride = 2 ** config.model.levels
    dataset = ShardTorchDataset(files, FLOW_FIELDS, purpose="flow evaluation")
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers,
                                         pin_memory=device.type == "cuda")
    for batch in loader:
        x, _, (h, w) = network_input(batch["image"].to(device, non_blocking=True), config, stride)
        flows = crop_to(model(x).flow.float(), (h, w)).permute(0, 2, 3, 1).cpu().numpy()
        truth = {name: center_crop(batch[name], config.data.crop).numpy() for name in FLOW_FIELDS}
        for i, flow in enumerate(flows):
            yield flow, {name: values[i] for name, values in truth.items()}
        if on_batch:
            on_batch(len(flows))
