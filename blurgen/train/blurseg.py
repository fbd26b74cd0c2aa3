"""The blur-segmentation baseline as a training task: SMBlurDetect on composite shards (subtle-blur
paper §3.3-3.5).

Each step takes a batch of the epoch's curriculum draw (``blurseg_data``: the stage's samples and
the earlier stages', plus sharp references as hard negatives), decoded as uint8 in worker
processes. On the device: flip / photometric augmentation (labels follow the flip), the
resolution-aware rescaling (one factor per batch, drawn log-uniformly in ``augment.scale``; the
mask is resampled and thresholded at 1/2, the intensity map resampled and multiplied by the
factor, because it is a motion extent in pixels over a fixed maximum and clipped to 1),
normalisation and the optional blur-frequency channel; then the U-Net (``blurseg_model``) and the
loss of Eq. 1-10 (``blurseg_losses``). Validation after each epoch scores the validation split
and grid-searches the thresholds that evaluation then uses (``blurseg_metrics``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from blurgen.errors import BlurgenError
from blurgen.shards import ShardDataset
from blurgen.train.blurseg_config import STAGE_ORDER, TASK, BlurSegConfig
from blurgen.train.blurseg_data import (CompositeTrainingSet, composite_split_files,
                                        composite_split_names, epoch_items, stage_of_epoch, stages_of_epoch)
from blurgen.train.blurseg_frequency import frequency_channel
from blurgen.train.blurseg_losses import (combine, deep_supervision_loss, mask_loss, masked_huber_loss,
                                          prevalence_loss)
from blurgen.train.blurseg_metrics import SegmentationTally, quantise
from blurgen.train.blurseg_model import PADDING, BlurSegNet
from blurgen.train.data import (IMAGENET_MEAN, IMAGENET_STD, DeviceAugment, EpochBatches, run_sources,
                                to_device, validation_files)
from blurgen.train.distributed import DistContext
from blurgen.train.loop import LossWeightsSetUnused
from blurgen.train.padding import pad_to_multiple


SHARP_SUFFIX = "#sharp"  # id of a sample's sharp reference when it is scored


@dataclasses.dataclass(frozen=True)
class EvalItem:
    """One image to score: its id, RGB uint8 pixels, true mask (None: unknown) and image label
    (True: blurred; None: unknown)."""

    sample_id: str
    image: np.ndarray
    mask: np.ndarray | None
    label: bool | None


def build_model(config: BlurSegConfig) -> BlurSegNet:
    m = config.model
    return BlurSegNet(m.encoder, encoder_weights=m.encoder_weights, encoder_depth=m.encoder_depth,
                      decoder_channels=tuple(m.decoder_channels), in_channels=4 if m.frequency_channel else 3,
                      aux_stages=m.aux_stages)


def model_inputs(images: torch.Tensor, config: BlurSegConfig) -> torch.Tensor:
    """Float RGB (N, 3, H, W) in 0..1 -> what the network takes: ImageNet-normalised RGB, and the
    blur-frequency channel computed on the image the network sees (after any rescaling)."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    x = (images - mean) / std
    if config.model.frequency_channel:
        x = torch.cat([x, frequency_channel(images, config.model.frequency_window)], dim=1)
    return x


