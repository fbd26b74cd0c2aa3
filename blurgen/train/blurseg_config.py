"""The config of ``blurgen train blur-seg`` (torch-free, so the CLI can print it without torch).

docs/train-blur-seg.md sets every field against the subtle-blur detection paper (§3.3-3.5, §4.2).
"""

from __future__ import annotations

from blurgen.composite.config import STAGES
from blurgen.config.schema import option, section
from blurgen.train.config import TrainSection

KIND = "train-blur-seg"  # presets: blurgen/config/presets/train-blur-seg-<name>.yaml
TASK = "blur-seg"        # the name checkpoints record

# The composite curriculum's stages in training order: the composite config's, which is torch-free
STAGE_ORDER = tuple(STAGES)


@section
class DataSection:
    train_split: str = option("train", "split of --data (or of each stage folder) that training draws from")
    val_split: str = option("val", "split validated on after each epoch (of --val, else of --data); skipped "
                                   "when the folder has none")
    sharp_pairs: float = option(0.1, "hard negatives: each epoch adds the sharp reference of this share of its "
                                     "blurred samples, labelled all-sharp (the same view, no blur)",
                                min=0.0, max=1.0)


@section
class CurriculumSection:
    mixed_from: int = option(0, "first epoch (0-based) of the mixed-realism stage; epochs before it train on "
                                "stabilization samples only (0: no stabilization-only epochs)", min=0)
    advanced_from: int = option(0, "first epoch of the advanced stage; an epoch trains on the samples of its "
                                   "stage and the earlier ones (0 and 0: every epoch on every sample)", min=0)


@section
class ModelSection:
    encoder: str = option("resnet50", "segmentation_models_pytorch encoder name (the paper: resnet50; the demo: "
                                      "resnet18)")
    encoder_weights: str | None = option(None, "a state-dict file for the encoder (e.g. ImageNet weights you "
                                               "downloaded; torchvision ResNet keys); null: random weights. "
                                               "Never downloaded")
    encoder_depth: int = option(5, "encoder stages (3-5): inputs are padded to a multiple of 2^depth", min=3, max=5)
    decoder_channels: tuple[int, ...] = option((256, 128, 64, 32, 16), "U-Net decoder widths, one per encoder "
                                                                       "stage (smp's default)", min=1, min_len=3)
    aux_stages: int = option(3, "deep supervision: auxiliary mask heads on this many intermediate decoder "
                                "stages (the ones before the last); 0: none", min=0, max=4)
    frequency_channel: bool = option(True, "add the blur-frequency input channel (local variance of the "
                                           "Laplacian, computed on the device)")
    frequency_window: int = option(7, "side of the window the Laplacian's variance is taken over, pixels (odd)",
                                   min=3)


@section
class LossSection:
    seg: float = option(1.0, "lambda_seg: weight of the mask loss (Eq. 2: BCE + Dice + Focal Tversky)", min=0.0)
    reg: float = option(1.0, "lambda_reg: weight of the intensity Huber loss inside the true mask (Eq. 7)",
                        min=0.0)
    prev: float = option(0.1, "lambda_prev: weight of the prevalence regulariser (Eq. 9)", min=0.0)
    aux: float = option(0.4, "lambda_aux: weight of the deep-supervision loss (Eq. 10)", min=0.0)
    bce: float = option(1.0, "weight of BCE inside the mask loss", min=0.0)
    dice: float = option(1.0, "weight of Dice inside the mask loss", min=0.0)
    focal_tversky: float = option(1.0, "weight of Focal Tversky inside the mask loss", min=0.0)
    tversky_alpha: float = option(0.7, "Tversky alpha: weight of false negatives (Abraham & Khan: 0.7)",
                                  min=0.0, max=1.0)
    tversky_beta: float = option(0.3, "Tversky beta: weight of false positives (Abraham & Khan: 0.3)",
                                 min=0.0, max=1.0)
    tversky_gamma: float = option(0.75, "Focal Tversky exponent: (1 - TI)^gamma (Abraham & Khan: 1/(4/3))",
                                  min=0.01)
    smooth: float = option(1.0, "smoothing added to Dice's and Tversky's numerator and denominator", min=0.0)
    huber_delta: float = option(0.1, "Huber delta: quadratic below, linear above (intensities are 0..1)",
                                min=1e-6)
    prevalence: float = option(0.1, "pi: expected share of blurred pixels (the demo composite data: about 0.1)",
                               min=0.0, max=1.0)

    def weights(self) -> dict[str, float]:
        return {"seg": self.seg, "reg": self.reg, "prev": self.prev, "aux": self.aux}


@section
class AugmentSection:
    scale: tuple[float, ...] = option((0.75, 1.25), "resolution-aware augmentation: each batch is rescaled by a "
                                                    "factor drawn log-uniformly in this range (intensity labels "
                                                    "scale with it); [1, 1]: off", min=0.1, span=True)
    hflip: float = option(0.5, "probability of a horizontal flip (labels follow)", min=0.0, max=1.0)
    brightness: float = option(0.0, "brightness factor drawn in [1 - b, 1 + b]", min=0.0, max=0.99)
    contrast: float = option(0.0, "contrast factor drawn in [1 - c, 1 + c]", min=0.0, max=0.99)


@section
class EvalSection:
    threshold_step: float = option(0.01, "grid step of the thresholds searched on the validation set (pixel: "
                                         "for IoU; image: for F1)", min=1e-4, max=0.5)
    image_top_fraction: float = option(0.01, "image-level score: mean blur probability of the image's most "
                                             "probable pixels, this share of them", min=1e-6, max=1.0)
    batch_size: int = option(8, "images per batch when validating (same-size images)", min=1, run_only=True)


@section
class BlurSegConfig:
    """Everything ``blurgen train blur-seg`` needs; the same values, data and seed give the same weights
    and metrics on the CPU."""

    seed: int = option(0, "seed of the initial weights, the epoch draws and augmentation", min=0)
    data: DataSection = option(doc="which samples train and validate", default_factory=DataSection)
    curriculum: CurriculumSection = option(doc="the three-stage curriculum over epochs (§3.5)",
                                           default_factory=CurriculumSection)
    model: ModelSection = option(doc="U-Net with mask and intensity heads (§3.3)", default_factory=ModelSection)
    loss: LossSection = option(doc="the training objective (§3.4, Eq. 1-10)", default_factory=LossSection)
    augment: AugmentSection = option(doc="augmentation on the device", default_factory=AugmentSection)
    eval: EvalSection = option(doc="thresholds and the image-level score (§4.2)", default_factory=EvalSection)
    # the loop's own defaults (Adam, ...); the presets set AdamW with clipping, as the paper trains
    train: TrainSection = option(doc="the training loop", default_factory=TrainSection)
