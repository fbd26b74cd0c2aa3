"""Planning a flowpairs job: its sources, their split, and one work item per blurred image.

Video mode: every video or frame folder is a source, probed (frame count, size, frame rate)
without decoding; its windows (``blurgen.flowpairs.windows``) are the items. Synth mode: every
user pair, or every procedural scene, is a source with one item. Item ids run over the sources
in sorted order, so the plan, and hence every sample, does not depend on how many tasks share
it; the items of one source are contiguous, so a task decodes each video it touches once.
The split is by source (a seeded shuffle): no video, pair or scene gives samples to two splits.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from pathlib import Path

from blurgen.errors import BlurgenError, ConfigError
from blurgen.flowpairs.config import FlowpairsConfig
from blurgen.flowpairs.video import Source, find_sources, kept_frames, probe
from blurgen.flowpairs.windows import Window, plan_windows, window_lengths
from blurgen.rng import item_rng
from blurgen.splits import split_sources

STREAM_LENGTH = 2
STREAM_SCENE = 3
_FPS_RATIO_TOLERANCE = 0.01


@dataclasses.dataclass(frozen=True)
class SynthSource:
    """A synth-mode source: a user pair (``pair`` from ``list_user_pairs``) or procedural scene."""

    index: int
    source_id: str
    pair: object | None = None  # blurgen.flowpairs.user_pairs.UserPair


@dataclasses.dataclass(frozen=True)
class PairItem:
    """One blurred image to make: a window of a video, or a synth source."""

    item_id: int
    source: int            # index into Plan.sources
    split: str
    window: Window | None = None


@dataclasses.dataclass
class Plan:
    mode: str
    sources: list[Source] | list[SynthSource]
    items: list[PairItem]
    size: tuple[int, int] | None = None       # video: output (width, height)
    steps: list[int] = dataclasses.field(default_factory=list)            # video: frame step per source
    fps: list[float | None] = dataclasses.field(default_factory=list)     # video: rate after the step
    skipped_sources: dict[str, int] = dataclasses.field(default_factory=dict)


def make_plan(config: FlowpairsConfig) -> Plan:
    """The job's deterministic plan (probes the sources; reads no frames but one per frame folder)."""
    return _video_plan(config) if config.mode == "video" else _synth_plan(config)


def _synth_plan(config: FlowpairsConfig) -> Plan:
    if config.synth.pairs is not None:
        from blurgen.flowpairs.user_pairs import list_user_pairs

        pairs = list_user_pairs(Path(config.synth.pairs).expanduser())
        sources = [SynthSource(i, p.name, p) for i, p in enumerate(pairs)]
    else:
        sources = [SynthSource(i, f"scene-{i:05d}") for i in range(config.synth.scenes)]
    splits = split_sources(config.seed, [s.source_id for s in sources], config.split.val, config.split.test)
    items = [PairItem(s.index, s.index, splits[s.source_id]) for s in sources]
    return Plan("synth", sources, items)


def _video_plan(config: FlowpairsConfig) -> Plan:
    v, w = config.video, config.windows
    if v.videos is None:
        raise BlurgenError("video mode needs the videos: give --videos DIR (or set video.videos)")
    if v.size is not None and len(v.size) != 2:
        raise ConfigError(f"config key 'video.size' must be [width, height], got {list(v.size)}")
    sources = [probe(i, *found) for i, found in enumerate(find_sources(v.videos))]
    size = _output_size(config, sources)
    steps, fps = zip(*(_frame_step(config, s) for s in sources))
    lengths = window_lengths(w.lengths, w.length_range)
    stride = w.stride or max(lengths)
    splits = split_sources(config.seed, [s.source_id for s in sources], config.split.val, config.split.test)
    items: list[PairItem] = []
    skipped: Counter = Counter()
    for source, step in zip(sources, steps):
        def draw(k: int, source: Source = source) -> int:
            return int(item_rng(config.seed, source.index, STREAM_LENGTH, k).integers(len(lengths)))

        windows = plan_windows(kept_frames(source, step), lengths, stride=stride, per_anchor=w.per_anchor,
                               max_per_source=w.max_per_source, draw=draw)
        if not windows:
            skipped["shorter than the longest window"] += 1
        for window in windows:
            items.append(PairItem(len(items), source.index, splits[source.source_id], window))
    if not items:
        raise BlurgenError(f"no windows: every source in {v.videos} is shorter than the longest window "
                           f"({max(lengths)} frames{'' if steps[0] == 1 else ' after the frame step'})")
    return Plan("video", sources, items, size, list(steps), list(fps), dict(skipped))


def _output_size(config: FlowpairsConfig, sources: list[Source]) -> tuple[int, int]:
    if config.video.size is not None:
        return int(config.video.size[0]), int(config.video.size[1])
    first = sources[0]
    for s in sources[1:]:
        if (s.width, s.height) != (first.width, first.height):
            raise BlurgenError(f"sources differ in size ({first.source_id} is {first.width}x{first.height}, "
                               f"{s.source_id} {s.width}x{s.height}): set video.size=[W,H] to bring them "
                               "to one size")
    return first.width, first.height


def _frame_step(config: FlowpairsConfig, source: Source) -> tuple[int, float | None]:
    """(frame step, frame rate after it) of one source; BlurgenError when the rate is needed but unknown."""
    fps = config.video.fps or source.fps
    target = config.video.target_fps
    if target is None:
        return 1, fps
    if fps is None:
        what = "frame folders carry no frame rate" if source.kind == "frames" else "its container gives none"
        raise BlurgenError(f"{source.path}: frame rate unknown ({what}) but video.target_fps is set: "
                           "give it with video.fps=RATE")
    ratio = fps / target
    step = round(ratio)
    if step < 1 or not math.isclose(ratio, step, rel_tol=_FPS_RATIO_TOLERANCE):
        raise BlurgenError(f"{source.path}: {fps:g} fps is not a whole multiple of video.target_fps "
                           f"{target:g} (ratio {ratio:.3f}): choose a target that divides it")
    return step, fps / step
