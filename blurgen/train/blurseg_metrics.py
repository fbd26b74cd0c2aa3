"""The blur-segmentation metrics of the subtle-blur paper (§4.2), exactly and re-scorably defined.

Pixel level. Blur probabilities are quantised to 16 bits, ``q = round(65535 p)`` (what the report
saves as 16-bit PNGs, so re-scoring the saved maps gives the same numbers), and counted per level
for the blur and the sharp pixels of the whole evaluated set (:class:`PixelCounts`; one confusion
matrix over all pixels, as segmentation benchmarks pool them). A pixel is predicted blurred when
``q >= round(65535 t)`` for a threshold ``t``. From the confusion matrix (TP, FP, FN, TN; blur
is the positive class):

- pixel accuracy ``(TP + TN) / N``; IoU(blur) ``TP / (TP + FP + FN)``, IoU(sharp) ``TN / (TN + FN + FP)``;
- mean IoU: the mean of the two; weighted IoU: their mean weighted by each class's true pixel count;
- mean class accuracy: the mean of the two class recalls ``TP / (TP + FN)`` and ``TN / (TN + FP)``
  (means over the defined values: a class with no true and no predicted pixel has no IoU);
- blur precision ``TP / (TP + FP)``, recall ``TP / (TP + FN)``, F1 ``2 TP / (2 TP + FP + FN)``;
- PR-AUC: average precision over every distinct level as a threshold, ``sum_k (R_k - R_k-1) P_k`` from
  the highest level down (step interpolation; sklearn's ``average_precision_score`` definition).

An undefined ratio (0 / 0) is NaN (``null`` in JSON). Image level: each image's score is the mean
of its top ``image_top_fraction`` quantised probabilities (:func:`image_score`); an image is
predicted blurred when its score ``>= t``: accuracy, precision, recall (blur accuracy),
specificity (sharp accuracy), F1, and ROC AUC (the probability that a blurred image scores above
a sharp one, ties counting one half). Thresholds are chosen by grid search (``t = step, 2 step,
... < 1``) on the validation set: the pixel threshold maximising IoU(blur), the image threshold
maximising F1, the lowest of equal bests.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np

LEVELS = 65536
TOP = LEVELS - 1


def quantise(prob: np.ndarray) -> np.ndarray:
    """Probabilities in 0..1 as uint16 levels ``round(65535 p)``."""
    return np.rint(np.clip(np.asarray(prob, np.float64), 0.0, 1.0) * TOP).astype(np.uint16)


def threshold_level(threshold: float) -> int:
    """The level a threshold is compared at: blur where ``q >= round(65535 t)``."""
    return int(round(float(threshold) * TOP))


def image_score(levels: np.ndarray, top_fraction: float) -> float:
    """An image's blur score: the mean of its ``ceil(top_fraction * pixels)`` highest probabilities."""
    flat = np.asarray(levels).ravel()
    k = max(1, min(flat.size, math.ceil(top_fraction * flat.size)))
    top = np.partition(flat, flat.size - k)[flat.size - k:]
    return float(top.astype(np.float64).mean() / TOP)


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den > 0 else math.nan


def _mean_defined(*values: float) -> float:
    """The mean of the defined values (a class absent from truth and prediction has no IoU)."""
    defined = [v for v in values if not math.isnan(v)]
    return sum(defined) / len(defined) if defined else math.nan


