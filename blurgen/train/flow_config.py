"""The config of ``blurgen train flow`` (torch-free, so the CLI can print it without torch).

docs/train-flow.md sets every field against the flow-from-blur paper (Argaw et al., AAAI 2021).
Per-level lists run from level 1 (the finest, 1/2 of the input) to level ``model.levels`` (the
coarsest, 1/2^levels), so a list's i-th entry always belongs to the same resolution.
"""

from __future__ import annotations

from blurgen.config.schema import option, section
from blurgen.errors import BlurgenError
from blurgen.train.config import TrainSection

KIND = "train-flow"  # presets: blurgen/config/presets/train-flow-<name>.yaml
TASK = "flow"        # the name checkpoints record
DIRECTIONS = ("forward", "min")  # what the loss compares a prediction with (LossSection.direction)
CONTEXT_DILATIONS = (1, 2, 4, 8, 16, 1)  # the context network's dilations (the paper), then a 1-dilated output


@section
class DataSection:
    train_split: str = option("train", "split of --data that training draws from")
    val_split: str = option("val", "split validated on after each epoch (of --val, else of --data); "
                                   "skipped when the folder has none")
    crop: tuple[int, ...] | None = option(None, "[width, height] of a central crop taken on the device before "
                                                "training (the paper: [256, 256]); null: the whole stored "
                                                "image, padded to the network's multiple", min=8, min_len=2)


@section
class ModelSection:
    levels: int = option(6, "pyramid levels: the encoder halves the size this many times; flow is estimated "
                            "at 1/2 .. 1/2^levels (the paper: 6)", min=2, max=8)
    widths: tuple[int, ...] = option((16, 32, 64, 96, 128, 196), "encoder (and decoded feature) channels per "
                                     "level, finest first; one per level", min=1, min_len=2)
    dense_widths: tuple[int, ...] = option((128, 128, 96, 64, 32), "channels of the densely connected 3x3 "
                                           "layers of each flow decoder (the paper: five layers); a refining "
                                           "block uses them with its last layer set to its level's width",
                                           min=1, min_len=1)
    context_widths: tuple[int, ...] = option((128, 128, 128, 96, 64, 32), "channels of the context network's "
                                             "six dilated layers (dilations 1, 2, 4, 8, 16, 1), before its "
                                             "2-channel output layer", min=1, min_len=6)
    search_range: int = option(4, "cost-volume neighbourhood: displacements -d..d in x and y (the paper: 4)",
                               min=1, max=8)
    stn_width: int = option(32, "hidden channels of each spatial transformer's localisation network", min=1)


@section
class LossSection:
    level_weights: tuple[float, ...] = option((0.005, 0.01, 0.02, 0.04, 0.08, 0.32),
                                              "weight of each level's EPE, finest first (the paper: w1 = "
                                              "0.005 .. w6 = 0.32); one per level", min=0.0, min_len=1)
    direction: str = option("forward", "forward: the prediction against the first -> last flow (the paper); "
                                       "min: per sample against the direction it is closer to (the "
                                       "evaluation's min(EPE fwd, EPE bwd), for data whose direction of "
                                       "time no image can tell)", choices=DIRECTIONS)


@section
class AugmentSection:
    hflip: float = option(0.0, "probability of a horizontal mirror (the flow follows: mirrored, u negated); "
                               "the paper names none", min=0.0, max=1.0)
    brightness: float = option(0.0, "brightness factor drawn in [1 - b, 1 + b]", min=0.0, max=0.99)
    contrast: float = option(0.0, "contrast factor drawn in [1 - c, 1 + c]", min=0.0, max=0.99)


@section
class FlowConfig:
    """Everything ``blurgen train flow`` needs; the same values, data and seed give the same weights
    and metrics on the CPU."""

    seed: int = option(0, "seed of the initial weights, the epoch order and augmentation", min=0)
    data: DataSection = option(doc="which images train and validate", default_factory=DataSection)
    model: ModelSection = option(doc="the network: encoder, first/last feature decoders, coarse-to-fine "
                                     "flow estimator", default_factory=ModelSection)
    loss: LossSection = option(doc="multi-scale end-point error (Eq. 6)", default_factory=LossSection)
    augment: AugmentSection = option(doc="augmentation on the device", default_factory=AugmentSection)
    train: TrainSection = option(doc="the training loop", default_factory=TrainSection)


def check_flow_config(config: FlowConfig) -> None:
    """One line when per-level lists disagree with ``model.levels`` (the loader checks each field
    alone; this checks them together)."""
    m = config.model
    for name, values in (("model.widths", m.widths), ("loss.level_weights", config.loss.level_weights)):
        if len(values) != m.levels:
            raise BlurgenError(f"{name} has {len(values)} entries for model.levels={m.levels}: give one per level")
    if len(m.context_widths) != len(CONTEXT_DILATIONS):
        raise BlurgenError(f"model.context_widths needs {len(CONTEXT_DILATIONS)} entries (one per dilation "
                           f"{', '.join(map(str, CONTEXT_DILATIONS))}), got {len(m.context_widths)}")
    crop = config.data.crop
    if crop is not None and len(crop) != 2:
        raise BlurgenError(f"data.crop must be [width, height], got {list(crop)}")
