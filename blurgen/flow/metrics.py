"""Flow error metrics: end-point error (EPE) and the direction-free EPE of the flow-from-blur paper.

EPE at a pixel is the Euclidean distance between the predicted and the true flow vector,
``sqrt((u - u*)^2 + (v - v*)^2)``; a field's EPE is its mean over the pixels where the truth is
valid (and finite). A single blurred image does not say which way time ran (averaging frames
forwards or backwards gives the same image), so the flow-from-blur paper compares a prediction
with both the first->last and the last->first ground truth of each image and reports the lower:
``min{EPE(f_1->2), EPE(f_2->1)}`` per image, averaged over the test set (its "Quantitative
evaluation"). :func:`min_direction_epe` is that per-image value.
"""

from __future__ import annotations

import numpy as np


def _check(flow: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    flow = np.asarray(flow, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    if flow.ndim != 3 or flow.shape[2] != 2:
        raise ValueError(f"flow must have shape (H, W, 2), got {flow.shape}")
    if gt.shape != flow.shape:
        raise ValueError(f"ground truth has shape {gt.shape}, the flow {flow.shape}: they must match")
    return flow, gt


def epe_map(flow: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Per-pixel end-point error, (H, W) float32 (NaN where either field is not finite)."""
    flow, gt = _check(flow, gt)
    return np.hypot(flow[..., 0] - gt[..., 0], flow[..., 1] - gt[..., 1]).astype(np.float32)


def _valid_mask(valid: np.ndarray | None, shape: tuple[int, int]) -> np.ndarray:
    if valid is None:
        return np.ones(shape, dtype=bool)
    valid = np.asarray(valid, dtype=bool)
    if valid.shape != shape:
        raise ValueError(f"valid mask has shape {valid.shape}, expected {shape}")
    return valid


def epe(flow: np.ndarray, gt: np.ndarray, valid: np.ndarray | None = None) -> float:
    """Mean end-point error over the pixels where ``valid`` (H, W) is true and both fields are finite.

    NaN when no pixel qualifies (an undefined mean, not a perfect score).
    """
    errors = epe_map(flow, gt).astype(np.float64)
    use = _valid_mask(valid, errors.shape) & np.isfinite(errors)
    return float(errors[use].mean()) if use.any() else float("nan")


def min_direction_epe(pred: np.ndarray, gt_fwd: np.ndarray, gt_bwd: np.ndarray,
                      valid: np.ndarray | None = None) -> float:
    """``min(EPE(pred, gt_fwd), EPE(pred, gt_bwd))`` for one image (flow-from-blur paper).

    ``valid``: (H, W, 2) with channel 0 for the forward and channel 1 for the backward truth
    (the ``flow_valid`` field of ``blurgen.flowpairs/1``), or (H, W) for both; None: all pixels.
    A direction with no valid pixel does not count; NaN when neither has one.
    """
    valid_fwd, valid_bwd = direction_masks(valid)
    scores = [epe(pred, gt_fwd, valid_fwd), epe(pred, gt_bwd, valid_bwd)]
    finite = [s for s in scores if np.isfinite(s)]
    return min(finite) if finite else float("nan")


def direction_masks(valid: np.ndarray | None) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The forward and backward validity of a ``flow_valid`` value: (H, W, 2) -> its two channels,
    (H, W) -> itself twice, None -> None twice (every pixel)."""
    if valid is None:
        return None, None
    valid = np.asarray(valid, dtype=bool)
    return (valid[..., 0], valid[..., 1]) if valid.ndim == 3 else (valid, valid)


def accuracy(flow: np.ndarray, gt: np.ndarray, valid: np.ndarray | None = None, threshold: float = 3.0) -> float:
    """Share of the valid pixels (as in :func:`epe`) whose end-point error is below ``threshold``
    px (the "1px / 3px / 5px" accuracies of flow benchmarks); NaN when no pixel qualifies."""
    errors = epe_map(flow, gt).astype(np.float64)
    use = _valid_mask(valid, errors.shape) & np.isfinite(errors)
    return float((errors[use] < threshold).mean()) if use.any() else float("nan")
