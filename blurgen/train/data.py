"""Shards to device-ready batches: a torch dataset, its DataLoader, and the on-device step.

DESIGN.md (Trainer): shards -> schema-aware torch dataset (workers decode uint8) -> device
batches (normalise/augment on the GPU). The split of work is for throughput: worker processes
only inflate chunks and hand over uint8 (a quarter of float32's bytes through shared memory,
pinned memory and PCIe), and the device does the arithmetic per pixel, where it is nearly free.

- :class:`ShardTorchDataset` reads only the fields a task names (each field is a separate HDF5
  dataset, so an unread field costs nothing), checks them up front with one clear line, and
  takes an int (one image) or a sequence of ints (a tuple, e.g. BLISS's query, positive and
  negatives) as its index. Per-image labels computed once in the main process from small columns
  (e.g. the ArcFace class of an object id) come in as ``labels`` arrays.
- :func:`make_loader`: pinned memory on CUDA, persistent workers, and worker seeds derived from
  the run's seed (a torch Generator seeded through ``SeedSequence``), so two runs with one seed
  hand over the same batches. :class:`EpochBatches`: a task's batches epoch by epoch, on one
  such loader for the run, resumable at a step (:class:`EpochItems` decides the items).
- :func:`device_images`: uint8 (..., H, W, 3) -> float (..., 3, H, W) normalised with ImageNet's
  mean and std (the backbones' convention, random or pre-trained), optionally augmented on the
  device first (:class:`DeviceAugment`, off in the paper preset: the paper names no augmentation).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Collection, Iterator, Mapping, Sequence

import numpy as np
import torch
import torch.utils.data

from blurgen.errors import BlurgenError
from blurgen.shards import Schema, ShardDataset, folder_schema, parse_shard_filename, read_manifest, shard_fields
from blurgen.shards.manifest import list_shard_files

# torchvision's ImageNet statistics (RGB, on 0..1), the inputs every torchvision backbone expects.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

SMALL_FIELD_BYTES = 64  # per sample: fields this small are held in memory, not read per item
_LOADER_STREAM = 0x4C4F4144  # "LOAD": SeedSequence word of the DataLoader's generator
_AUGMENT_STREAM = 0x41554720  # "AUG ": SeedSequence word of the augmentation generator


def split_names(folder: str | Path) -> list[str]:
    """The splits of a folder's shards, by their names (``<split>-i-of-n.h5``; no shard is opened)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise BlurgenError(f"shard folder not found: {folder}")
    return sorted({parsed[0] for name in _shard_names(folder) if (parsed := parse_shard_filename(name))})


def split_files(folder: str | Path, split: str) -> list[str]:
    """The shard files of one split in a folder (by their names: ``<split>-i-of-n.h5``).

    A render folder holds train, val and test shards side by side; a trainer reads one split.
    """
    folder = Path(folder)
    splits = split_names(folder)
    files = [str(folder / name) for name in _shard_names(folder)
             if (parsed := parse_shard_filename(name)) and parsed[0] == split]
    if not files:
        raise BlurgenError(f"{folder} has no '{split}' shards (splits there: {', '.join(splits) or 'none'})")
    return files


def _shard_names(folder: Path) -> list[str]:
    manifest = read_manifest(folder)
    if manifest is not None:
        return [e["file"] for e in manifest["shards"]]
    return [p.name for p in list_shard_files(folder)]


def require_schema(folder: str | Path, allowed: Collection[Schema], purpose: str) -> Schema:
    """The schema of a folder's shards (``blurgen.shards.folder_schema``: every shard of the folder,
    so a mixed folder is refused too) when it is one of ``allowed``; one line naming what
    ``purpose`` (e.g. "flow needs ... (blurgen flowpairs)") needs otherwise. Checked before any
    split is looked up, so shards of another kind get this line, not a missing-split one."""
    schema = folder_schema(folder)
    if schema.name not in {s.name for s in allowed}:
        raise BlurgenError(f"{folder}: {purpose}; these are {schema.name}")
    return schema


