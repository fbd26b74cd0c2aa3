"""One composite sample: a view of a photo, its chosen instances blurred, and the labels.

Per sample (paper §3.1-3.2): mask-centric (one instance, cropped around it) or image-centric
(the whole photo, several instances) by ``samples.mask_centric``; each chosen instance gets a
coverage mode (sharp, full, partial) and, unless sharp, a blur type of the curriculum stage
(one type for the whole sample before the advanced stage, one per instance in it) and a motion
extent (subtle or strong). Instances are blurred one after another into the image; the labels
are the union of the pixels each one changed and the motion extent of the content there.
"""

from __future__ import annotations

import json
from typing import Any

import cv2
import numpy as np

from blurgen.color import linear_to_srgb_uint8
from blurgen.composite.blurs import blur_type
from blurgen.composite.blurs.base import copy_where
from blurgen.composite.blurs.dispatch import blur_reach, sample_params
from blurgen.composite.compose import blur_instance, feather_radius
from blurgen.composite.config import STAGES, CompositeConfig, allowed_types
from blurgen.composite.coverage import COVERAGE_MODES, partial_weight
from blurgen.composite.photometric import apply_photometric
from blurgen.composite.plan import STREAM_SAMPLE, CompositeItem
from blurgen.composite.sources import SourceData
from blurgen.composite.views import View, centred_crop, cut_view, instance_crop, mask_box
from blurgen.rng import item_rng

# Image-centric samples skip an instance that shares more than this share of the smaller one's
# pixels with one already chosen (SAM masks nest: a face inside a person), so that each blurred
# pixel has one motion and one label.
MAX_OVERLAP = 0.1


def make_sample(config: CompositeConfig, item: CompositeItem, source: SourceData,
                views: dict[Any, Any] | None = None) -> dict[str, Any]:
    """The shard sample of ``item``, drawn from its own random stream.

    ``views``: a cache, shared by the samples of one source, of image-centric views and their
    8-bit encoding (the same crop of the same photo every time) and of which instance masks are
    not empty; it changes no result.
    """
    rng = item_rng(config.seed, item.item_id, STREAM_SAMPLE)
    s = config.samples
    present = views.get(("present", source.source_id)) if views is not None else None
    if present is None:  # scanning every full-size mask costs ~1 ms: once per source
        present = [i for i, m in enumerate(source.masks) if m.any()]
        if views is not None:
            views[("present", source.source_id)] = present
    mask_centric = bool(present) and rng.random() < s.mask_centric
    if mask_centric:
        focus = present[int(rng.integers(len(present)))]
        crop = instance_crop(rng, source.masks[focus], tuple(s.crop_scale), tuple(s.crop_aspect))
    else:
        crop = centred_crop(source.image.shape[:2], s.width, s.height)
    key = (source.source_id, crop)
    if views is not None and key in views:
        view, view_u8 = views[key]
    else:
        view = cut_view(source.image, source.masks, source.mask_names, crop, s.width, s.height,
                        only=focus if mask_centric else None)
        view_u8 = linear_to_srgb_uint8(view.image)
        if views is not None and not mask_centric:  # mask-centric crops are random: never reused
            views[key] = view, view_u8
    if mask_centric:
        chosen = [focus] if np.count_nonzero(view.masks[focus]) >= s.min_instance_px else []
    else:
        large = [i for i in range(len(view.masks)) if np.count_nonzero(view.masks[i]) >= s.min_instance_px]
        chosen = _pick_instances(rng, view, large, int(rng.integers(1, s.max_instances + 1)))

    types = allowed_types(config)
    _, mixed_instances = STAGES[config.blur.stage]
    sample_type = str(rng.choice(types))
    c = config.coverage
    coverage_p = np.array([c.sharp, c.full, c.partial], float)
    coverage_p = coverage_p / coverage_p.sum() if coverage_p.sum() > 0 else np.array([0.0, 1.0, 0.0])

    image = view.image.copy()
    sharp = view.image  # copied on the first change: the sharp reference is a composite too
    blur_mask = np.zeros(image.shape[:2], bool)
    extent = np.zeros(image.shape[:2], np.float32)
    records = []
    touched: list[tuple[slice, slice]] = []  # the windows the instances changed pixels in
    for i in chosen:
        mask = view.masks[i]
        coverage = str(rng.choice(COVERAGE_MODES, p=coverage_p))
        record: dict[str, Any] = {"name": view.names[i], "coverage": coverage,
                                  "pixels": int(np.count_nonzero(mask))}
        records.append(record)
        if coverage == "sharp":
            continue
        kind = str(rng.choice(types)) if mixed_instances else sample_type
        strength = "subtle" if rng.random() < config.blur.subtle_share else "strong"
        span = config.blur.subtle_px if strength == "subtle" else config.blur.strong_px
        extent_px = float(rng.uniform(*span))
        feather = feather_radius(extent_px, config.compositing.feather, config.compositing.feather_max_px)
        # Parameters that depend on the instance's shape (zoom's centre and radius, so its extent
        # is the largest over the rim too; rolling's centre row) see the feathered support,
        # which is what gets blurred.
        dilate = feather > 0 and blur_type(kind).dilated_support
        params = sample_params(kind, rng, extent_px, _dilated(mask, feather) if dilate else mask, config.blur)
        weight = None
        if coverage == "partial":
            weight = partial_weight(rng, mask, float(rng.uniform(*c.partial_area)),
                                    float(rng.uniform(*c.transition_px)), reach=blur_reach(params) + feather)
        outcome = blur_instance(image, mask, params, feather_px=feather,
                                fill_margin_px=config.compositing.fill_margin_px, weight=weight,
                                sharp=None if sharp is view.image else sharp)
        if not outcome.changed.any():  # e.g. a zoom about a point: nothing moved, nothing to record
            record["coverage"] = "sharp"
            continue
        if sharp is view.image:
            sharp = view.image.copy()
        win = outcome.window
        touched.append(win)
        image[win], sharp[win] = outcome.image, outcome.sharp
        # A later instance is composited over an earlier one: where it changed pixels, its motion
        # is seen. An earlier label stays elsewhere, except where this instance's removal filled
        # both images alike (the earlier streak is gone there).
        before = blur_mask[win] & ~outcome.changed
        gone = before & outcome.removed
        if gone.any():
            before &= ~gone | (image[win] != sharp[win]).any(axis=2)
        extent[win] = np.where(outcome.changed, outcome.extent, np.where(before, extent[win], np.float32(0.0)))
        blur_mask[win] = outcome.changed | before
        record.update(strength=strength, params=params, changed_pixels=int(np.count_nonzero(outcome.changed)))

    photometric: dict[str, Any] = {}
    if rng.random() < config.photometric.probability:
        (image, sharp), photometric = apply_photometric(rng, [image, sharp], tuple(config.photometric.exposure_ev),
                                                        tuple(config.photometric.noise))
    blurred_types = sorted({r["params"]["type"] for r in records if "params" in r})
    intensity = np.zeros_like(extent)
    if photometric:
        sharp_u8 = linear_to_srgb_uint8(sharp)
    else:
        sharp_u8 = view_u8.copy() if touched else view_u8
    image_u8 = sharp_u8.copy()
    if touched:
        # Image and sharp equal the view outside the instances' windows, and each other outside
        # the blur mask: encode only the pixels that differ (a small share of the frame).
        box = (slice(min(w[0].start for w in touched), max(w[0].stop for w in touched)),
               slice(min(w[1].start for w in touched), max(w[1].stop for w in touched)))
        if not photometric:  # sharp equals the view outside the instances' windows
            for win in touched:  # (their union box may be most of the frame)
                sharp_u8[win] = linear_to_srgb_uint8(sharp[win])
        image_u8[box] = sharp_u8[box]
        for win in touched:
            _encode_where(blur_mask[win], image[win], image_u8[win])
        intensity[box] = np.clip(extent[box] / np.float32(config.blur.intensity_max_px), 0.0, 1.0)
    return {
        "image": image_u8,
        "sharp": sharp_u8,
        "blur_mask": blur_mask,
        "blur_intensity": intensity,
        "sample_id": f"composite-s{config.seed}-{item.item_id:09d}",
        "source_id": source.source_id,
        "split": item.split,
        "stage": config.blur.stage,
        "mode": "mask" if mask_centric else "image",
        "crop": np.asarray(view.crop, np.int32),
        "blurred": np.bool_(blur_mask.any()),
        "blur_types": ",".join(blurred_types),
        "instances": json.dumps(records, sort_keys=True),
        "photometric": json.dumps(photometric, sort_keys=True),
    }


