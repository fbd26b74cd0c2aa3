"""``blurgen evaluate blur-seg``: the subtle-blur paper's evaluation (§4.2) and its report.

What is scored: composite shards (``--data``: pixel and image level; each blurred sample is
followed by its sharp reference, a hard negative, as in validation), a folder of images with
binary blur masks (``--images --masks``: pixel level, and image level when both kinds of image
are there) or folders of blurred and sharp images (``--blurred --sharp``: image level). Metrics
and their exact definitions: :mod:`blurgen.train.blurseg_metrics`. Thresholds (pixel: best
IoU(blur); image: best F1) come from a grid search on a validation set: ``--val DIR`` (a composite
folder's validation split, scored here), else the ones the training run's last validation chose
(stored in the checkpoint), else 0.5 (the report says which).

The report folder (:mod:`blurgen.train.report`, built whole then renamed): ``report.json`` (every
number, thresholds and their source, the resolved config, the inputs), ``report.md`` (the paper's
Table 1 and Table 2 layouts), ``predictions/`` (per image: the blur probability and intensity
maps as 16-bit PNGs, ``round(65535 x)``; the metrics are computed from exactly these values, so
re-scoring the PNGs gives the same numbers), ``predictions.h5`` (per image: id, PNG names, size,
image score and label, true blur pixels) and ``sheet.png`` (image, true mask, predicted mask,
intensity for the first images).
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import cv2
import numpy as np

from blurgen.config import build
from blurgen.errors import BlurgenError
from blurgen.shards import ShardDataset
from blurgen.train.blurseg import (BlurSegConfig, EvalItem, build_model, predict_items, shard_items,
                                   tally_predictions)
from blurgen.train.blurseg_config import TASK
from blurgen.train.blurseg_data import composite_folders, composite_split_files, composite_split_names
from blurgen.train.blurseg_folders import blurred_sharp_items, labelled_files, mask_folder_items, mask_pairs
from blurgen.train.blurseg_metrics import TOP, ImageMetrics, PixelMetrics, SegmentationTally, quantise
from blurgen.train.blurseg_model import BlurSegNet
from blurgen.train.checkpoint import load_checkpoint, load_weights
from blurgen.train.data import shards_of, split_source
from blurgen.train.distributed import resolve_device
from blurgen.train.report import (TRAINING_DATA_WARNING, markdown_table, percent, provenance, refuse_existing,
                                  staged_folder, write_h5_groups, write_json)
from blurgen.viz.preview import intensity_to_rgb
from blurgen.viz.sheet import draw_label, fit_width, hstack, overlay_mask, tile_grid, write_png

SHEET_ROWS = 6      # images shown in sheet.png (the first ones, in the order scored)
SHEET_TILE = 192    # width of each tile of the sheet, pixels
DEFAULT_THRESHOLD = 0.5
DEFAULT_SPLIT = "test"  # what --data is scored on without --split


@dataclass(frozen=True)
class Thresholds:
    pixel: float
    image: float
    source: str  # where they come from, in words
    chosen_on: dict[str, Any] | None = None  # the shards searched (data.split_source), when known


@dataclass(frozen=True)
class Source:
    """What is scored: a kind (``shards``, ``masks``, ``blurred-sharp``), its inputs, its number of
    images and a fresh iterator over its items."""

    kind: str
    inputs: dict[str, Any]
    count: int
    items: Callable[[], Iterator[EvalItem]]
    files: tuple[str, ...] = ()  # the shard files scored (none for image folders)


@dataclass(frozen=True)
class BlurSegReport:
    folder: Path
    pixel: PixelMetrics | None
    image: ImageMetrics | None
    thresholds: Thresholds
    images: int

    def describe(self) -> str:
        lines = []
        if self.pixel is not None:
            p = self.pixel
            lines.append(f"pixel level at t={p.threshold:g}: mIoU {percent(p.mean_iou)}, IoU(blur) "
                         f"{percent(p.iou_blur)}, F1 {percent(p.f1)}, PR-AUC {percent(p.pr_auc)}, pixel accuracy "
                         f"{percent(p.pixel_accuracy)}")
        if self.image is not None:
            i = self.image
            lines.append(f"image level at t={i.threshold:g}: accuracy {percent(i.accuracy)}, F1 {percent(i.f1)}, "
                         f"ROC AUC {percent(i.roc_auc)}")
        return "\n".join([f"{self.images} images; thresholds: {self.thresholds.source}", *lines,
                          f"report: {self.folder}"])


def evaluate_blurseg(checkpoint: str | Path, out: str | Path, *, data: str | Path | None = None,
                     split: str | None = None, images: str | Path | None = None, masks: str | Path | None = None,
                     blurred: str | Path | None = None, sharp: str | Path | None = None,
                     val: str | Path | None = None, device: str = "auto", batch_size: int = 8,
                     progress: bool = True) -> BlurSegReport:
    """Score a blur-seg checkpoint on one source and write the report folder ``out``; every bad
    input is one :class:`BlurgenError` line, before any work."""
    refuse_existing(out)  # early: never compute for minutes and then refuse
    state = load_checkpoint(Path(checkpoint), TASK)
    config = checkpoint_config(state)
    source = resolve_source(data=data, split=split, images=images, masks=masks, blurred=blurred, sharp=sharp)
    run = state.get("sources") or {}  # older checkpoints did not store them: nothing to check against
    if val is not None:
        val_files = composite_split_files(val, config.data.val_split)
        chosen_on = split_source(val, config.data.val_split, val_files)
    else:
        val_files, thresholds = None, checkpoint_thresholds(state)
        chosen_on = thresholds.chosen_on
    refuse_threshold_shards(source, chosen_on)
    dev = resolve_device(device)
    model = load_model(state, config).to(dev)
    if val_files is not None:
        tally = tally_predictions(predict_items(model, shard_items(val_files), config, dev, batch_size),
                                  config.eval.image_top_fraction)
        pixel_t, image_t = tally.best_thresholds(config.eval.threshold_step)
        thresholds = Thresholds(pixel_t, image_t, f"grid search on the '{config.data.val_split}' split of {val}",
                                chosen_on)
    header = {"task": TASK, **provenance(state["config"], checkpoint=checkpoint, val=val),
              "checkpoint_epoch": state.get("epoch"), "checkpoint_global_step": state.get("global_step"),
              "device": dev.type, "source": source.kind, "inputs": source.inputs, "run_sources": run or None,
              "scores_training_data": bool(shards_of(source.files, run.get("train")))}
    return write_report(predict_items(model, source.items(), config, dev, batch_size), out, thresholds=thresholds,
                        top_fraction=config.eval.image_top_fraction, header=header, total=source.count,
                        progress=progress)


def refuse_threshold_shards(source: Source, chosen_on: dict[str, Any] | None) -> None:
    """One line when the shards to score include those the thresholds were chosen on (``chosen_on``,
    a ``data.split_source``): the numbers would grade the thresholds on the data that picked them."""
    if chosen_on is not None and shards_of(source.files, chosen_on):
        raise BlurgenError(f"{source.inputs['data']}: the '{chosen_on['split']}' shards to score are the ones the "
                           f"thresholds were chosen on ({chosen_on['folder']}, split '{chosen_on['split']}'): score "
                           "held-out shards (another folder or --split), or choose the thresholds with --val DIR")


def checkpoint_config(state: dict[str, Any]) -> BlurSegConfig:
    """The run's config, with ``encoder_weights`` dropped: the checkpoint holds every weight."""
    config = build(BlurSegConfig, json.loads(state["config"]))
    return dataclasses.replace(config, model=dataclasses.replace(config.model, encoder_weights=None))


