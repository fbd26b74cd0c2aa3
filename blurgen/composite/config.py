"""Config of ``blurgen composite`` (config kind ``composite``); presets ``demo`` (default), ``paper``.

Every field is documented here; docs/composite.md sets them against the subtle-blur detection
paper (§3.1-3.2, §3.5) and explains the readings blurgen takes where the paper is silent.
"""

from __future__ import annotations

from blurgen.composite.blurs import BLUR_TYPES
from blurgen.composite.orientation import MASK_ORIENTATIONS
from blurgen.config import option, section
from blurgen.config.common import OutputSection, TasksSection
from blurgen.shards.schemas import COMPOSITE

KIND = "composite"
SCHEMA = COMPOSITE.name  # its fields: blurgen/shards/schemas.py

SAM_MODEL_TYPES = ("vit_b", "vit_l", "vit_h")  # segment-anything's model registry keys

# The paper's three-stage curriculum (§3.5): the types each stage allows, and whether the
# instances of one image-centric sample may each get their own type ("mixed instances"). The
# order of each tuple is the order random type draws index into; the last stage allows every
# registered type (blurgen.composite.blurs).
STAGES = {
    "stabilization": (("straight", "random_walk"), False),
    "mixed": (("straight", "random_walk", "curved", "rolling", "edge_ring"), False),
    "advanced": (BLUR_TYPES, True),
}


@section
class SourcesSection:
    images: str | None = option(None, "folder of source photos (JPEG/PNG, 8/16-bit, gray/RGB/RGBA, searched "
                                      "recursively); null: built-in procedural photos with exact masks")
    masks: str | None = option(None, "folder of instance masks for the photos: <name>.png label image "
                                     "(0 background, one value per instance) or <name>/*.png binary masks")
    mask_orientation: str | None = option(None, "how mask files of JPEGs with an EXIF orientation were made: "
                                                "stored (on the stored pixels: turned upright like the "
                                                "photo) or upright (on the photo as viewers show it); "
                                                "null: such photos are skipped and counted",
                                          choices=MASK_ORIENTATIONS)
    sam_checkpoint: str | None = option(None, "SAM checkpoint (.pth) to segment photos that have no mask "
                                              "files; masks are cached per photo next to the output")
    sam_model: str = option("vit_h", "SAM model type of the checkpoint", choices=SAM_MODEL_TYPES)
    procedural_count: int = option(24, "procedural photos made when no images folder is given", min=1)
    procedural_size: tuple[int, ...] = option((640, 480), "width and height of procedural photos, pixels",
                                              min=64, min_len=2)
    min_area: float = option(0.002, "drop instances smaller than this share of the photo", min=0.0, max=1.0)
    max_area: float = option(0.6, "drop instances larger than this share of the photo (backgrounds, "
                                  "whole-image masks)", min=0.0, max=1.0)


@section
class SamSection:
    points_per_side: int = option(32, "SamAutomaticMaskGenerator: grid of point prompts per side", min=1)
    points_per_batch: int = option(64, "point prompts run together (memory vs speed)", min=1,
                                   run_only=True)
    pred_iou_thresh: float = option(0.88, "keep masks whose predicted IoU is above this", min=0.0, max=1.0)
    stability_score_thresh: float = option(0.95, "keep masks whose stability score is above this",
                                           min=0.0, max=1.0)
    box_nms_thresh: float = option(0.7, "box IoU above which duplicate masks are suppressed", min=0.0, max=1.0)
    crop_n_layers: int = option(0, "extra layers of image crops (finer parts, slower)", min=0, max=4)
    min_mask_region_area: int = option(0, "remove islands and holes smaller than this, pixels (needs "
                                          "OpenCV; 0: off)", min=0)
    device: str = option("auto", "torch device for SAM: auto (CUDA when present), cpu, cuda, cuda:N",
                         run_only=True)


@section
class SamplesSection:
    per_source: int = option(4, "samples made from each source photo", min=1)
    width: int = option(512, "sample width, pixels", min=16, max=8192)
    height: int = option(512, "sample height, pixels", min=16, max=8192)
    mask_centric: float = option(0.5, "probability of a mask-centric sample (one instance, cropped around "
                                      "it); otherwise image-centric (whole photo, several instances)",
                                 min=0.0, max=1.0)
    crop_scale: tuple[float, ...] = option((1.5, 4.0), "mask-centric crop side over the instance's box side",
                                           min=1.0, span=True)
    crop_aspect: tuple[float, ...] = option((0.75, 1.333), "mask-centric crop aspect (width/height) "
                                                           "before resizing to the sample size",
                                            min=0.1, span=True)
    max_instances: int = option(4, "image-centric: at most this many instances get a coverage mode",
                                min=1)
    min_instance_px: int = option(64, "instances smaller than this many pixels after resizing are "
                                      "not chosen", min=1)
    val_fraction: float = option(0.15, "share of source photos (seeded) in the val split", min=0.0, max=1.0)


