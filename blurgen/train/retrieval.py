"""The blur-retrieval baseline as a training task: BRIDGE trained with BLISS tuples (paper §3, §5).

Each step takes a batch of BLISS tuples (query, positive, five negatives; ``retrieval_sampling``)
from the epoch's balanced draw of the training split, decodes them in worker processes, and on
the device normalises (and optionally augments) them, runs BRIDGE once over all the tuple's
images and adds the paper's losses (Eq. 12): ArcFace over object identities on every image, the
contrastive loss on each tuple, blur estimation |p - (1 - BS)| and the L1 box loss on every image.
Validation after each epoch scores retrieval on the validation split (mAP@all, see
:func:`validation_map`). ``docs/train.md`` sets every config field against the paper.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from blurgen.errors import BlurgenError
from blurgen.shards import ShardDataset
from blurgen.shards.schemas import RENDER
from blurgen.train.data import (DeviceAugment, EpochBatches, ShardTorchDataset, device_images, hflip_boxes,
                                require_schema, run_sources, split_files, to_device, validation_files)
from blurgen.train.distributed import DistContext
from blurgen.train.loop import LossWeightsSetUnused
from blurgen.train.retrieval_losses import (ArcFace, blur_estimation_loss, combine_losses, contrastive_loss,
                                            localisation_loss, normalised_box)
from blurgen.train.retrieval_metrics import query_average_precisions, summarise
from blurgen.train.retrieval_config import TASK, RetrievalConfig
from blurgen.train.retrieval_model import Bridge
from blurgen.train.retrieval_sampling import Bliss, RetrievalColumns, RetrievalSampler

# what a training step reads from each image; the sampler's columns are read once besides
TRAIN_FIELDS = ("image", "blur_severity", "bbox")


class RetrievalModule(torch.nn.Module):
    """BRIDGE and the ArcFace classifier: what is trained, in one module so DDP syncs both."""

    def __init__(self, config: RetrievalConfig, num_classes: int) -> None:
        super().__init__()
        self.bridge = build_bridge(config)
        c = config.loss
        self.arcface = (ArcFace(num_classes, config.model.descriptor_dim, c.arcface_scale, c.arcface_margin)
                        if c.arcface > 0 else None)

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[Any, torch.Tensor | None]:
        out = self.bridge(images)
        return out, (self.arcface(out.descriptor, labels) if self.arcface is not None else None)


def build_bridge(config: RetrievalConfig) -> Bridge:
    m = config.model
    return Bridge(m.backbone, descriptor_dim=m.descriptor_dim, head_dim=m.head_dim, hidden_dim=m.hidden_dim,
                  gem_p=m.gem_p, freeze_norm=m.freeze_norm, backbone_weights=m.backbone_weights)


def render_split_files(folder: str | Path, split: str) -> list[str]:
    """The ``split`` shards of ``folder``; render shards only (checked over the whole folder first,
    so composite shards get the schema line, not a missing-split line)."""
    require_schema(folder, [RENDER], f"retrieval needs {RENDER.name} shards (blurgen render)")
    return split_files(folder, split)


@dataclasses.dataclass
class RetrievalTask(LossWeightsSetUnused):
    """``blurgen train retrieval``: the task the loop (:mod:`blurgen.train.loop`) runs."""

    config: RetrievalConfig
    data: Path
    val: Path | None = None
    name: str = TASK

    def __post_init__(self) -> None:
        self.train_files = files = render_split_files(self.data, self.config.data.train_split)
        self.columns = RetrievalColumns.from_dataset(ShardDataset(files, fields=()))
        # labels: the ArcFace class (object number) of every image, beside the fields read
        self.dataset = ShardTorchDataset(files, TRAIN_FIELDS, labels={"label": self.columns.object_code},
                                         purpose="retrieval training")
        self.image_size = tuple(self.dataset.shards[0]["image"].shape[:2])  # (H, W) as stored
        self.val_files = validation_files(self.data, self.val, self.config.data.val_split, render_split_files)
        self._batches: EpochBatches | None = None  # made on the first epoch, on the run's device
        self._tuples: RetrievalSampler | None = None  # BLISS's tuples of each epoch (it caches the last)

    # ------------------------------------------------------------------ the loop's interface

    def build_model(self) -> torch.nn.Module:
        return RetrievalModule(self.config, len(self.columns.objects))

    def _tuples_of(self, epoch: int, dist: DistContext) -> RetrievalSampler:
        """BLISS's draw set to ``epoch`` (made at the first call, for this rank)."""
        if self._tuples is None:
            c = self.config.loss
            bliss = Bliss(r=c.bliss_range, negatives=c.negatives)
            self._tuples = RetrievalSampler(self.columns, self.config.seed, bliss=bliss,
                                            sharp_only=self.config.data.sharp_only, rank=dist.rank, world=dist.world)
        self._tuples.set_epoch(epoch)
        return self._tuples

    def data_identity(self) -> str:
        """The training split's objects and images per trajectory: a resume must see the same."""
        c = self.columns
        digest = hashlib.sha256("\n".join(c.objects).encode())
        for column in (c.object_code, c.trajectory_id, c.blur_level, c.window_count):
            digest.update(np.ascontiguousarray(column, dtype=np.int64).tobytes())
        return digest.hexdigest()

    def data_sources(self) -> dict[str, Any]:
        return run_sources(self.data, self.config.data.train_split, self.train_files, self.val,
                           self.config.data.val_split, self.val_files)

    def steps_per_epoch(self, epoch: int, dist: DistContext) -> int:
        tuples = self._tuples_of(epoch, dist)
        if len(tuples) == 0:
            skipped = ", ".join(f"{k} {v}" for k, v in tuples.skipped.items() if v)
            raise BlurgenError(f"{self.data}: BLISS finds no training tuple ({skipped}): each query needs "
                               f"another trajectory of its object and {self.config.loss.negatives} images of "
                               "other objects within the blur range; render more objects or trajectories")
        return len(tuples) // self.config.train.batch_size

    def epoch_stats(self, epoch: int) -> dict[str, float]:
        """BLISS's queries left out of the epoch, by reason (``data_bliss_no_positive``, ...)."""
        tuples = self._tuples  # made by steps_per_epoch, which the loop asks first
        if tuples is None:
            return {}
        tuples.set_epoch(epoch)
        len(tuples)  # draws the epoch (cached) and its skip counts
        return {f"data_bliss_{k}": float(v) for k, v in tuples.skipped.items()}

    def batches(self, epoch: int, start_step: int, dist: DistContext) -> Iterator[Any]:
        if self._batches is None:
            self._batches = EpochBatches(self.dataset, lambda e: list(self._tuples_of(e, dist)), self.config.train,
                                         self.config.seed, dist.device)
        return self._batches(epoch, start_step)

    def loss(self, model: torch.nn.Module, batch: Any, dist: DistContext,
             rng: torch.Generator) -> tuple[torch.Tensor, dict[str, float], int]:
        batch = to_device(batch, dist.device)
        images = batch["image"]                              # (B, T, H, W, 3) uint8, T = 2 + negatives
        b, t = images.shape[:2]
        a = self.config.augment
        augment = DeviceAugment(a.hflip, a.brightness, a.contrast) if (a.hflip or a.brightness or a.contrast) else None
        x, flipped = device_images(images, augment=augment, generator=rng)
        x = resize_to(x.reshape(b * t, *x.shape[2:]), self.config.data.input_size)
        labels = batch["label"].reshape(-1).long()
        out, arcface = model(x, labels)
        d = out.descriptor.reshape(b, t, -1)
        h, w = self.image_size
        boxes = batch["bbox"].reshape(b * t, 4)
        if flipped is not None:
            boxes = hflip_boxes(boxes, w, flipped)
        terms = {"contrastive": contrastive_loss(d[:, 0], d[:, 1], d[:, 2:], self.config.loss.contrastive_margin),
                 "blur": blur_estimation_loss(out.blur, batch["blur_severity"].reshape(-1)),
                 "localisation": localisation_loss(out.box, normalised_box(boxes, h, w))}
        if arcface is not None:
            terms["arcface"] = arcface
        weights = self.config.loss.weights()
        total = combine_losses({k: v for k, v in terms.items() if weights[k] > 0}, weights)
        return total, {k: float(v.detach()) for k, v in terms.items()}, b * t

    def validate(self, model: torch.nn.Module, dist: DistContext) -> dict[str, float]:
        if self.val_files is None or not dist.is_main:
            return {}
        # the loop hands validate the unwrapped module (not the DDP wrapper)
        return validation_map(model.bridge, self.val_files, self.config, dist.device, workers=self.config.train.workers)


