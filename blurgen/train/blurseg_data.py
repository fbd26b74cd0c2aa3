"""What blur segmentation trains on: composite shards, the curriculum over epochs, hard negatives.

- Files (:func:`composite_split_files`): ``--data`` is one ``blurgen composite`` output folder, or a
  folder holding one such folder per curriculum stage (``stabilization/``, ``mixed/``,
  ``advanced/``; any subset), made with ``--set blur.stage=<stage>``. Either way each sample's
  stage is the ``stage`` it recorded; in a stage folder it must be that folder's stage.
- Curriculum (paper §3.5, :func:`stage_of_epoch`): epochs before ``curriculum.mixed_from`` train on
  the stabilization samples, epochs before ``curriculum.advanced_from`` on stabilization and mixed
  ones, later epochs on all of them: a stage adds to what came before (a stage's composite data
  already includes the earlier types; keeping the earlier samples keeps the epoch diverse).
- Hybrid mask- and image-centric samples are read as the composite wrote them; its negatives
  (every instance left sharp) are ordinary samples.
- Hard negatives (:func:`epoch_items`): each epoch adds the ``sharp`` reference of a seeded share
  (``data.sharp_pairs``) of its blurred samples, labelled all-sharp: the same view without its
  blur, so nothing but blur can tell the two apart. Item ``i < N`` is sample ``i``; item ``N + i``
  is sample ``i``'s sharp reference (:class:`CompositeTrainingSet`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.utils.data

from blurgen.errors import BlurgenError
from blurgen.shards import ShardDataset
from blurgen.shards.schemas import COMPOSITE
from blurgen.train.blurseg_config import STAGE_ORDER, CurriculumSection
from blurgen.train.data import ShardTorchDataset, require_schema, split_files, split_names

_EPOCH_STREAM = 0x42534547  # "BSEG": SeedSequence word of the epoch draws


def stage_folders(folder: str | Path) -> list[Path]:
    """The curriculum stage folders of ``folder`` in training order; [] for one composite folder."""
    return [Path(folder) / stage for stage in STAGE_ORDER if (Path(folder) / stage).is_dir()]


def composite_split_names(folder: str | Path) -> list[str]:
    """The splits of a composite folder, or of its stage folders together, by shard name."""
    folders = stage_folders(folder) or [Path(folder)]
    return sorted({name for f in folders for name in split_names(f)})


def composite_split_files(folder: str | Path, split: str) -> list[str]:
    """The ``split`` shards of a composite folder, or of its stage folders; one line otherwise.

    Every stage folder must hold the split, or none may: *decision*: a split that only some stages
    have (e.g. one stage made with ``samples.val_fraction=0``) is refused, because validating on
    some stages would choose the evaluation thresholds for those stages' blur alone.
    """
    folder = Path(folder)
    folders = composite_folders(folder)
    if folders == [folder]:
        return split_files(folder, split)
    lacking = [f.name for f in folders if split not in split_names(f)]
    if lacking and len(lacking) < len(folders):
        having = [f.name for f in folders if f.name not in lacking]
        raise BlurgenError(f"{folder}: the stage folders {', '.join(having)} have '{split}' shards, "
                           f"{', '.join(lacking)} not: make every stage with the same samples.val_fraction "
                           "(each stage folder holds the same splits)")
    files = []
    for stage_folder in folders:
        found = split_files(stage_folder, split)
        recorded = sorted(set(ShardDataset(found, fields=()).column("stage")))
        if recorded != [stage_folder.name]:
            raise BlurgenError(f"{stage_folder} holds samples of stage {', '.join(recorded)}, not only "
                               f"{stage_folder.name}: make it with blurgen composite --set "
                               f"blur.stage={stage_folder.name}")
        files += found
    return files


def composite_folders(folder: str | Path) -> list[Path]:
    """The stage folders of ``folder``, else ``folder`` itself: each checked to hold composite shards."""
    folders = stage_folders(folder) or [Path(folder)]
    for f in folders:
        require_composite(f)
    return folders


def require_composite(folder: str | Path) -> None:
    """One line when a folder's shards are not a composite job's (e.g. render shards given to blur-seg)."""
    require_schema(folder, [COMPOSITE], f"blur segmentation needs {COMPOSITE.name} shards (blurgen composite)")


def stage_of_epoch(epoch: int, curriculum: CurriculumSection) -> str:
    """The curriculum stage of ``epoch`` (0-based)."""
    if epoch >= curriculum.advanced_from:
        return "advanced"
    return "mixed" if epoch >= curriculum.mixed_from else "stabilization"


def stages_of_epoch(epoch: int, curriculum: CurriculumSection) -> tuple[str, ...]:
    """The stages ``epoch`` draws from: its own and the earlier ones."""
    return STAGE_ORDER[:STAGE_ORDER.index(stage_of_epoch(epoch, curriculum)) + 1]


def epoch_items(stages: np.ndarray, blurred: np.ndarray, epoch: int, curriculum: CurriculumSection, *,
                sharp_pairs: float, seed: int, rank: int = 0, world: int = 1, batch_size: int = 1) -> np.ndarray:
    """Rank ``rank``'s items of ``epoch``, in order: the samples of the epoch's stage and the earlier
    ones plus the sharp references of ``round(sharp_pairs * blurred)`` of them (item ``N + i``),
    shuffled with (seed, epoch), cut to whole global batches and dealt out ``rank::world``."""
    pool = np.flatnonzero(np.isin(stages, stages_of_epoch(epoch, curriculum)))
    rng = np.random.default_rng(np.random.SeedSequence([seed, _EPOCH_STREAM, epoch]))
    candidates = pool[np.asarray(blurred, bool)[pool]]
    chosen = rng.choice(candidates, size=round(sharp_pairs * len(candidates)), replace=False)
    items = rng.permutation(np.concatenate([pool, len(stages) + np.sort(chosen)]))
    usable = len(items) // (batch_size * world) * batch_size * world
    return items[:usable][rank::world]


class CompositeTrainingSet(torch.utils.data.Dataset):
    """Item ``i < N``: sample ``i``'s ``image``, ``blur_mask`` and ``blur_intensity``; item ``N + i``: its
    ``sharp`` reference with an empty mask and zero intensity (a hard negative)."""

    def __init__(self, files: list[str]) -> None:
        self.samples = ShardTorchDataset(files, ("image", "blur_mask", "blur_intensity"), purpose="blur-seg training")
        self.references = ShardTorchDataset(files, ("sharp",), purpose="blur-seg's hard negatives")

    def __len__(self) -> int:
        return 2 * len(self.samples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        n = len(self.samples)
        if index < n:
            item = self.samples[index]
            return {"image": item["image"], "blur_mask": item["blur_mask"], "blur_intensity": item["blur_intensity"]}
        sharp = self.references[index - n]["sharp"]
        return {"image": sharp, "blur_mask": torch.zeros(sharp.shape[:2], dtype=torch.bool),
                "blur_intensity": torch.zeros(sharp.shape[:2], dtype=torch.float32)}