@dataclass
class PixelCounts:
    """Blur and sharp pixel counts per probability level, over a whole set of images."""

    blur: np.ndarray = field(default_factory=lambda: np.zeros(LEVELS, np.int64))
    sharp: np.ndarray = field(default_factory=lambda: np.zeros(LEVELS, np.int64))

    def add(self, levels: np.ndarray, mask: np.ndarray) -> None:
        levels, mask = np.asarray(levels).ravel(), np.asarray(mask, bool).ravel()
        if levels.shape != mask.shape:
            raise ValueError(f"prediction and mask differ in size: {levels.shape} vs {mask.shape}")
        self.blur += np.bincount(levels[mask], minlength=LEVELS)
        self.sharp += np.bincount(levels[~mask], minlength=LEVELS)

    @property
    def pixels(self) -> int:
        return int(self.blur.sum() + self.sharp.sum())

    def confusion(self, threshold: float) -> tuple[int, int, int, int]:
        """(TP, FP, FN, TN) at ``threshold``."""
        k = threshold_level(threshold)
        tp, fp = int(self.blur[k:].sum()), int(self.sharp[k:].sum())
        return tp, fp, int(self.blur[:k].sum()), int(self.sharp[:k].sum())

    def average_precision(self) -> float:
        """Area under the precision-recall curve (step interpolation over every level)."""
        tp = np.cumsum(self.blur[::-1])   # pixels at or above each level, from the top level down
        fp = np.cumsum(self.sharp[::-1])
        positives = tp[-1]
        if positives == 0:
            return math.nan
        predicted = tp + fp
        precision = np.divide(tp, predicted, out=np.zeros(LEVELS), where=predicted > 0)
        recall_step = np.diff(tp, prepend=0) / positives
        return float((recall_step * precision).sum())


@dataclass(frozen=True)
class PixelMetrics:
    threshold: float
    pixel_accuracy: float
    mean_iou: float
    weighted_iou: float
    mean_class_accuracy: float
    precision: float
    recall: float
    f1: float
    iou_blur: float
    iou_sharp: float
    pr_auc: float
    pixels: int
    blur_pixels: int


def pixel_metrics(counts: PixelCounts, threshold: float) -> PixelMetrics:
    tp, fp, fn, tn = counts.confusion(threshold)
    n, blur, sharp = tp + fp + fn + tn, tp + fn, tn + fp
    iou_blur, iou_sharp = _ratio(tp, tp + fp + fn), _ratio(tn, tn + fn + fp)
    present = [(count, iou) for count, iou in ((blur, iou_blur), (sharp, iou_sharp)) if count > 0]
    return PixelMetrics(
        threshold=float(threshold), pixel_accuracy=_ratio(tp + tn, n),
        mean_iou=_mean_defined(iou_blur, iou_sharp),
        weighted_iou=_ratio(sum(count * iou for count, iou in present), sum(count for count, _ in present)),
        mean_class_accuracy=_mean_defined(_ratio(tp, blur), _ratio(tn, sharp)),
        precision=_ratio(tp, tp + fp), recall=_ratio(tp, blur), f1=_ratio(2 * tp, 2 * tp + fp + fn),
        iou_blur=iou_blur, iou_sharp=iou_sharp, pr_auc=counts.average_precision(), pixels=n, blur_pixels=blur)


def threshold_grid(step: float) -> np.ndarray:
    """``step, 2 step, ...`` below 1 (rounded to 1e-9 so that 0.01 steps print as they should)."""
    count = math.ceil(round(1.0 / step, 9)) - 1
    return np.round(np.arange(1, count + 1) * step, 9)


def best_pixel_threshold(counts: PixelCounts, step: float) -> float:
    """The grid threshold with the highest IoU(blur) on ``counts`` (0.5 when no blur pixel is there)."""
    if counts.blur.sum() == 0:
        return 0.5
    scores = [pixel_metrics(counts, t).iou_blur for t in threshold_grid(step)]
    return float(threshold_grid(step)[int(np.nanargmax(scores))])


