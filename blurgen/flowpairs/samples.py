"""Turning one source's items into ``blurgen.flowpairs/1`` samples (or counted drops).

Video mode (:func:`video_samples`) streams a source's frames once, from the first frame its
items need to the last: each frame is added to a running linear-light sum (one addition per
frame whatever the windows' lengths and overlaps, see :mod:`blurgen.flowpairs.averaging`),
compared with the previous frame for a scene cut, and kept only if some window uses it as
first, middle or last frame. A window is finished as soon as its last frame arrives: its mean
is the running sum minus the snapshot taken before its first frame, then flow is estimated
both ways between its first and last frame and the window is kept or dropped.

Synth mode (:func:`synth_sample`) makes one sample per procedural scene or user pair with the
interpolation rule of the flow-from-blur paper (:mod:`blurgen.flowpairs.interpolate`).

Each yields ``(item, sample)`` or ``(item, Drop(reason))``; ``timings`` gathers seconds per
stage (decode, average, flow, synth) for the benchmark.
"""

from __future__ import annotations

import dataclasses
import time
from collections import defaultdict
from typing import Any, Iterator, MutableMapping, Sequence

import numpy as np

from blurgen.color import linear_to_srgb_uint8
from blurgen.flow.estimators import FlowEstimator
from blurgen.flow.warp import forward_backward_consistent
from blurgen.flowpairs.averaging import RunningSum
from blurgen.flowpairs.config import FlowpairsConfig
from blurgen.flowpairs.plan import STREAM_SCENE, PairItem, Plan, SynthSource
from blurgen.flowpairs.video import Source, TruncatedVideo, read_frames, resize_frame
from blurgen.flowpairs.windows import cut_distance, cut_feature, has_cut
from blurgen.rng import item_rng

EXACT = "exact"  # flow_source of samples whose flow is known, not estimated


@dataclasses.dataclass(frozen=True)
class Drop:
    """An item that gives no sample; ``reason`` is its key in the shard's ``dropped`` counts."""

    reason: str
    detail: str = ""  # e.g. which user pair and what is wrong with it


Timings = MutableMapping[str, float]


class _Clock:
    """Adds the seconds spent in a ``with`` block to ``timings[stage]``."""

    def __init__(self, timings: Timings, stage: str) -> None:
        self.timings, self.stage = timings, stage

    def __enter__(self) -> None:
        self.start = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.timings[self.stage] = self.timings.get(self.stage, 0.0) + time.perf_counter() - self.start


def video_sample_id(seed: int, source: Source, raw_start: int, length: int) -> str:
    return f"flowpairs-s{seed}-v{source.index:05d}-{raw_start:07d}-n{length}"


def synth_sample_id(seed: int, source: SynthSource) -> str:
    return f"flowpairs-s{seed}-synth-{source.index:05d}"


def largest_flow(flow_fwd: np.ndarray, flow_bwd: np.ndarray, valid: np.ndarray) -> float:
    """Largest vector length of either flow over its valid pixels (channel 0 forward, 1 backward)."""
    best = 0.0
    for c, flow in enumerate((flow_fwd, flow_bwd)):
        use = valid[..., c]
        if use.any():
            best = max(best, float(np.sqrt(np.max(np.sum(flow[use].astype(np.float64) ** 2, axis=1)))))
    return best


def video_samples(config: FlowpairsConfig, plan: Plan, source: Source, items: Sequence[PairItem],
                  estimator: FlowEstimator, timings: Timings | None = None
                  ) -> Iterator[tuple[PairItem, dict[str, Any] | Drop]]:
    """Every item of one video source (its windows, any order) as a sample or a Drop, in window-end order."""
    timings = {} if timings is None else timings
    step = plan.steps[source.index]
    size = plan.size
    transfer = config.blur.transfer
    cut_threshold = config.windows.cut_threshold
    by_start: dict[int, list[PairItem]] = defaultdict(list)
    by_last: dict[int, list[PairItem]] = defaultdict(list)
    uses: dict[int, int] = defaultdict(int)  # frame -> windows still needing it kept
    for item in items:
        w = item.window
        by_start[w.start].append(item)
        by_last[w.last].append(item)
        for k in {w.start, w.middle, w.last}:
            uses[k] += 1
    start = min(by_start)
    stop = max(by_last) + 1
    running = RunningSum(transfer)
    snapshots: dict[int, np.ndarray | None] = {}
    open_from: dict[int, int] = {k: len(v) for k, v in by_start.items()}  # start -> windows not finished
    kept: dict[int, np.ndarray] = {}
    cuts: list[int] = []
    previous = None
    done: set[int] = set()
    frames = read_frames(source, start, stop, step)
    try:
        while True:
            with _Clock(timings, "decode"):
                got = next(frames, None)
                if got is None:
                    break
                k, frame = got
                if size is not None:
                    frame = resize_frame(frame, size, transfer)
            with _Clock(timings, "average"):
                if k in by_start:
                    snapshots[k] = running.snapshot()  # the sum before this window's first frame
                running.add(frame)
                if cut_threshold < 1.0:
                    feature = cut_feature(frame)
                    if previous is not None and cut_distance(previous, feature) > cut_threshold:
                        cuts.append(k - 1)
                    previous = feature
            if uses.get(k):
                kept[k] = frame
            for item in by_last.get(k, ()):
                w = item.window
                done.add(item.item_id)
                if has_cut(cuts, w):
                    result: dict[str, Any] | Drop = Drop("scene_cut")
                else:
                    with _Clock(timings, "average"):
                        image = running.mean_since(snapshots[w.start], w.length)
                    result = _window_sample(config, plan, source, item, image, kept[w.start], kept[w.last],
                                            kept[w.middle], estimator, timings)
                yield item, result
                # forget what no unfinished window needs: memory stays bounded on long videos
                open_from[w.start] -= 1
                if not open_from[w.start]:
                    snapshots.pop(w.start, None)
                for f in {w.start, w.middle, w.last}:
                    uses[f] -= 1
                    if not uses[f]:
                        kept.pop(f, None)
    except TruncatedVideo:
        if config.video.truncated == "error":
            raise
        for item in items:
            if item.item_id not in done:
                yield item, Drop("truncated")
    finally:
        frames.close()


