"""From one rendered trajectory to its shard samples: windows, compositing, labels, filters.

Blender has rendered the 23 sub-interval layers, the sharp frame and 24 silhouettes of one work
item (premultiplied linear RGBA). Every blurred image is the mean of k consecutive layers; it is
composited over the item's background crop in linear light, labelled (Eq. 5 and 6 of the
blur-retrieval paper, bbox) and filtered (coverage, silhouette IoU) here, in numpy. With
``images.flow`` each kept image also gets the exact flow between its window's endpoints
(:mod:`blurgen.render.flow`), from the per-pixel object coordinates Blender rendered there.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any, Iterator

import numpy as np

from blurgen.color import linear_to_srgb_uint8, srgb_to_linear
from blurgen.errors import BlurgenError
from blurgen.render.camera import Camera
from blurgen.render.compose import composite, crop_background, load_background, window_layer, window_starts
from blurgen.render.config import NUM_INSTANTS, RenderConfig
from blurgen.render.flow import still_flow, window_flow
from blurgen.render.labels import bbox_of, blur_level, blur_severity, filter_reason
from blurgen.render.plan import STREAM_BACKGROUND, STREAM_CYCLES, STREAM_TRAJECTORY, Plan, WorkItem
from blurgen.render.trajectory import Trajectory, sample_trajectory
from blurgen.rng import item_rng

SHARP_INSTANT = (NUM_INSTANTS - 1) / 2  # the sharp image is rendered at the trajectory centre, t = 11.5


def camera_of(config: RenderConfig) -> Camera:
    c = config.camera
    return Camera(c.width, c.height, c.focal_mm, c.sensor_width_mm)


class SkipItem(Exception):
    """An item that cannot be made (its input is bad); counted under ``reason``, never fatal."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


@dataclasses.dataclass(frozen=True)
class PreparedItem:
    """A work item with its random draws made: trajectory, background crop, Cycles seed."""

    item: WorkItem
    trajectory: Trajectory
    background_id: str
    background_linear: np.ndarray  # (H, W, 3) float32, linear light
    cycles_seed: int


def prepare_item(config: RenderConfig, plan: Plan, item: WorkItem) -> PreparedItem:
    """Draw the item's trajectory, background and seed from its own streams; load the crop.

    Raises :class:`SkipItem` for an unreadable background (the caller counts the skip); a
    trajectory that cannot be placed is a config error and propagates.
    """
    t = config.trajectory
    trajectory = sample_trajectory(
        item_rng(config.seed, item.item_id, STREAM_TRAJECTORY), camera_of(config),
        instants=NUM_INSTANTS, depth=tuple(t.depth[:2]), object_size=tuple(t.object_size[:2]),
        translation=tuple(t.translation[:2]), rotation_deg=tuple(t.rotation_deg[:2]), margin=t.margin)
    bg_rng = item_rng(config.seed, item.item_id, STREAM_BACKGROUND)
    background_id = plan.background_ids[int(bg_rng.integers(len(plan.background_ids)))]
    try:
        source = load_background(plan.backgrounds.path_of(background_id))
    except BlurgenError as exc:
        raise SkipItem("unreadable background", str(exc)) from None
    crop = crop_background(source, config.camera.width, config.camera.height, bg_rng)
    seed = int(item_rng(config.seed, item.item_id, STREAM_CYCLES).integers(0, 2**31 - 2**16))
    return PreparedItem(item, trajectory, background_id, srgb_to_linear(crop), seed)


def blurred_windows(config: RenderConfig) -> list[tuple[int, int]]:
    """(start sub-interval, count) of every blurred image a trajectory gives, in sample order."""
    return [(start, count) for count in range(1, config.images.max_window + 1)
            for start in window_starts(count, config.images.windows, num_sub=NUM_INSTANTS - 1)]


