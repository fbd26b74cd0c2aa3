"""From one rendered trajectory to its shard samples: windows, compositing, labels, filters.

Runs only after rendering (data flow: plan -> prepare -> blender -> samples). Blender has
rendered the sub-interval layers, the sharp frame and the silhouettes that the item's windows
use (premultiplied linear RGBA). Every blurred image is the mean of k consecutive layers; it is
composited over the item's background crop in linear light, labelled (Eq. 5 and 6 of the
blur-retrieval paper, bbox) and filtered (coverage, silhouette IoU) here, in numpy, from the
window's exact coverage (:mod:`blurgen.render.coverage`, from the mesh's triangles Blender hands
back and the poses) unless ``labels.coverage: render`` asks for the layers' own alpha. With
``images.flow`` each kept image also gets the exact flow between its window's endpoints
(:mod:`blurgen.render.flow`), from the per-pixel object coordinates Blender rendered there.
"""

from __future__ import annotations

import functools
from collections import Counter
from typing import Any, Callable, Iterator

import numpy as np

from blurgen._blender_scripts.contract import SHARP_INSTANT
from blurgen.color import linear_to_srgb_uint8
from blurgen.render.camera import camera_of
from blurgen.render.compose import blurred_windows, composite, window_layer
from blurgen.render.config import RenderConfig
from blurgen.render.coverage import MeshCoverage
from blurgen.render.flow import still_flow, window_flow
from blurgen.render.labels import bbox_of, blur_level, blur_severity, filter_reason, touches_border
from blurgen.render.prepare import PreparedItem


def item_samples(config: RenderConfig, prepared: PreparedItem, rendered: dict[str, np.ndarray],
                 dropped: Counter) -> Iterator[dict[str, Any]]:
    """The shard samples of one rendered item, in a fixed order: sharp, then k = 1..max_window.

    Images that a filter rejects are counted in ``dropped`` by reason, never dropped silently.
    """
    windows = (([(-1, 0)] if config.images.sharp else [])  # max_window >= 1: never empty
               + blurred_windows(config.images.max_window, config.images.windows))
    layers, first_layer = rendered["layers"], int(rendered["layer_indices"][0])
    alpha_of = labels_alpha(config, prepared, rendered)
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
        alpha = alpha_of(layer, start, count)
        reason, severity = judge_image(config, alpha, first, last)
        if reason is not None:
            dropped[reason] += 1
            continue
        sample = sample_dict(config, prepared, layer, alpha, severity, start, count, t0, t1)
        if config.images.flow:
            sample.update(sample_flow(config, sample, coords_of, start, count))
        yield sample


def judge_image(config: RenderConfig, alpha: np.ndarray, first: np.ndarray | None,
                last: np.ndarray | None) -> tuple[str | None, float | None]:
    """Why an image with coverage ``alpha`` (window silhouettes ``first``/``last``, None for the
    sharp image) is dropped, or ``(None, its blur severity)`` when it is kept."""
    labels = config.labels
    reason = filter_reason(alpha, first, last, min_coverage=labels.min_coverage, min_iou=labels.min_iou,
                           drop_truncated=labels.drop_truncated)
    if reason is not None:
        return reason, None
    severity = blur_severity(alpha, labels.erosion_px)
    if severity is None:
        return "no_support", None  # nothing left after erosion: Eq. 5 is undefined
    if labels.max_level is not None and blur_level(severity) > labels.max_level:
        return "above_max_level", None  # after the paper's filters, so they count the same images
    return None, severity


def labels_alpha(config: RenderConfig, prepared: PreparedItem,
                 rendered: dict[str, np.ndarray]) -> Callable[[np.ndarray, int, int], np.ndarray]:
    """``alpha_of(layer, start, count)``: the alpha of a window that the labels, the filters and
    the shard use (count 0: the sharp image).

    ``labels.coverage: exact``: the mesh's exact coverage over the window, the mean of its
    sub-intervals' (each computed once, on first use), independent of the colour samples
    (:mod:`blurgen.render.coverage`); ``render``: the colour layer's own alpha.
    """
    labels = config.labels
    if labels.coverage == "render":
        return lambda layer, start, count: np.ascontiguousarray(layer[..., 3])
    camera = camera_of(config)
    mesh = MeshCoverage(rendered["mesh_vertices"], rendered["mesh_faces"], prepared.camera_from_file,
                        camera.intrinsics(), (camera.width, camera.height),
                        filter_width=config.cycles.pixel_filter_width,
                        supersample=labels.coverage_supersample, step_px=labels.coverage_step_px)

    @functools.lru_cache(maxsize=None)
    def sub_interval(j: int) -> np.ndarray:
        return mesh.alpha(float(j), float(j + 1))

    def alpha_of(layer: np.ndarray, start: int, count: int) -> np.ndarray:
        if count == 0:
            return mesh.alpha(SHARP_INSTANT)
        return window_layer(np.stack([sub_interval(j) for j in range(start, start + count)]), 0, count)
    return alpha_of


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
        "truncated": np.bool_(touches_border(alpha)),
        "sample_id": f"render-s{config.seed}-t{item.item_id:013d}-{window}",
        "window_start": np.int16(start),
        "window_count": np.int16(count),
        "trajectory_id": np.int64(item.item_id),
        "object_id": item.object_id,
        "category": item.category,
        "background_id": prepared.background_id,
        "split": item.split,
        "role": item.role,
        "pose_start": prepared.camera_from_file(t0).astype(np.float64),
        "pose_end": prepared.camera_from_file(t1).astype(np.float64),
        "intrinsics": camera.intrinsics().astype(np.float64),
    }
