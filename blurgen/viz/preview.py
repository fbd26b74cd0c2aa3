"""``blurgen shards preview``: a contact sheet of samples from shards, labels drawn on them.

Each sample becomes one row-cell: the image with its box and labels (blur level and severity,
sample id), followed by whatever else the schema has that a person would look at: the blur mask
as an overlay, the blur-intensity map, the flow in the Middlebury colour wheel. Samples are
picked evenly over the blur levels when the shards have levels (so the sheet reads as a
progression from sharp to strongly blurred), else evenly over the dataset.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import cv2
import numpy as np

from blurgen.errors import ShardError
from blurgen.viz.flow_colors import flow_to_rgb
from blurgen.viz.sheet import (as_rgb_uint8, draw_box, draw_label, fit_width, hstack, overlay_mask,
                               tile_grid, write_png)

#: fields the preview reads when a shard has them
PREVIEW_FIELDS = ("image", "bbox", "blur_level", "blur_severity", "blur_mask", "blur_intensity",
                  "flow_fwd", "flow_valid", "sample_id")


def preview_shards(source: str | Path | Sequence[str | Path], out: str | Path, *, count: int = 16,
                   cols: int = 4, tile_width: int = 240) -> Path:
    """Write a PNG contact sheet of ``count`` samples of the shards in ``source``; returns its path."""
    from blurgen.shards import ShardDataset  # the reader is only needed here

    if count < 1 or cols < 1 or tile_width < 32:
        raise ShardError("preview needs --count >= 1, --cols >= 1 and --tile-width >= 32")
    dataset = ShardDataset(source, fields=None)
    fields = [f for f in PREVIEW_FIELDS if f in dataset.fields]
    if "image" not in fields:
        raise ShardError(f"{source}: these shards have no 'image' dataset to preview")
    indices = pick_samples(dataset, count)
    view = ShardDataset(source, fields=fields)
    cells = [sample_cell(view[i], tile_width) for i in indices]
    out = Path(out)
    write_png(out, tile_grid(cells, cols))
    return out


def pick_samples(dataset: Any, count: int) -> list[int]:
    """Indices to show: spread evenly over each blur level when there are levels, else over all."""
    n = len(dataset)
    if n == 0:
        raise ShardError("the shards hold no samples to preview")
    if "blur_level" not in dataset.fields:
        return _evenly(np.arange(n), count)
    levels = np.asarray(dataset.column("blur_level"))
    unique = np.unique(levels)
    per_level = -(-count // len(unique))
    picked = [i for lv in unique for i in _evenly(np.flatnonzero(levels == lv), per_level)]
    return _evenly(np.asarray(picked), count)  # already ordered by level, then index


def _evenly(members: np.ndarray, count: int) -> list[int]:
    if len(members) <= count:
        return members.tolist()
    return members[np.linspace(0, len(members) - 1, count).round().astype(int)].tolist()


def sample_cell(sample: Mapping[str, Any], tile_width: int) -> np.ndarray:
    """One sample drawn as tiles side by side: image (+box, labels), mask, intensity, flow."""
    image, scale = fit_width(as_rgb_uint8(sample["image"]), tile_width)
    if "bbox" in sample:
        draw_box(image, sample["bbox"], scale)
    labels = []
    if "blur_level" in sample:
        text = f"BL {int(sample['blur_level'])}"
        if "blur_severity" in sample:
            text += f"  BS {float(sample['blur_severity']):.3f}"
        labels.append(text)
    if "sample_id" in sample:
        text = str(sample["sample_id"])
        labels.append(text if len(text) <= 30 else "..." + text[-27:])
    if labels:
        draw_label(image, labels)
    tiles = [image]
    if "blur_mask" in sample:
        mask = cv2.resize(np.asarray(sample["blur_mask"], np.float32), image.shape[1::-1],
                          interpolation=cv2.INTER_NEAREST)
        tiles.append(draw_label(overlay_mask(image.copy(), mask), ["blur mask"]))
    if "blur_intensity" in sample:
        tiles.append(draw_label(intensity_to_rgb(sample["blur_intensity"], image.shape[1::-1]),
                                ["blur intensity"]))
    if "flow_fwd" in sample:
        flow = np.asarray(sample["flow_fwd"], np.float32)
        valid = None
        if "flow_valid" in sample:  # (H, W) or (H, W, 2) with channel 0 for the forward flow
            valid = np.asarray(sample["flow_valid"], bool)
            valid = valid[..., 0] if valid.ndim == 3 else valid
        shown = np.hypot(flow[..., 0], flow[..., 1])
        shown = shown[valid] if valid is not None else shown
        magnitude = float(np.nanmax(shown)) if shown.size else 0.0
        color = cv2.resize(flow_to_rgb(flow, valid=valid), image.shape[1::-1], interpolation=cv2.INTER_NEAREST)
        tiles.append(draw_label(color, [f"flow fwd, max {magnitude:.1f} px"]))
    return hstack(tiles) if len(tiles) > 1 else image


def intensity_to_rgb(intensity: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A [0, 1] intensity map in the turbo colour map, resized to ``size`` (width, height)."""
    value = (np.clip(np.asarray(intensity, np.float32), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    value = cv2.resize(value, size, interpolation=cv2.INTER_NEAREST)
    return cv2.cvtColor(cv2.applyColorMap(value, cv2.COLORMAP_TURBO), cv2.COLOR_BGR2RGB)