def needed_renders(config: RenderConfig) -> tuple[list[int], list[int]]:
    """The sub-intervals (a contiguous run) and silhouette instants the windows use.

    Rendering only these is most of blurgen's speed: centred windows k = 1..10 need sub-intervals
    6..15 (10 of 23) and 11 silhouettes (the windows' endpoints), not all 23 and 24. With
    ``images.flow`` the object-coordinate layers are rendered at the silhouette instants too.
    """
    windows = blurred_windows(config)
    if not windows:
        return [], []
    first = min(s for s, _ in windows)
    last = max(s + c for s, c in windows)
    return list(range(first, last)), sorted({t for s, c in windows for t in (s, s + c)})


def item_samples(config: RenderConfig, prepared: PreparedItem, rendered: dict[str, np.ndarray],
                 dropped: Counter) -> Iterator[dict[str, Any]]:
    """The shard samples of one rendered item, in a fixed order: sharp, then k = 1..max_window.

    Images that a filter rejects are counted in ``dropped`` by reason, never dropped silently.
    """
    windows = ([(-1, 0)] if config.images.sharp else []) + blurred_windows(config)  # max_window >= 1
    layers, first_layer = rendered["layers"], int(rendered["layer_indices"][0])
    silhouette_of = {int(t): sil for t, sil in zip(rendered["silhouette_instants"], rendered["silhouettes"])}
    coords_of = ({int(t): (c, h) for t, c, h in zip(rendered["coord_instants"], rendered["coords"],
                                                    rendered["coord_hits"])}
                 if config.images.flow else {})
    for start, count in windows:
        if count == 0:
            layer, first, last = rendered["sharp"], None, None
            t0 = t1 = SHARP_INSTANT
        else:
            layer = window_layer(layers, start - first_layer, count)
            first, last = silhouette_of[start], silhouette_of[start + count]
            t0, t1 = float(start), float(start + count)
        alpha = np.ascontiguousarray(layer[..., 3])
        reason = filter_reason(alpha, first, last, min_coverage=config.labels.min_coverage,
                               min_iou=config.labels.min_iou)
        severity = blur_severity(alpha, config.labels.erosion_px) if reason is None else None
        if reason is None and severity is None:
            reason = "no_support"  # nothing left after erosion: Eq. 5 is undefined
        if reason is not None:
            dropped[reason] += 1
            continue
        sample = sample_dict(config, prepared, layer, alpha, severity, start, count, t0, t1)
        if config.images.flow:
            sample.update(sample_flow(config, sample, coords_of, start, count))
        yield sample


def sample_flow(config: RenderConfig, sample: dict[str, Any], coords_of: dict[int, tuple[np.ndarray, np.ndarray]],
                start: int, count: int) -> dict[str, np.ndarray]:
    """``flow_fwd``, ``flow_bwd``, ``flow_valid`` of a sample (zero and valid for the sharp image)."""
    if count == 0:
        return still_flow(config.camera.height, config.camera.width)
    (coords0, hits0), (coords1, hits1) = coords_of[start], coords_of[start + count]
    return window_flow(coords0, hits0, sample["pose_start"], coords1, hits1, sample["pose_end"],
                       sample["intrinsics"])


def sample_dict(config: RenderConfig, prepared: PreparedItem, layer: np.ndarray, alpha: np.ndarray,
                severity: float, start: int, count: int, t0: float, t1: float) -> dict[str, Any]:
    item, camera = prepared.item, camera_of(config)
    image = linear_to_srgb_uint8(composite(layer, prepared.background_linear))
    window = "sharp" if count == 0 else f"k{count:02d}s{start:02d}"
    return {
        "image": image,
        "alpha": alpha.astype(np.float32),
        "blur_severity": np.float32(severity),
        "blur_level": np.int8(blur_level(severity)),
        "bbox": np.asarray(bbox_of(alpha), np.int32),
        "sample_id": f"render-s{config.seed}-t{item.item_id:013d}-{window}",
        "window_start": np.int16(start),
        "window_count": np.int16(count),
        "trajectory_id": np.int64(item.item_id),
        "object_id": item.object_id,
        "category": item.category,
        "background_id": prepared.background_id,
        "split": item.split,
        "role": item.role,
        "pose_start": prepared.trajectory.camera_from_object(t0).astype(np.float64),
        "pose_end": prepared.trajectory.camera_from_object(t1).astype(np.float64),
        "intrinsics": camera.intrinsics().astype(np.float64),
    }
