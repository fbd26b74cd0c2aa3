"""The training objective of the subtle-blur paper (§3.4, Eq. 1-10), with our readings where the
extracted equations were lost (docs/train-blur-seg.md states each one).

Notation: ``p`` the blur probability (sigmoid of the mask logits), ``y`` the true mask (0/1, or a
coverage in 0..1 for downsampled targets), sums over every pixel of the batch (``N`` pixels):

- BCE (Eq. 3): ``-1/N sum(y log p + (1 - y) log(1 - p))``, computed from the logits (stable);
- Dice (Eq. 4): ``1 - (2 sum(p y) + s) / (sum(p) + sum(y) + s)``;
- Tversky index (Eq. 6): ``TI = (sum(p y) + s) / (sum(p y) + a sum((1 - p) y) + b sum(p (1 - y)) + s)``,
  ``a`` weighting false negatives and ``b`` false positives; Focal Tversky (Eq. 5): ``(1 - TI)^g``;
- mask loss (Eq. 2): ``w_bce BCE + w_dice Dice + w_ft FT``;
- intensity (Eq. 7-8): the mean Huber loss ``H_d(r) = r^2 / 2 if |r| <= d else d (|r| - d / 2)`` of
  ``r = predicted - true intensity`` over the pixels of the true mask (0 when the batch has none);
- prevalence (Eq. 9): ``(mean(p) - pi)^2``, the batch's mean probability against the expected share;
- deep supervision (Eq. 10): the mean over the auxiliary stages of the mask loss of each stage's
  logits against the true mask area-averaged to that stage's size (a coverage in 0..1);
- total (Eq. 1): ``l_seg L_mask + l_reg L_int + l_prev L_prev + l_aux L_aux``.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
import torch.nn.functional as F


def bce_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits.float(), target.float())


def dice_loss(prob: torch.Tensor, target: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    p, y = prob.float(), target.float()
    return 1.0 - (2.0 * (p * y).sum() + smooth) / (p.sum() + y.sum() + smooth)


def tversky_index(prob: torch.Tensor, target: torch.Tensor, alpha: float, beta: float,
                  smooth: float = 1.0) -> torch.Tensor:
    p, y = prob.float(), target.float()
    tp = (p * y).sum()
    fn = ((1.0 - p) * y).sum()
    fp = (p * (1.0 - y)).sum()
    return (tp + smooth) / (tp + alpha * fn + beta * fp + smooth)


def focal_tversky_loss(prob: torch.Tensor, target: torch.Tensor, alpha: float, beta: float, gamma: float,
                       smooth: float = 1.0) -> torch.Tensor:
    # clamp: 1 - TI can round to a tiny negative, and a fractional power of it is NaN
    return (1.0 - tversky_index(prob, target, alpha, beta, smooth)).clamp_min(0.0) ** gamma


def mask_loss(logits: torch.Tensor, target: torch.Tensor, *, bce: float = 1.0, dice: float = 1.0,
              focal_tversky: float = 1.0, alpha: float = 0.7, beta: float = 0.3, gamma: float = 0.75,
              smooth: float = 1.0) -> torch.Tensor:
    """Eq. 2 on logits (N, 1, H, W) against a target of the same shape."""
    prob = torch.sigmoid(logits.float())
    return (bce * bce_loss(logits, target) + dice * dice_loss(prob, target, smooth)
            + focal_tversky * focal_tversky_loss(prob, target, alpha, beta, gamma, smooth))


def huber(residual: torch.Tensor, delta: float) -> torch.Tensor:
    a = residual.abs()
    return torch.where(a <= delta, 0.5 * residual * residual, delta * (a - 0.5 * delta))


def masked_huber_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, delta: float) -> torch.Tensor:
    """Eq. 7: mean Huber loss over the pixels where ``mask`` is set; 0 (still a graph) without any."""
    inside = mask.bool()
    per_pixel = huber(pred.float() - target.float(), delta)
    return (per_pixel * inside).sum() / inside.sum().clamp_min(1)


def prevalence_loss(prob: torch.Tensor, prevalence: float) -> torch.Tensor:
    """Eq. 9: ``(mean(p) - pi)^2`` over the batch."""
    return (prob.float().mean() - prevalence) ** 2


def downsampled_target(target: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """A (N, 1, H, W) mask as the blurred share of each cell of a coarser (h, w) grid, whose cells
    must tile it exactly (H, W whole multiples of h, w): adaptive pooling would accept any size,
    and a target the auxiliary map does not cover cell for cell would be wrong without a sign."""
    (height, width), (h, w) = target.shape[-2:], tuple(size)
    if height % h or width % w:
        raise ValueError(f"target {height}x{width} is not a whole multiple of the auxiliary map {h}x{w}: "
                         "pad it as the network pads its input")
    return F.adaptive_avg_pool2d(target.float(), (h, w))


def deep_supervision_loss(aux_logits: Sequence[torch.Tensor], target: torch.Tensor, **mask_kwargs: float
                          ) -> torch.Tensor:
    """Eq. 10: the mean mask loss of the auxiliary stages against the area-downsampled target."""
    if not aux_logits:
        return target.new_zeros((), dtype=torch.float32)
    terms = [mask_loss(logits, downsampled_target(target, logits.shape[-2:]), **mask_kwargs)
             for logits in aux_logits]
    return torch.stack(terms).mean()


def combine(terms: Mapping[str, torch.Tensor], weights: Mapping[str, float]) -> torch.Tensor:
    """Eq. 1: the weighted sum of the terms (weight 0 leaves a term out)."""
    return sum(weights[name] * value for name, value in terms.items() if weights[name] > 0)