def validation_files(data: str | Path, val: str | Path | None, split: str,
                     find: Callable[[str | Path, str], list[str]] = split_files,
                     splits: Callable[[str | Path], list[str]] = split_names) -> list[str] | None:
    """A run's validation shards: ``split`` of ``val`` when it is given, else of ``data``.

    None (the run trains without validation) only when ``val`` is not given and ``data`` has no
    shard of ``split`` at all, by name (``splits``: a folder's split names, without reading a
    shard). Anything ``find`` (a task's own lister, e.g. one that checks the schema) refuses
    about a split that is there (another schema, a stage mismatch) is an error, and so is a shard
    that cannot be opened (each is opened here, before training, not first after an epoch): a
    broken validation split must never pass for a missing one.
    """
    if val is None and split not in splits(data):
        return None
    files = find(val if val is not None else data, split)
    ShardDataset(files, fields=())  # opens each shard: an unreadable one is a ShardError line
    return files


def run_sources(data: str | Path, train_split: str, train_files: Sequence[str], val: str | Path | None,
                val_split: str, val_files: Sequence[str] | None) -> dict[str, dict[str, Any] | None]:
    """Where a run's data came from, as its checkpoints store it: ``{"train": ..., "validation":
    ... or None}``, each a :func:`split_source`. Evaluation reads it to refuse scoring the shards a
    run chose its thresholds on and to flag scoring its training shards."""
    validation = (split_source(val if val is not None else data, val_split, val_files)
                  if val_files is not None else None)
    return {"train": split_source(data, train_split, train_files), "validation": validation}


def split_source(folder: str | Path, split: str, files: Sequence[str | Path]) -> dict[str, Any]:
    """A folder's split as the shards read: ``{"folder", "split", "files"}``, paths absolute."""
    return {"folder": str(Path(folder).resolve()), "split": split, "files": [str(Path(f).resolve()) for f in files]}


def shards_of(files: Sequence[str | Path], source: Mapping[str, Any] | None) -> list[str]:
    """The files among ``files`` that are shards of ``source`` (a :func:`split_source`), compared
    by absolute path."""
    known = set(source["files"]) if source else set()
    return [str(f) for f in files if str(Path(f).resolve()) in known]


class ShardTorchDataset(torch.utils.data.Dataset):
    """Items of shards as torch values: ``{field: tensor or str}`` for an int index, the same
    stacked along a new first axis (strings as a list) for a sequence of ints.

    Arrays keep their dtype (images stay uint8 (H, W, 3)); scalars become 0-d tensors.
    ``labels`` maps extra names to per-index arrays (``labels[name][index]``).
    """

    def __init__(self, source: str | Path | Sequence[str | Path], fields: Sequence[str], *,
                 labels: Mapping[str, np.ndarray] | None = None, purpose: str = "this task") -> None:
        probe = ShardDataset(source, fields=())  # counts only; no field is opened yet
        nonempty = [k for k, n in enumerate(probe.counts) if n > 0]
        if not nonempty:
            raise BlurgenError(f"{source}: the shards hold no samples")
        specs = {spec.name: spec for spec in shard_fields(probe.paths[nonempty[0]])}
        missing = [name for name in fields if name not in specs]
        if missing:
            schema = probe.shard_attrs(nonempty[0]).get("schema", "unknown")
            raise BlurgenError(f"{source}: shards of schema {schema} have no field "
                               f"{', '.join(repr(m) for m in missing)}, which {purpose} needs")
        # Small numeric fields (scalars, boxes) are read whole here, once: reading them per item
        # costs as much as inflating the item's image (h5py's per-read overhead), which would
        # halve what a worker serves. Only the large ones (images) are read per item.
        small = [n for n in fields if specs[n].dtype != "str"
                 and np.dtype(specs[n].dtype).itemsize * int(np.prod(specs[n].shape)) <= SMALL_FIELD_BYTES]
        self.shards = ShardDataset(probe.paths, fields=tuple(n for n in fields if n not in small))
        columns = {name: np.asarray(probe.column(name)) for name in small}
        self.labels = {**columns, **{name: np.asarray(values) for name, values in (labels or {}).items()}}
        for name, values in self.labels.items():
            if len(values) != len(self.shards):
                raise BlurgenError(f"label '{name}' has {len(values)} values for {len(self.shards)} samples")

    def __len__(self) -> int:
        return len(self.shards)

    def __getitem__(self, index: int | Sequence[int]) -> dict[str, Any]:
        if isinstance(index, (int, np.integer)):
            return self._item(int(index))
        items = [self._item(int(i)) for i in index]
        return {name: (torch.stack([it[name] for it in items]) if isinstance(items[0][name], torch.Tensor)
                       else [it[name] for it in items]) for name in items[0]}

    def _item(self, index: int) -> dict[str, Any]:
        item = {name: _to_torch(value) for name, value in self.shards[index].items()}
        item.update({name: torch.as_tensor(values[index]) for name, values in self.labels.items()})
        return item


