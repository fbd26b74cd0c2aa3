"""Config of ``blurgen flowpairs`` (config kind ``flowpairs``); presets ``default`` and ``retrieval``.

One config serves both modes: ``mode`` is set by the command (``blurgen flowpairs video`` or
``synth``); the sections of the other mode are kept in the resolved config but unused. Every
field is documented here; docs/flowpairs.md sets them against the flow-from-blur paper
("Dataset generation") and the blur-retrieval paper (§4.2).
"""

from __future__ import annotations

from blurgen.config import option, section
from blurgen.config.common import OutputSection, TasksSection
from blurgen.shards.schemas import FLOWPAIRS

KIND = "flowpairs"
SCHEMA = FLOWPAIRS.name  # its fields: blurgen/shards/schemas.py
MODES = ("video", "synth")
TRANSFERS = ("srgb", "gamma22")  # how frames are decoded to linear light (blurgen.flowpairs.averaging)


@section
class VideoSection:
    videos: str | None = option(None, "folder of videos (anything OpenCV's FFmpeg reads) and folders of "
                                      "frames, searched recursively, or one video file; --videos sets it")
    fps: float | None = option(None, "frame rate of every source, overriding the containers' (frame "
                                     "folders have none); only needed with target_fps", min=0.001)
    target_fps: float | None = option(None, "keep every k-th frame, k = fps / target_fps (a whole number "
                                            "within 1 %), e.g. 960 fps video used as 240 fps; null: "
                                            "every frame", min=0.001)
    size: tuple[int, ...] | None = option(None, "[width, height] of the output: frames are scaled in "
                                                "linear light to cover it and centre-cropped; null: the "
                                                "sources' own size (then all must have one size)",
                                          min=16, min_len=2)
    truncated: str = option("error", "a video that ends before its container's frame count: 'error' "
                                     "stops with one line naming it; 'skip' uses the frames that "
                                     "decode and counts the lost windows as 'truncated'",
                            choices=("error", "skip"))


@section
class WindowsSection:
    lengths: tuple[int, ...] = option((7,), "frames averaged per blurred image (the flow paper: 7 of "
                                            "240 fps); several values: see per_anchor",
                                      min=1, max=10_000, min_len=1)
    length_range: tuple[int, ...] | None = option(None, "[min, max] frames per image, every length in "
                                                        "between (the retrieval paper: [1, 200]); "
                                                        "replaces lengths when set",
                                                  min=1, max=10_000, span=True)
    per_anchor: str = option("all", "windows share a middle (sharp) frame, their anchor: 'all' makes one "
                                    "window of every length per anchor, 'one' one length drawn (seeded) "
                                    "per anchor", choices=("all", "one"))
    stride: int | None = option(None, "frames between anchors; null: the longest length (windows of "
                                      "that length do not overlap, as a slower camera's frames)", min=1)
    max_per_source: int = option(0, "keep at most this many anchors per source, evenly spread; 0: all",
                                 min=0)
    cut_threshold: float = option(0.35, "a scene cut lies between consecutive frames whose colour "
                                        "histograms differ by more than this (total variation, 0..1); "
                                        "windows across a cut are dropped; 1 turns it off",
                                  min=0.0, max=1.0)
    max_flow: float | None = option(100.0, "drop windows whose largest flow (either direction, over "
                                           "consistent pixels) exceeds this many pixels; null: no bound",
                                    min=0.0)
    min_flow: float = option(0.0, "drop windows whose largest flow is below this many pixels (static "
                                  "shots give no blur); 0: keep all", min=0.0)


@section
class BlurSection:
    transfer: str = option("srgb", "video mode: frames are averaged in linear light: 'srgb' decodes and re-encodes "
                                   "with the sRGB curve, 'gamma22' with a pure 2.2 power law",
                           choices=TRANSFERS)


@section
class FlowSection:
    estimator: str = option("dis-medium", "flow estimator for video mode, by registered name (built in: "
                                          "dis-ultrafast, dis-fast, dis-medium: OpenCV DIS presets)")
    consistency: bool = option(True, "video mode: flow_valid is the forward-backward consistency check "
                                     "(occlusions and estimator failures are invalid); false: all valid")
    consistency_alpha: float = option(0.01, "check passes where |f + b|^2 <= alpha (|f|^2 + |b|^2) + beta "
                                            "(Sundaram et al. 2010)", min=0.0)
    consistency_beta: float = option(0.5, "see consistency_alpha, px^2", min=0.0)
    min_valid: float = option(0.5, "drop windows where less than this share of the pixels pass the check "
                                   "(in either direction): the estimator failed, e.g. motion beyond its "
                                   "reach leaves a few percent consistent by chance", min=0.0, max=1.0)


@section
class SynthSection:
    pairs: str | None = option(None, "folder of frame pairs with .flo flow (blurgen, FlyingChairs or "
                                     "FlyingChairs2 naming); --pairs sets it; null: procedural scenes")
    scenes: int = option(24, "procedural scenes made when no pairs folder is given", min=1)
    size: tuple[int, ...] = option((320, 240), "[width, height] of procedural scenes", min=16, min_len=2)
    scene_displacement: float = option(100.0, "largest displacement procedural scenes aim at, px (15 % of "
                                              "scenes move 1-5 px, 70 % 5-60 px, 15 % 60 px up to this)",
                                       min=1.0)
    max_displacement: float = option(100.0, "discard pairs whose largest displacement |s| exceeds this, "
                                            "px (the flow paper: 100)", min=0.0)
    min_frames: int = option(5, "frames averaged are n = max(|s|, min_frames) (the flow paper: 5)",
                             min=2, max=10_000)


@section
class SplitSection:
    val: float = option(0.1, "share of sources (videos, pairs, scenes; seeded) in the val split",
                        min=0.0, max=1.0)
    test: float = option(0.1, "share of sources in the test split; the rest is train", min=0.0, max=1.0)


@section
class FlowpairsConfig:
    """Everything ``blurgen flowpairs`` needs; the same values and seed give the same bytes."""

    seed: int = option(0, "seed of every random choice (split, window lengths, procedural scenes)", min=0)
    mode: str = option("synth", "what the pairs come from; set by the command (flowpairs video / synth)",
                       choices=MODES)
    video: VideoSection = option(doc="video mode: the high-frame-rate sources",
                                 default_factory=VideoSection)
    windows: WindowsSection = option(doc="video mode: which frames are averaged and which windows are "
                                         "dropped", default_factory=WindowsSection)
    blur: BlurSection = option(doc="how frames are averaged", default_factory=BlurSection)
    flow: FlowSection = option(doc="video mode: pseudo ground-truth flow", default_factory=FlowSection)
    synth: SynthSection = option(doc="synth mode: pairs with known flow", default_factory=SynthSection)
    split: SplitSection = option(doc="train/val/test split by source", default_factory=SplitSection)
    output: OutputSection = option(doc="shard writing", default_factory=OutputSection)
    farm: TasksSection = option(doc="how the job is cut into tasks", default_factory=TasksSection)