@section
class BlurSection:
    stage: str = option("advanced", "curriculum stage: stabilization (straight, random walk), mixed "
                                    "(+ curved, rolling, edge ring), advanced (+ zoom with rotation and "
                                    "a type per instance)", choices=tuple(STAGES))
    types: tuple[str, ...] = option((), "restrict to these of the stage's types; empty: all of them",
                                    choices=BLUR_TYPES)
    subtle_px: tuple[float, ...] = option((1.0, 4.0), "motion extent range of subtle blur, pixels",
                                          min=0.0, span=True)
    strong_px: tuple[float, ...] = option((4.0, 40.0), "motion extent range of strong blur, pixels",
                                          min=0.0, span=True)
    subtle_share: float = option(0.5, "probability that a blurred instance gets subtle blur", min=0.0, max=1.0)
    intensity_max_px: float = option(40.0, "blur_intensity = motion extent / this, clipped to [0, 1]",
                                     min=1e-3)
    curvature: tuple[float, ...] = option((0.15, 0.6), "curved: Bezier control offset over the chord",
                                          min=0.0, span=True)
    zoom_share: tuple[float, ...] = option((0.3, 0.8), "zoom with rotation: share of the motion from "
                                                       "scaling (the rest from rotation)",
                                           min=0.0, max=1.0, span=True)
    shake_steps: tuple[int, ...] = option((8, 24), "random walk: vertices of the camera-shake path",
                                          min=2, span=True)
    band_px: tuple[float, ...] = option((2.0, 10.0), "edge ring: band width around the boundary, pixels",
                                        min=0.5, span=True)
    readout: tuple[float, ...] = option((0.5, 3.0), "rolling: sensor readout time over exposure time",
                                        min=0.0, span=True)


@section
class CoverageSection:
    sharp: float = option(0.2, "weight of 'sharp' coverage (no blur: a negative)", min=0.0)
    full: float = option(0.5, "weight of 'full' coverage (the whole instance blurred)", min=0.0)
    partial: float = option(0.3, "weight of 'partial' coverage (random sub-regions blurred)", min=0.0)
    partial_area: tuple[float, ...] = option((0.3, 0.7), "partial: share of the instance blurred",
                                             min=0.05, max=0.95, span=True)
    transition_px: tuple[float, ...] = option((4.0, 16.0), "partial: width of the soft transition "
                                                           "between blurred and sharp parts, pixels",
                                              min=1.0, span=True)


@section
class CompositingSection:
    feather: float = option(0.25, "boundary feather radius as a share of the instance's motion extent",
                            min=0.0, max=2.0)
    feather_max_px: int = option(6, "largest feather radius, pixels", min=0, max=64)
    fill_margin_px: int = option(2, "the removed region (filled from its surroundings) reaches this far "
                                    "beyond the feathered instance, so no sharp rim stays", min=0, max=64)


@section
class PhotometricSection:
    probability: float = option(0.0, "probability that a sample gets global exposure and noise changes "
                                     "(applied to image and sharp alike, so they never reveal the mask)",
                                min=0.0, max=1.0)
    exposure_ev: tuple[float, ...] = option((-0.5, 0.5), "exposure change, stops", span=True)
    noise: tuple[float, ...] = option((0.002, 0.02), "sensor noise: standard deviation at full scale "
                                                     "(shot noise, linear light)", min=0.0, span=True)


@section
class CompositeConfig:
    """Everything ``blurgen composite`` needs; the same values and seed give the same bytes."""

    seed: int = option(0, "seed of every random choice (split, crops, instances, blur, coverage)", min=0)
    sources: SourcesSection = option(doc="photos and their instance masks", default_factory=SourcesSection)
    sam: SamSection = option(doc="SAM automatic mask generator settings (with sources.sam_checkpoint)",
                             default_factory=SamSection)
    samples: SamplesSection = option(doc="how samples are cut from the photos", default_factory=SamplesSection)
    blur: BlurSection = option(doc="the six blur types, their ranges and the curriculum stage",
                               default_factory=BlurSection)
    coverage: CoverageSection = option(doc="how much of each chosen instance is blurred",
                                       default_factory=CoverageSection)
    compositing: CompositingSection = option(doc="putting the blurred instance back",
                                             default_factory=CompositingSection)
    photometric: PhotometricSection = option(doc="optional global exposure and noise",
                                             default_factory=PhotometricSection)
    output: OutputSection = option(doc="shard writing", default_factory=OutputSection)
    farm: TasksSection = option(doc="how the job is cut into tasks", default_factory=TasksSection)


def allowed_types(config: CompositeConfig) -> tuple[str, ...]:
    """The blur types a sample may use: the stage's, narrowed by ``blur.types``."""
    stage_types, _ = STAGES[config.blur.stage]
    chosen = tuple(t for t in stage_types if not config.blur.types or t in config.blur.types)
    if not chosen:
        from blurgen.errors import ConfigError

        raise ConfigError(f"blur.types {list(config.blur.types)} has none of stage "
                          f"'{config.blur.stage}''s types {list(stage_types)}: widen blur.types or the stage")
    return chosen