def load_model(state: dict[str, Any], config: BlurSegConfig) -> BlurSegNet:
    return load_weights(build_model(config), state["model"])


def checkpoint_thresholds(state: dict[str, Any]) -> Thresholds:
    """The thresholds the run's last validation chose (and on which shards, when the checkpoint
    says), else 0.5."""
    metrics = state.get("metrics") or {}
    if "pixel_threshold" in metrics and "image_threshold" in metrics:
        return Thresholds(float(metrics["pixel_threshold"]), float(metrics["image_threshold"]),
                          f"grid search on the training run's validation split (epoch {state.get('epoch')})",
                          (state.get("sources") or {}).get("validation"))
    return Thresholds(DEFAULT_THRESHOLD, DEFAULT_THRESHOLD,
                      "0.5: the run had no validation split and no --val was given")


def resolve_source(*, data: str | Path | None = None, split: str | None = None, images: str | Path | None = None,
                   masks: str | Path | None = None, blurred: str | Path | None = None,
                   sharp: str | Path | None = None) -> Source:
    """Exactly one of ``data``, ``images + masks``, ``blurred + sharp``; checked up front."""
    given = [name for name, on in (("--data", data is not None),
                                   ("--images/--masks", images is not None or masks is not None),
                                   ("--blurred/--sharp", blurred is not None or sharp is not None)) if on]
    if len(given) != 1:
        raise BlurgenError("give exactly one of --data DIR, --images DIR --masks DIR, --blurred DIR --sharp DIR"
                           + (f" (got {', '.join(given)})" if given else ""))
    if data is not None:
        files, split = _shard_files(Path(data), split)
        shards = ShardDataset(files, fields=())
        count = len(shards) + int(np.asarray(shards.column("blurred"), bool).sum())  # + sharp references
        return Source("shards", {"data": str(Path(data).resolve()), "split": split}, count,
                      lambda: shard_items(files), tuple(files))
    if images is not None or masks is not None:
        if images is None or masks is None:
            raise BlurgenError("--images and --masks go together: a folder of images and one of their blur masks")
        pairs = mask_pairs(Path(images), Path(masks))
        return Source("masks", {"images": str(Path(images).resolve()), "masks": str(Path(masks).resolve())},
                      len(pairs), lambda: mask_folder_items(pairs))
    if blurred is None or sharp is None:
        raise BlurgenError("--blurred and --sharp go together: a folder of blurred and one of sharp images")
    files = labelled_files(Path(blurred), Path(sharp))
    return Source("blurred-sharp", {"blurred": str(Path(blurred).resolve()), "sharp": str(Path(sharp).resolve())},
                  len(files), lambda: blurred_sharp_items(files))