def resize_to(x: torch.Tensor, size: tuple[int, ...] | None) -> torch.Tensor:
    """Normalised NCHW images resized to ``[width, height]`` (area-weighted when shrinking)."""
    if size is None or (x.shape[-1], x.shape[-2]) == tuple(size):
        return x
    return F.interpolate(x, size=(size[1], size[0]), mode="bilinear", antialias=True, align_corners=False)


@torch.no_grad()
def describe_images(bridge: Bridge, files: list[str], config: RetrievalConfig, device: torch.device, *,
                    batch_size: int = 64, workers: int = 0, extra_fields: tuple[str, ...] = (),
                    on_batch: Callable[[int], None] | None = None) -> tuple[torch.Tensor, dict[str, np.ndarray]]:
    """Descriptors (N, D) of every image in ``files``, in shard order, and their label columns;
    ``workers`` processes decode, ``on_batch(n)`` is told of each batch of ``n`` images done."""
    bridge.eval()
    dataset = ShardTorchDataset(files, ("image",), purpose="retrieval evaluation")
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers,
                                         pin_memory=device.type == "cuda")
    out = []
    for batch in loader:
        x, _ = device_images(batch["image"].to(device, non_blocking=True))
        out.append(bridge(resize_to(x, config.data.input_size)).descriptor.float())
        if on_batch:
            on_batch(len(x))
    shards = ShardDataset(files, fields=())
    fields = ("object_id", "trajectory_id", "blur_level", "window_count", "sample_id", *extra_fields)
    columns = {name: np.asarray(shards.column(name)) for name in fields}
    return torch.cat(out) if out else torch.zeros(0, config.model.descriptor_dim), columns


def validation_map(bridge: Bridge, files: list[str], config: RetrievalConfig, device: torch.device, *,
                   workers: int = 0) -> dict[str, float]:
    """mAP@all on the validation split, queried the way the test protocol queries.

    The validation split has no query/database roles (only test objects get them), so each
    object's first trajectory (lowest ``trajectory_id``) plays the query and its other
    trajectories the database; a query's positives are the database images of its object.
    """
    descriptors, cols = describe_images(bridge, files, config, device, workers=workers)
    objects, codes = np.unique(cols["object_id"].astype(str), return_inverse=True)
    first = {o: cols["trajectory_id"][codes == i].min() for i, o in enumerate(objects)}
    is_query = np.array([cols["trajectory_id"][j] == first[str(cols["object_id"][j])] for j in range(len(codes))])
    if not is_query.any() or is_query.all():
        return {}
    ap = query_average_precisions(descriptors[is_query], descriptors[~is_query], codes[is_query], codes[~is_query],
                                  device=device)
    summary = summarise(ap, cols["blur_level"][is_query])
    return {"map_all": summary.map, **{f"map_level_{k}": v for k, v in summary.per_level.items()}}