def _to_torch(value: Any) -> torch.Tensor | str:
    if isinstance(value, str):
        return value
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value if value.flags.writeable else value.copy())
    return torch.as_tensor(value)  # NumPy scalar: a 0-d tensor of its dtype


class EpochItems(torch.utils.data.Sampler):
    """A task's items of the epoch set by :meth:`position`, from a given item on: a resumed run
    skips the batches it ran. ``draw(epoch)`` gives this rank's items of an epoch (a function of
    the epoch alone, so a resumed run draws what the interrupted one drew); caching is its own."""

    def __init__(self, draw: Callable[[int], Sequence[Any] | np.ndarray]) -> None:
        self.draw, self.epoch, self.start = draw, 0, 0

    def position(self, epoch: int, start: int) -> None:
        self.epoch, self.start = epoch, start

    def __len__(self) -> int:
        return max(0, len(self.draw(self.epoch)) - self.start)

    def __iter__(self) -> Iterator[Any]:
        items = self.draw(self.epoch)
        return iter((items.tolist() if isinstance(items, np.ndarray) else list(items))[self.start:])


class EpochBatches:
    """A run's batches, epoch by epoch: one :class:`EpochItems` over ``draw`` and one DataLoader
    (:func:`make_loader`) for the whole run, so its workers persist across epochs; calling it
    iterates an epoch from a given step on (a resumed run skips the steps it ran)."""

    def __init__(self, dataset: torch.utils.data.Dataset, draw: Callable[[int], Sequence[Any] | np.ndarray],
                 train: Any, seed: int, device: torch.device | str) -> None:
        """``train``: the task's ``train`` config section (its ``batch_size`` and ``workers``)."""
        self.batch_size = train.batch_size
        self.sampler = EpochItems(draw)
        self.loader = make_loader(dataset, batch_size=train.batch_size, sampler=self.sampler, seed=seed,
                                  workers=train.workers, device=device)

    def __call__(self, epoch: int, start_step: int) -> Iterator[Any]:
        self.sampler.position(epoch, start_step * self.batch_size)
        return iter(self.loader)


def seed_word(seed: int, stream: int, *more: int) -> int:
    """A 63-bit seed for torch drawn from ``SeedSequence([seed, stream, *more])``."""
    return int(np.random.SeedSequence([seed, stream, *more]).generate_state(1, np.uint64)[0] >> np.uint64(1))


def make_loader(dataset: torch.utils.data.Dataset, *, batch_size: int, sampler: torch.utils.data.Sampler,
                seed: int, workers: int = 2, device: torch.device | str = "cpu", drop_last: bool = True,
                prefetch_factor: int = 4) -> torch.utils.data.DataLoader:
    """The DataLoader of a task: ``sampler`` decides the items (call its ``set_epoch`` before each
    epoch), ``workers`` processes decode them and stay alive across epochs, and batches land in
    pinned memory when ``device`` is CUDA (so ``to_device`` copies asynchronously).

    Worker ``i``'s torch seed is ``base + i`` with ``base`` drawn from a generator seeded by the
    run's seed, so anything random in a worker repeats with the seed. Batches come in sampler
    order whatever the number of workers.
    """
    generator = torch.Generator()
    generator.manual_seed(seed_word(seed, _LOADER_STREAM))
    extra: dict[str, Any] = {"persistent_workers": True, "prefetch_factor": prefetch_factor} if workers > 0 else {}
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, sampler=sampler, num_workers=workers, generator=generator,
        pin_memory=torch.device(device).type == "cuda", drop_last=drop_last, **extra)


def to_device(batch: Mapping[str, Any], device: torch.device | str) -> dict[str, Any]:
    """Tensors of a batch moved to ``device`` (asynchronously from pinned memory); the rest as is."""
    return {name: value.to(device, non_blocking=True) if isinstance(value, torch.Tensor) else value
            for name, value in batch.items()}


