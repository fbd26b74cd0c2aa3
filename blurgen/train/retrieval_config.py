"""The config of ``blurgen train retrieval`` (torch-free, so the CLI can print it without torch).

docs/train.md sets every field against the blur-retrieval paper.
"""

from __future__ import annotations

from blurgen.config.schema import option, section
from blurgen.train.config import TrainSection

KIND = "train-retrieval"  # presets: blurgen/config/presets/train-retrieval-<name>.yaml
TASK = "retrieval"        # the name checkpoints record
BACKBONE_NAMES = ("resnet18", "resnet34", "resnet50")  # torchvision ResNets BRIDGE can start from


@section
class DataSection:
    train_split: str = option("train", "split of --data that training draws from")
    val_split: str = option("val", "split validated on after each epoch (of --val, else of --data); "
                                   "skipped when the folder has none")
    sharp_only: bool = option(False, "train on the sharp images only (the paper's 'Ours-sharp' baseline)")
    input_size: tuple[int, ...] | None = option(None, "[width, height] the model sees (resized on the "
                                                      "device); null: the stored size", min=16, min_len=2)


@section
class ModelSection:
    backbone: str = option("resnet50", "ResNet backbone up to its last downsampling block (the paper: "
                                       "resnet50)", choices=BACKBONE_NAMES)
    backbone_weights: str | None = option(None, "a torchvision ResNet state dict file to start from (e.g. "
                                                "ImageNet weights you downloaded); null: random weights")
    descriptor_dim: int = option(128, "descriptor size (the paper: 128)", min=1)
    head_dim: int = option(1024, "width of the blur and localisation features joined into the descriptor",
                           min=1)
    hidden_dim: int = option(256, "hidden width of the blur and box predictors", min=1)
    gem_p: float = option(3.0, "initial GeM power p (learnt; the paper: 3)", min=1.0)
    freeze_norm: bool = option(True, "frozen normalisation layers (the paper 'deactivates' them)")


@section
class LossSection:
    arcface_scale: float = option(30.0, "ArcFace scale s (the paper: 30)", min=0.0)
    arcface_margin: float = option(0.15, "ArcFace margin m (the paper: 0.15)", min=0.0, max=1.5)
    contrastive_margin: float = option(0.7, "contrastive margin (the paper: 0.7)", min=0.0)
    bliss_range: int = option(5, "BLISS blur-level range r: S 1, M 3, L 5 (the paper: 5)", min=0, max=9)
    negatives: int = option(5, "negatives per tuple (the paper: 5)", min=1)
    arcface: float = option(1.0, "weight of the ArcFace loss (0 drops it)", min=0.0)
    contrastive: float = option(1.0, "weight of the contrastive loss", min=0.0)
    blur: float = option(1.0, "weight of the blur-estimation loss (Eq. 7)", min=0.0)
    localisation: float = option(1.0, "weight of the box loss (Eq. 8)", min=0.0)

    def weights(self) -> dict[str, float]:
        return {"arcface": self.arcface, "contrastive": self.contrastive, "blur": self.blur,
                "localisation": self.localisation}


@section
class AugmentSection:
    hflip: float = option(0.0, "probability of a horizontal flip (boxes follow); the paper names none",
                          min=0.0, max=1.0)
    brightness: float = option(0.0, "brightness factor drawn in [1 - b, 1 + b]", min=0.0, max=0.99)
    contrast: float = option(0.0, "contrast factor drawn in [1 - c, 1 + c]", min=0.0, max=0.99)


@section
class RetrievalConfig:
    """Everything ``blurgen train retrieval`` needs; the same values, data and seed give the same
    weights and metrics on the CPU."""

    seed: int = option(0, "seed of the initial weights, the epoch draws, BLISS and augmentation", min=0)
    data: DataSection = option(doc="which images train and validate", default_factory=DataSection)
    model: ModelSection = option(doc="BRIDGE (§3.1)", default_factory=ModelSection)
    loss: LossSection = option(doc="the losses of §3.3 and BLISS (§3.2)", default_factory=LossSection)
    augment: AugmentSection = option(doc="augmentation on the device", default_factory=AugmentSection)
    train: TrainSection = option(doc="the training loop", default_factory=TrainSection)