def _window_sample(config: FlowpairsConfig, plan: Plan, source: Source, item: PairItem, image: np.ndarray,
                   first: np.ndarray, last: np.ndarray, sharp: np.ndarray, estimator: FlowEstimator,
                   timings: Timings) -> dict[str, Any] | Drop:
    with _Clock(timings, "flow"):
        flow_fwd = estimator(first, last)
        flow_bwd = estimator(last, first)
        f = config.flow
        if f.consistency:
            valid = np.stack([
                forward_backward_consistent(flow_fwd, flow_bwd, alpha=f.consistency_alpha, beta=f.consistency_beta),
                forward_backward_consistent(flow_bwd, flow_fwd, alpha=f.consistency_alpha, beta=f.consistency_beta),
            ], axis=2)
        else:
            valid = np.ones(flow_fwd.shape, dtype=bool)
    share = min(float(valid[..., 0].mean()), float(valid[..., 1].mean()))
    if share == 0.0 or share < f.min_valid:
        return Drop("inconsistent_flow")
    s = largest_flow(flow_fwd, flow_bwd, valid)
    w = config.windows
    if w.max_flow is not None and s > w.max_flow:
        return Drop("large_flow")
    if s < w.min_flow:
        return Drop("small_flow")
    step = plan.steps[source.index]
    fps = plan.fps[source.index]
    return _record(config, video_sample_id(config.seed, source, item.window.start * step, item.window.length),
                   source.source_id, item.split, image, first, last, sharp, flow_fwd, flow_bwd, valid,
                   start=item.window.start * step, frames=item.window.length, s=s,
                   flow_source=estimator.name, fps=fps)


def synth_sample(config: FlowpairsConfig, source: SynthSource, item: PairItem,
                 timings: Timings | None = None) -> dict[str, Any] | Drop:
    """One synth item as a sample, or a Drop (too much motion; a user pair that cannot be used)."""
    from blurgen.flowpairs.interpolate import Discard, synth_from_pair, synth_from_scene
    from blurgen.flowpairs.synth import procedural_scene
    from blurgen.flowpairs.user_pairs import SkipPair, load_user_pair

    timings = {} if timings is None else timings
    s = config.synth
    with _Clock(timings, "synth"):
        try:
            if source.pair is None:
                scene = procedural_scene(item_rng(config.seed, source.index, STREAM_SCENE),
                                         int(s.size[0]), int(s.size[1]), s.scene_displacement)
                made = synth_from_scene(scene, max_allowed=s.max_displacement, min_frames=s.min_frames)
            else:
                first, last, fwd, bwd = load_user_pair(source.pair)
                made = synth_from_pair(first, last, fwd, bwd, max_allowed=s.max_displacement,
                                       min_frames=s.min_frames)
        except Discard:
            return Drop("large_displacement")
        except SkipPair as exc:  # counted and named in the summary, not silently left out
            return Drop("bad_pair", str(exc))
        encoded = [linear_to_srgb_uint8(np.asarray(x, np.float32)) for x in (made.blurred, made.first,
                                                                            made.last, made.sharp)]
    return _record(config, synth_sample_id(config.seed, source), source.source_id, item.split, *encoded,
                   np.asarray(made.flow_fwd, np.float32), np.asarray(made.flow_bwd, np.float32),
                   np.asarray(made.flow_valid, bool), start=0, frames=made.frames,
                   s=float(made.max_displacement), flow_source=EXACT, fps=None)


def _record(config: FlowpairsConfig, sample_id: str, source_id: str, split: str, image: np.ndarray,
            first: np.ndarray, last: np.ndarray, sharp: np.ndarray, flow_fwd: np.ndarray,
            flow_bwd: np.ndarray, valid: np.ndarray, *, start: int, frames: int, s: float,
            flow_source: str, fps: float | None) -> dict[str, Any]:
    """A sample in the field names and dtypes of ``blurgen.flowpairs/1`` (docs/shard-format.md)."""
    return {
        "image": image, "first": first, "last": last, "sharp": sharp,
        "flow_fwd": flow_fwd.astype(np.float32, copy=False), "flow_bwd": flow_bwd.astype(np.float32, copy=False),
        "flow_valid": valid.astype(bool, copy=False),
        "sample_id": sample_id, "source": source_id, "split": split,
        "window_start": np.int32(start), "frames": np.int16(frames),
        "max_displacement": np.float32(s), "flow_source": flow_source,
        "fps": np.float32(np.nan if fps is None else fps),
    }