def _encode_where(where: np.ndarray, linear: np.ndarray, out: np.ndarray) -> None:
    """``out = linear_to_srgb_uint8(linear)`` where ``where``, encoding only the box of those
    pixels (a boolean gather of scattered pixels costs more than encoding their box)."""
    if not where.any():
        return
    x0, y0, x1, y1 = mask_box(where)
    box = (slice(y0, y1), slice(x0, x1))
    copy_where(out[box], linear_to_srgb_uint8(linear[box]), where[box])


def _dilated(mask: np.ndarray, radius: int) -> np.ndarray:
    """``mask`` grown by ``radius`` px (a square), computed in a window around it."""
    x0, y0, x1, y1 = mask_box(mask)
    window = (slice(max(0, y0 - radius), y1 + radius), slice(max(0, x0 - radius), x1 + radius))
    grown = np.zeros_like(mask)
    kernel = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    grown[window] = cv2.dilate(np.ascontiguousarray(mask[window]).view(np.uint8), kernel).astype(bool)
    return grown


def _pick_instances(rng: np.random.Generator, view: View, candidates: list[int], count: int) -> list[int]:
    """Up to ``count`` of ``candidates`` in random order, skipping ones that overlap a chosen one."""
    chosen: list[int] = []
    for i in rng.permutation(np.asarray(candidates, int)) if candidates else []:
        mask = view.masks[int(i)]
        if all(np.count_nonzero(mask & view.masks[j])
               <= MAX_OVERLAP * min(np.count_nonzero(mask), np.count_nonzero(view.masks[j])) for j in chosen):
            chosen.append(int(i))
        if len(chosen) == count:
            break
    return chosen