@dataclass(frozen=True)
class DeviceAugment:
    """Per-image augmentation on the device, before normalisation, on values in 0..1.

    ``hflip``: probability of a horizontal flip (the caller mirrors its boxes with
    :func:`hflip_boxes`); ``brightness`` / ``contrast``: factors drawn uniformly in
    ``[1 - b, 1 + b]``, contrast scaling about each image's mean grey. Photometric changes leave
    every label of the render schema valid; geometric ones only the flip, which boxes follow.
    """

    hflip: float = 0.0
    brightness: float = 0.0
    contrast: float = 0.0

    def __post_init__(self) -> None:
        if not (0 <= self.hflip <= 1 and 0 <= self.brightness < 1 and 0 <= self.contrast < 1):
            raise BlurgenError(f"augmentation needs hflip in 0..1 and brightness, contrast in 0..1 (excl.), "
                               f"got {self.hflip}, {self.brightness}, {self.contrast}")

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``x``: float (N, H, W, 3) in 0..1 -> augmented x and the (N,) bool flip flags."""
        n = x.shape[0]

        def uniform(spread: float) -> torch.Tensor:  # (N, 1, 1, 1) factors in [1 - s, 1 + s]
            draw = torch.empty(n, device=x.device).uniform_(1 - spread, 1 + spread, generator=generator)
            return draw.view(n, 1, 1, 1)

        flipped = torch.empty(n, device=x.device).uniform_(0, 1, generator=generator) < self.hflip
        x = torch.where(flipped.view(n, 1, 1, 1), x.flip(2), x)
        if self.brightness:
            x = x * uniform(self.brightness)
        if self.contrast:
            grey = x.mean(dim=(1, 2, 3), keepdim=True)
            x = grey + (x - grey) * uniform(self.contrast)
        return x.clamp_(0, 1), flipped


def augment_generator(seed: int, epoch: int, step: int, device: torch.device | str) -> torch.Generator:
    """The generator of one step's augmentation: fixed by (seed, epoch, step), so a resumed run
    augments exactly as an uninterrupted one."""
    generator = torch.Generator(device=device)
    generator.manual_seed(seed_word(seed, _AUGMENT_STREAM, epoch, step))
    return generator


def device_images(images: torch.Tensor, *, augment: DeviceAugment | None = None,
                  generator: torch.Generator | None = None, mean: Sequence[float] = IMAGENET_MEAN,
                  std: Sequence[float] = IMAGENET_STD) -> tuple[torch.Tensor, torch.Tensor | None]:
    """uint8 (..., H, W, 3) on the device -> normalised float32 (..., 3, H, W), and the flip
    flags (leading dims flattened, None without augmentation).

    ``(x / 255 - mean) / std`` per channel, computed in the NHWC layout the images arrive in; the
    channel axis is then moved by a view, so a 4-d result is ``torch.channels_last`` in memory,
    the layout convolutions prefer on CUDA, and nothing is copied but the conversion itself.
    """
    if images.dtype != torch.uint8 or images.shape[-1] != 3:
        raise BlurgenError(f"expected uint8 images (..., H, W, 3), got {images.dtype} {tuple(images.shape)}")
    lead = images.shape[:-3]
    x = images.reshape(-1, *images.shape[-3:]).float()  # (N, H, W, 3): per-channel ops broadcast fastest
    flipped = None
    if augment is not None:
        if generator is None:
            raise BlurgenError("device augmentation needs a generator (augment_generator)")
        x, flipped = augment(x.div_(255), generator)
        x = x.mul_(255)
    s = torch.tensor(std, dtype=torch.float32, device=x.device)
    m = torch.tensor(mean, dtype=torch.float32, device=x.device)
    x = torch.addcmul(-m / s, x, 1 / (255 * s))  # (x/255 - m)/s in one pass: 6x faster on the CPU
    return x.permute(0, 3, 1, 2).reshape(*lead, 3, *x.shape[1:3]), flipped


def hflip_boxes(boxes: torch.Tensor, width: int, flipped: torch.Tensor) -> torch.Tensor:
    """Boxes ``x0, y0, x1, y1`` (x1 exclusive, pixels) of flipped images mirrored: x -> width - x."""
    mirrored = torch.stack([width - boxes[..., 2], boxes[..., 1], width - boxes[..., 0], boxes[..., 3]], dim=-1)
    return torch.where(flipped.view(-1, *([1] * (boxes.dim() - 1))), mirrored, boxes)
