"""What a dataset card says about the generator behind a schema: its command, the paper it
implements (with BibTeX), the Hugging Face task categories and tags, and its known limits.

The limits are the measured ones of the generator's docs (docs/render.md, docs/composite.md,
docs/flowpairs.md) that a user of the data, not of blurgen, needs to know; some depend on the
config that made the set (e.g. where render's labels come from: the exact coverage or the colour
renders' alpha at the set's Cycles samples).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from blurgen import __version__

BLURGEN_BIBTEX = f"""@software{{blurgen,
  title   = {{blurgen: motion-blur training data from Blender renders, masked 2D blur and flow pairs}},
  version = {{{__version__}}},
  note    = {{HDF5 shards, dataset cards and Croissant metadata made with blurgen}}
}}"""

Limits = Callable[[Mapping[str, Any]], list[str]]


@dataclass(frozen=True)
class GeneratorInfo:
    command: str                   # the command that writes the schema
    what: str                      # one sentence: what a sample is
    paper: str                     # the paper's title
    bibtex: str
    task_categories: tuple[str, ...]
    tags: tuple[str, ...]
    wording: str                   # "module:attribute" of the pipeline's job-summary Wording
    limits: Limits = field(default=lambda config: [])
    reasons: Mapping[str, str] = field(default_factory=dict)  # drop reason -> why (the filter's rule)


def _render_limits(config: Mapping[str, Any]) -> list[str]:
    demo = config.get("assets", {}).get("objects") is None
    return _render_label_limits(config) + [
        "Objects and backgrounds are those of the asset manifests listed under \"How it was made\"; their "
        "licences bind the images.",
    ] + ["The objects are blurgen's procedural demo objects (textured meshes in ShapeNet's layout), not "
         "ShapeNet models: fine for tests and demos, not for measuring retrieval."] * demo


def _render_label_limits(config: Mapping[str, Any]) -> list[str]:
    """The limits of the coverage the labels come from (docs/render.md, "Labels from the exact
    coverage"). A config without ``labels.coverage`` was written before the exact coverage
    existed, when the labels came from the colour renders' alpha."""
    if config.get("labels", {}).get("coverage", "render") == "render":
        spp = config.get("cycles", {}).get("samples")
        return ["Blur severity reads slightly low at low Cycles sample counts: the labels come from the colour "
                "renders' alpha (`labels.coverage: render`), where a pixel the object covers only briefly gets no "
                "sample and drops out of the support (measured at 320x240 against 128 spp: 0.011 lower on average "
                "at 16 spp, 0.015 at 8 spp; about one image in eight falls one level). "
                f"This set was rendered with {spp} samples per pixel."]
    return ["The labels and `alpha` come from the object's exact coverage (`labels.coverage: exact`): its mesh's "
            "silhouette integrated over the exposure, with every triangle taken as opaque. Where a material is "
            "see-through (a transparent or alpha-textured shader, e.g. the glass of some ShapeNet cars), the "
            "image shows the background through it while `alpha` and the labels count the object as covering it.",
            "Coverage below 1/256 counts as none: `alpha` is 0 there, so the faintest tail of a streak is outside "
            "the support of Eq. 5, the box and `truncated` (about what a 256-spp render sees; the labels do not "
            "depend on the Cycles sample count)."]


def _composite_limits(config: Mapping[str, Any]) -> list[str]:
    maximum = config.get("blur", {}).get("intensity_max_px")
    procedural = config.get("sources", {}).get("images") is None
    return [
        "The blur is synthetic (six motion models applied to segmented regions in linear light); real "
        "camera blur also has defocus, noise and compression that the set does not model.",
        f"`blur_intensity` is the motion extent divided by {maximum} px (`blur.intensity_max_px`), clipped to 1.",
    ] + ["The photos are blurgen's procedural photos (landscape-like backgrounds with shapes), not real "
         "photographs."] * procedural


def _flowpairs_limits(config: Mapping[str, Any]) -> list[str]:
    estimator = config.get("flow", {}).get("estimator")
    video = config.get("mode") == "video"
    return ["The blurred image is an average of frames (a box exposure in linear light), not a real long "
            "exposure: rolling shutter and sensor noise are not modelled."] + \
        [f"The flow of video pairs is pseudo ground truth from a classical estimator ({estimator}); trust it "
         "only where `flow_valid` is true."] * video


GENERATORS: dict[str, GeneratorInfo] = {
    "blurgen.render/1": GeneratorInfo(
        command="blurgen render",
        what="3D objects moving on random 6D trajectories, rendered by Blender Cycles during the exposure "
             "and composited over landscape backgrounds in linear light, with exact alpha, blur severity, "
             "blur level and box",
        paper="Retrieval Robust to Object Motion Blur",
        bibtex="""@inproceedings{zou2024retrieval,
  title     = {Retrieval Robust to Object Motion Blur},
  author    = {Zou, Rong and Pollefeys, Marc and Rozumnyi, Denys},
  booktitle = {European Conference on Computer Vision (ECCV)},
  year      = {2024}
}""",
        task_categories=("image-feature-extraction", "object-detection"),
        tags=("motion-blur", "image-retrieval", "synthetic", "blender"),
        wording="blurgen.render.pipeline:WORDING",
        limits=_render_limits,
        reasons={"small": "the object covers less than `labels.min_coverage` of the pixels (paper §4.1: 1.5 %)",
                 "appearance_change": "the silhouettes at the window's first and last instants, aligned at their "
                                      "centroids, overlap with IoU under `labels.min_iou` (paper §4.1: 0.2)",
                 "no_support": "nothing of the object is left after eroding its coverage: Eq. 5 is undefined",
                 "above_max_level": "the blur level exceeds `labels.max_level` (the paper's Table 1 holds levels "
                                    "1-6 only)",
                 "truncated": "the object's coverage touches the image border and `labels.drop_truncated` is on "
                              "(blurgen's filter, not the paper's: checked after §4.1's)"}),
    "blurgen.composite/1": GeneratorInfo(
        command="blurgen composite",
        what="photos with segmented regions blurred by six physically motivated motion models, with the "
             "sharp image, the exact pixel blur mask and a blur-intensity map",
        paper="Subtle Motion Blur Detection and Segmentation from Static Image Artworks",
        bibtex="""@misc{smblurdetect,
  title = {Subtle Motion Blur Detection and Segmentation from Static Image Artworks},
  note  = {SMBlurDetect; see the paper for its authors and venue}
}""",
        task_categories=("image-segmentation", "image-classification"),
        tags=("motion-blur", "blur-detection", "synthetic"),
        wording="blurgen.composite.pipeline:WORDING",
        limits=_composite_limits),
    "blurgen.flowpairs/1": GeneratorInfo(
        command="blurgen flowpairs",
        what="blurred images made by averaging consecutive frames in linear light, with the first, middle "
             "and last frame and the optical flow between the first and the last",
        paper="Optical Flow Estimation from a Single Motion-blurred Image",
        bibtex="""@inproceedings{argaw2021flow,
  title     = {Optical Flow Estimation from a Single Motion-blurred Image},
  author    = {Argaw, Dawit Mureja and Kim, Junsik and Rameau, Francois and Cho, Jae Won and Kweon, In So},
  booktitle = {AAAI Conference on Artificial Intelligence},
  year      = {2021}
}""",
        task_categories=("image-to-image",),
        tags=("motion-blur", "optical-flow", "synthetic"),
        wording="blurgen.flowpairs.pipeline:WORDING",
        limits=_flowpairs_limits,
        reasons={"scene_cut": "the window spans a cut between shots (colour histograms)",
                 "large_flow": "the largest flow exceeds `windows.max_flow`",
                 "small_flow": "the largest flow is under `windows.min_flow`",
                 "inconsistent_flow": "fewer than `flow.min_valid` of the pixels pass the forward-backward check",
                 "truncated": "the video ended before its stated frame count (`video.truncated: skip`)",
                 "large_displacement": "a synthetic pair moves more than `synth.max_displacement` px",
                 "bad_pair": "a user pair could not be read or used"}),
}


def generator_info(schema: str) -> GeneratorInfo | None:
    """The card's facts about the generator of ``schema``; None for a schema no generator writes."""
    return GENERATORS.get(schema)


def stats_tables(info: GeneratorInfo | None, config: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """The generator's count tables of a shard's ``stats``, labelled: (tables each task counts for
    its own items, summed over tasks; tables of the plan, the same in every task)."""
    if info is None:
        return {}, {}
    module, _, name = info.wording.partition(":")
    wording = getattr(importlib.import_module(module), name)
    if isinstance(wording, Mapping):  # flowpairs words its summary per mode
        wording = wording.get(config.get("mode"), next(iter(wording.values())))
    return dict(wording.counts), dict(wording.job_counts)