def _shard_files(folder: Path, split: str | None) -> tuple[list[str], str]:
    """The composite shards to score and their split: ``split``'s, by default ``test``. A folder
    without a test split is refused rather than scored whole: its train and val splits are what a
    run made on it trains and validates on, so the user names the split (``--split``)."""
    if split is None:
        composite_folders(folder)  # shards of another kind get the schema line first
        names = composite_split_names(folder)
        if DEFAULT_SPLIT not in names:
            raise BlurgenError(f"{folder} has no '{DEFAULT_SPLIT}' split (splits there: {', '.join(names)}): "
                               "name the held-out split to score with --split NAME")
        split = DEFAULT_SPLIT
    return composite_split_files(folder, split), split


def write_report(predictions: Iterable[tuple[EvalItem, np.ndarray, np.ndarray | None]], out: str | Path, *,
                 thresholds: Thresholds, top_fraction: float, header: dict[str, Any], total: int | None = None,
                 method: str = "blurgen blur-seg", progress: bool = True) -> BlurSegReport:
    """Score a stream of (item, blur probability, intensity or None) and write the report folder.

    Any predictor can be scored this way (the benchmark scores its reference detectors with it).
    """
    from tqdm import tqdm

    tally = SegmentationTally(top_fraction)
    shown: list[tuple[EvalItem, np.ndarray, np.ndarray | None]] = []
    rows: dict[str, list[Any]] = {k: [] for k in ("sample_id", "blur_png", "intensity_png", "height", "width",
                                                  "image_score", "image_label", "true_blur_pixels")}
    with staged_folder(out) as folder:
        (folder / "predictions").mkdir()
        for k, (item, prob, intensity) in enumerate(tqdm(predictions, total=total, desc="scoring", unit="img",
                                                         disable=not progress or None)):
            levels = quantise(prob)
            if item.mask is not None and item.mask.shape != levels.shape:
                raise BlurgenError(f"{item.sample_id}: the mask is {item.mask.shape}, the prediction {levels.shape}")
            score = tally.add(item.sample_id, levels, item.mask, item.label)
            name = f"{k:06d}_{_safe(item.sample_id)}"
            _write_levels(folder / "predictions" / f"{name}_blur.png", levels)
            if intensity is not None:
                _write_levels(folder / "predictions" / f"{name}_intensity.png", quantise(intensity))
            for key, value in (("sample_id", item.sample_id), ("blur_png", f"{name}_blur.png"),
                               ("intensity_png", f"{name}_intensity.png" if intensity is not None else ""),
                               ("height", levels.shape[0]), ("width", levels.shape[1]), ("image_score", score),
                               ("image_label", -1 if item.label is None else int(item.label)),
                               ("true_blur_pixels", -1 if item.mask is None else int(item.mask.sum()))):
                rows[key].append(value)
            if len(shown) < SHEET_ROWS:
                shown.append((item, levels.astype(np.float32) / TOP, intensity))
        if not rows["sample_id"]:
            raise BlurgenError("nothing to evaluate: the source holds no image")
        pixel, image = tally.at(thresholds.pixel, thresholds.image)
        report = BlurSegReport(Path(out), pixel, image, thresholds, len(rows["sample_id"]))
        payload = {**header, "method": method, "images": report.images, "masked_images": tally.masked_images,
                   "thresholds": dataclasses.asdict(thresholds), "image_top_fraction": top_fraction,
                   "pixel": dataclasses.asdict(pixel) if pixel else None, "image": image.as_dict() if image else None}
        write_json(folder / "report.json", payload)
        (folder / "report.md").write_text(_markdown(payload, pixel, image, method), encoding="utf-8")
        write_h5_groups(folder / "predictions.h5", {"images": {k: np.asarray(v) for k, v in rows.items()}},
                        attrs={"task": TASK, "levels": "blur and intensity PNGs hold round(65535 x) of x in 0..1",
                               "image_score": f"mean of the top {top_fraction} share of an image's blur levels / 65535",
                               "image_label": "1 blurred, 0 sharp, -1 unknown"})
        write_png(folder / "sheet.png", _sheet(shown, thresholds.pixel))
    return report