@dataclass(frozen=True)
class ImageMetrics:
    threshold: float
    accuracy: float
    precision: float
    recall: float
    specificity: float
    f1: float
    roc_auc: float
    images: int
    blurred_images: int

    @property
    def sharp_accuracy(self) -> float:
        return self.specificity

    @property
    def blur_accuracy(self) -> float:
        return self.recall

    def as_dict(self) -> dict[str, float]:
        return {**dataclasses.asdict(self), "sharp_accuracy": self.sharp_accuracy,
                "blur_accuracy": self.blur_accuracy}


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """P(score of a blurred image > score of a sharp one), ties 1/2 (Mann-Whitney), from ranks."""
    scores, labels = np.asarray(scores, np.float64), np.asarray(labels, bool)
    pos, neg = int(labels.sum()), int((~labels).sum())
    if pos == 0 or neg == 0:
        return math.nan
    order = np.argsort(scores, kind="stable")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    # average ranks (1-based) over runs of equal scores
    starts = np.flatnonzero(np.r_[True, np.diff(sorted_scores) != 0])
    ends = np.r_[starts[1:], len(scores)]
    for s, e in zip(starts, ends):
        ranks[order[s:e]] = (s + 1 + e) / 2
    return float((ranks[labels].sum() - pos * (pos + 1) / 2) / (pos * neg))


def image_metrics(scores: np.ndarray, labels: np.ndarray, threshold: float) -> ImageMetrics:
    scores, labels = np.asarray(scores, np.float64), np.asarray(labels, bool)
    predicted = scores >= threshold
    tp, fp = int((predicted & labels).sum()), int((predicted & ~labels).sum())
    fn, tn = int((~predicted & labels).sum()), int((~predicted & ~labels).sum())
    return ImageMetrics(threshold=float(threshold), accuracy=_ratio(tp + tn, len(scores)),
                        precision=_ratio(tp, tp + fp), recall=_ratio(tp, tp + fn), specificity=_ratio(tn, tn + fp),
                        f1=_ratio(2 * tp, 2 * tp + fp + fn), roc_auc=roc_auc(scores, labels), images=len(scores),
                        blurred_images=int(labels.sum()))


def best_image_threshold(scores: np.ndarray, labels: np.ndarray, step: float) -> float:
    """The grid threshold with the highest image F1 (0.5 when there is no blurred image)."""
    if not np.asarray(labels, bool).any():
        return 0.5
    f1 = [image_metrics(scores, labels, t).f1 for t in threshold_grid(step)]
    return float(threshold_grid(step)[int(np.nanargmax(f1))])


class SegmentationTally:
    """What scoring a set of images accumulates: the pixel counts of the images with a true mask,
    and every image's score, label and id (in the order added)."""

    def __init__(self, top_fraction: float) -> None:
        self.top_fraction = top_fraction
        self.pixels = PixelCounts()
        self.masked_images = 0
        self.ids: list[str] = []
        self.scores: list[float] = []
        self.labels: list[bool | None] = []

    def add(self, sample_id: str, levels: np.ndarray, mask: np.ndarray | None, label: bool | None) -> float:
        """Count one image (``levels``: its quantised probabilities); returns its image score."""
        if mask is not None:
            self.pixels.add(levels, mask)
            self.masked_images += 1
        score = image_score(levels, self.top_fraction)
        self.ids.append(sample_id)
        self.scores.append(score)
        self.labels.append(label)
        return score

    def labelled(self) -> tuple[np.ndarray, np.ndarray]:
        """Scores and labels of the images whose label is known."""
        known = [k for k, label in enumerate(self.labels) if label is not None]
        return (np.array([self.scores[k] for k in known], np.float64),
                np.array([bool(self.labels[k]) for k in known], bool))

    def at(self, pixel_threshold: float, image_threshold: float) -> tuple[PixelMetrics | None, ImageMetrics | None]:
        """Pixel metrics (None without masks) and image metrics (None without labels) at the thresholds."""
        scores, labels = self.labelled()
        return (pixel_metrics(self.pixels, pixel_threshold) if self.masked_images else None,
                image_metrics(scores, labels, image_threshold) if len(scores) else None)

    def chosen(self, step: float) -> tuple[PixelMetrics | None, ImageMetrics | None]:
        """The metrics at the thresholds grid-searched on this set (IoU(blur) and image F1)."""
        return self.at(*self.best_thresholds(step))

    def best_thresholds(self, step: float) -> tuple[float, float]:
        scores, labels = self.labelled()
        return best_pixel_threshold(self.pixels, step), best_image_threshold(scores, labels, step)