def rescale(images: torch.Tensor, mask: torch.Tensor, intensity: torch.Tensor, factor: float
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Resolution-aware rescaling of a batch (N, C, H, W) by ``factor``: images bilinear (area-weighted
    when shrinking), the mask resampled and thresholded at 1/2, the intensity (a motion extent over a
    fixed maximum) resampled, times ``factor``, clipped to 1."""
    h, w = images.shape[-2:]
    size = (max(1, round(h * factor)), max(1, round(w * factor)))
    if size == (h, w):
        return images, mask, intensity

    def resample(x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, size=size, mode="bilinear", antialias=factor < 1, align_corners=False)

    return (resample(images).clamp_(0, 1), (resample(mask.float()) >= 0.5).float(),
            (resample(intensity) * factor).clamp_(0, 1))


@torch.no_grad()
def predict_items(model: torch.nn.Module, items: Iterable[EvalItem], config: BlurSegConfig, device: torch.device,
                  batch_size: int = 8) -> Iterator[tuple[EvalItem, np.ndarray, np.ndarray]]:
    """Each item with its blur probability and intensity maps (H, W float32), in order; consecutive
    items of one size are batched."""
    model.eval()
    pending: list[EvalItem] = []

    def flush() -> Iterator[tuple[EvalItem, np.ndarray, np.ndarray]]:
        images = torch.from_numpy(np.stack([it.image for it in pending])).to(device)
        x = images.permute(0, 3, 1, 2).float().div_(255)
        out = model(model_inputs(x, config))
        prob = torch.sigmoid(out.mask_logits.float())[:, 0].cpu().numpy()
        intensity = out.intensity.float()[:, 0].cpu().numpy()
        for k, item in enumerate(pending):
            yield item, prob[k], intensity[k]
        pending.clear()

    for item in items:
        if pending and (item.image.shape != pending[0].image.shape or len(pending) == batch_size):
            yield from flush()
        pending.append(item)
    if pending:
        yield from flush()


def shard_items(files: list[str]) -> Iterator[EvalItem]:
    """The samples of composite shards as items to score (label: any pixel blurred), each blurred
    one followed by its sharp reference (id ``<sample_id>#sharp``, an empty mask, label sharp):
    the hard negatives that make the image-level task two-sided, as GoPro's blurred/sharp pairs."""
    for sample in ShardDataset(files, fields=("image", "sharp", "blur_mask", "sample_id")):
        mask = np.asarray(sample["blur_mask"], bool)
        blurred = bool(mask.any())
        yield EvalItem(str(sample["sample_id"]), sample["image"], mask, blurred)
        if blurred:
            yield EvalItem(f"{sample['sample_id']}{SHARP_SUFFIX}", sample["sharp"], np.zeros_like(mask), False)


def tally_predictions(predictions: Iterable[tuple[EvalItem, np.ndarray, np.ndarray]], top_fraction: float
                      ) -> SegmentationTally:
    tally = SegmentationTally(top_fraction)
    for item, prob, _ in predictions:
        tally.add(item.sample_id, quantise(prob), item.mask, item.label)
    return tally


@dataclasses.dataclass
class BlurSegTask(LossWeightsSetUnused):
    """``blurgen train blur-seg``: the task the loop (:mod:`blurgen.train.loop`) runs."""

    config: BlurSegConfig
    data: Path
    val: Path | None = None
    name: str = TASK

    def __post_init__(self) -> None:
        self.train_files = files = composite_split_files(self.data, self.config.data.train_split)
        columns = ShardDataset(files, fields=())
        self.stages = np.asarray(columns.column("stage")).astype(str)
        self.blurred = np.asarray(columns.column("blurred"), bool)
        self.sample_ids = [str(s) for s in columns.column("sample_id")]
        self.dataset = CompositeTrainingSet(files)
        shapes = {tuple(ShardDataset(f, fields=("image",))[0]["image"].shape) for f, n in zip(files, columns.counts)
                  if n}
        if len(shapes) > 1:
            sizes = ", ".join(f"{w}x{h}" for h, w, _ in sorted(shapes))
            raise BlurgenError(f"{self.data}: the training samples differ in size ({sizes}); make every stage "
                               "with the same samples.width and samples.height")
        self._check_curriculum()
        self.val_files = validation_files(self.data, self.val, self.config.data.val_split, composite_split_files,
                                          composite_split_names)
        self._batches: EpochBatches | None = None  # made on the first epoch, on the run's device
        self._draws: dict[tuple[int, int, int], np.ndarray] = {}

    def _check_curriculum(self) -> None:
        """Every epoch's stage must have samples: one line naming the first that has none."""
        c, need = self.config, self.config.train.batch_size
        for epoch in range(c.train.epochs):
            stage = stage_of_epoch(epoch, c.curriculum)
            if np.isin(self.stages, stages_of_epoch(epoch, c.curriculum)).sum() < need:
                have = ", ".join(f"{s} {int((self.stages == s).sum())}" for s in STAGE_ORDER) or "none"
                raise BlurgenError(
                    f"{self.data}: epoch {epoch + 1} trains on stage '{stage}' and earlier, which has fewer samples "
                    f"than train.batch_size {need} (samples per stage: {have}); add that stage's data "
                    f"(blurgen composite --set blur.stage={stage}) or move curriculum.mixed_from/advanced_from")

    # ------------------------------------------------------------------ the loop's interface

    def build_model(self) -> torch.nn.Module:
        return build_model(self.config)

    def data_identity(self) -> str:
        """The training samples and their stages: a resume must see the same."""
        digest = hashlib.sha256("\n".join(self.sample_ids).encode())
        digest.update("\n".join(self.stages.tolist()).encode())
        return digest.hexdigest()

    def data_sources(self) -> dict[str, Any]:
        return run_sources(self.data, self.config.data.train_split, self.train_files, self.val,
                           self.config.data.val_split, self.val_files)

    def _draw(self, epoch: int, dist: DistContext) -> np.ndarray:
        key = (epoch, dist.rank, dist.world)
        if key not in self._draws:
            c = self.config
            self._draws = {key: epoch_items(self.stages, self.blurred, epoch, c.curriculum,
                                            sharp_pairs=c.data.sharp_pairs, seed=c.seed, rank=dist.rank,
                                            world=dist.world, batch_size=c.train.batch_size)}
        return self._draws[key]

    def steps_per_epoch(self, epoch: int, dist: DistContext) -> int:
        return len(self._draw(epoch, dist)) // self.config.train.batch_size

    def epoch_stats(self, epoch: int) -> dict[str, float]:
        """The epoch's stage (0, 1, 2), the samples of its stages and the sharp references added
        (``data_*``; before the draw is cut to whole batches)."""
        stage = stage_of_epoch(epoch, self.config.curriculum)
        pool = np.isin(self.stages, stages_of_epoch(epoch, self.config.curriculum))
        return {"data_stage": float(STAGE_ORDER.index(stage)), "data_samples": float(pool.sum()),
                "data_sharp_references": float(round(self.config.data.sharp_pairs * (pool & self.blurred).sum()))}

    def batches(self, epoch: int, start_step: int, dist: DistContext) -> Iterator[Any]:
        if self._batches is None:
            self._batches = EpochBatches(self.dataset, lambda e: self._draw(e, dist), self.config.train,
                                         self.config.seed, dist.device)
        return self._batches(epoch, start_step)

    def loss(self, model: torch.nn.Module, batch: Any, dist: DistContext,
             rng: torch.Generator) -> tuple[torch.Tensor, dict[str, float], int]:
        batch = to_device(batch, dist.device)
        images = batch["image"].float().div_(255)               # (B, H, W, 3) in 0..1
        mask = batch["blur_mask"].float()                       # (B, H, W)
        intensity = batch["blur_intensity"].float()
        a = self.config.augment
        if a.hflip or a.brightness or a.contrast:
            images, flipped = DeviceAugment(a.hflip, a.brightness, a.contrast)(images, rng)
            f = flipped.view(-1, 1, 1)
            mask, intensity = torch.where(f, mask.flip(2), mask), torch.where(f, intensity.flip(2), intensity)
        x, mask, intensity = images.permute(0, 3, 1, 2), mask.unsqueeze(1), intensity.unsqueeze(1)
        low, high = a.scale
        if high > low:
            draw = torch.empty(1, device=dist.device).uniform_(math.log(low), math.log(high), generator=rng)
            x, mask, intensity = rescale(x, mask, intensity, math.exp(float(draw)))
        out = model(model_inputs(x.contiguous(), self.config))
        c = self.config.loss
        shape = dict(bce=c.bce, dice=c.dice, focal_tversky=c.focal_tversky, alpha=c.tversky_alpha,
                     beta=c.tversky_beta, gamma=c.tversky_gamma, smooth=c.smooth)
        weights = c.weights()
        terms: dict[str, torch.Tensor] = {}
        if weights["seg"] > 0:
            terms["seg"] = mask_loss(out.mask_logits, mask, **shape)
        if weights["reg"] > 0:
            terms["reg"] = masked_huber_loss(out.intensity, intensity, mask, c.huber_delta)
        if weights["prev"] > 0:
            terms["prev"] = prevalence_loss(torch.sigmoid(out.mask_logits.float()), c.prevalence)
        if weights["aux"] > 0 and out.aux_logits:
            # the auxiliary heads see the padded input: their targets are the mask padded alike
            multiple = getattr(model, "module", model).multiple  # DDP wraps the network as .module
            terms["aux"] = deep_supervision_loss(out.aux_logits, pad_to_multiple(mask, multiple, mode=PADDING), **shape)
        total = combine(terms, weights)
        return total, {k: float(v.detach()) for k, v in terms.items()}, len(x)

    def validate(self, model: torch.nn.Module, dist: DistContext) -> dict[str, float]:
        if self.val_files is None or not dist.is_main:
            return {}
        tally = tally_predictions(predict_items(model, shard_items(self.val_files), self.config, dist.device,
                                                self.config.eval.batch_size), self.config.eval.image_top_fraction)
        return validation_metrics(tally, self.config.eval.threshold_step)


def validation_metrics(tally: SegmentationTally, step: float) -> dict[str, float]:
    """The epoch's validation numbers, at the thresholds grid-searched on this very set (which
    evaluation then takes from the checkpoint: ``pixel_threshold``, ``image_threshold``)."""
    pixel, image = tally.chosen(step)  # composite samples always have masks and labels
    assert pixel is not None and image is not None
    return {"mean_iou": pixel.mean_iou, "iou_blur": pixel.iou_blur, "f1": pixel.f1, "pr_auc": pixel.pr_auc,
            "pixel_threshold": pixel.threshold, "image_f1": image.f1, "image_roc_auc": image.roc_auc,
            "image_threshold": image.threshold}