def _safe(sample_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", sample_id)[-80:]


def _write_levels(path: Path, levels: np.ndarray) -> None:
    if not cv2.imwrite(str(path), np.ascontiguousarray(levels, dtype=np.uint16)):
        raise BlurgenError(f"could not write {path}")


def _sheet(shown: list[tuple[EvalItem, np.ndarray, np.ndarray | None]], threshold: float) -> np.ndarray:
    """One row per shown image: the image, the true mask, the predicted mask, the intensity map."""
    rows = []
    for item, prob, intensity in shown:
        image, _ = fit_width(item.image, SHEET_TILE)
        size = image.shape[1::-1]

        def resized(mask: np.ndarray) -> np.ndarray:
            return cv2.resize(mask.astype(np.float32), size, interpolation=cv2.INTER_NEAREST)

        label = item.sample_id if len(item.sample_id) <= 28 else "..." + item.sample_id[-25:]
        tiles = [draw_label(image.copy(), [label]),
                 draw_label(overlay_mask(image.copy(), resized(item.mask)), ["true mask"]) if item.mask is not None
                 else draw_label(np.zeros_like(image), ["no true mask"]),
                 draw_label(overlay_mask(image.copy(), resized(prob >= threshold)), [f"predicted, t={threshold:g}"]),
                 draw_label(intensity_to_rgb(intensity, size), ["intensity"]) if intensity is not None
                 else draw_label(np.zeros_like(image), ["no intensity"])]
        rows.append(hstack(tiles))
    return tile_grid(rows, cols=1)


def _markdown(payload: dict[str, Any], pixel: PixelMetrics | None, image: ImageMetrics | None, method: str) -> str:
    inputs = ", ".join(f"{k} `{v}`" for k, v in payload["inputs"].items())
    lines = ["# Blur segmentation evaluation", "",
             f"- checkpoint: `{payload.get('checkpoint')}` (epoch {payload.get('checkpoint_epoch')})",
             f"- source: {payload['source']} ({inputs}); {payload['images']} images, {payload['masked_images']} with a "
             f"true mask; blurgen {payload.get('blurgen_version')}, device {payload.get('device')}",
             f"- thresholds: pixel {payload['thresholds']['pixel']:g}, image {payload['thresholds']['image']:g} "
             f"({payload['thresholds']['source']})",
             "- values x 100; `–`: undefined (no such pixel or image). Definitions: docs/train-blur-seg.md.", ""]
    if payload.get("scores_training_data"):
        lines[-1:-1] = [TRAINING_DATA_WARNING]
    if pixel is not None:
        lines += ["## Pixel level (the paper's Table 1 layout)", "", markdown_table(["Metric", method], [
            ["Pixel Accuracy (%)", percent(pixel.pixel_accuracy)], ["Mean IoU (%)", percent(pixel.mean_iou)],
            ["Weighted IoU (%)", percent(pixel.weighted_iou)],
            ["Mean Class Accuracy (%)", percent(pixel.mean_class_accuracy)],
            ["Blur Class Performance:", ""],
            ["Precision (%)", percent(pixel.precision)], ["Recall (%)", percent(pixel.recall)],
            ["F1 Score (%)", percent(pixel.f1)], ["IoU (Blur) (%)", percent(pixel.iou_blur)],
            ["PR-AUC (%)", percent(pixel.pr_auc)]])]
    if image is not None:
        lines += ["## Image level (the paper's Table 2 layout)", "", markdown_table(["Metric", method], [
            ["Accuracy (%)", percent(image.accuracy)], ["Precision (%)", percent(image.precision)],
            ["Recall (%)", percent(image.recall)], ["Specificity (%)", percent(image.specificity)],
            ["F1 Score (%)", percent(image.f1)],
            ["ROC AUC", "–" if image.roc_auc != image.roc_auc else f"{image.roc_auc:.2f}"],
            ["Sharp Accuracy (%)", percent(image.sharp_accuracy)],
            ["Blur Accuracy (%)", percent(image.blur_accuracy)]])]
    return "\n".join(lines)
