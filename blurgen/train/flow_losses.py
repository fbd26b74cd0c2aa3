"""The flow-from-blur paper's training loss: multi-scale end-point error (Eq. 6) on valid pixels.

``L = sum_l w_l * EPE_l``, where level l's prediction (in level-l pixels, 1/2^l of the input) is
compared with the true flow brought to that level (:func:`downsample_flow`: each 2^l x 2^l block's
mean over its valid pixels, divided by 2^l), and ``EPE_l`` is the mean of ``|f_l - f*_l|_2``
over the level's valid pixels, per sample; the batch's loss is the mean over its samples.

With ``direction="min"`` each sample is compared with both its forward and its backward flow and
keeps the direction whose total is lower (one choice per sample, for all levels), matching the
evaluation's ``min(EPE fwd, EPE bwd)``: one blurred image cannot say which way time ran.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

MIN_VALID_SHARE = 0.5  # a coarse pixel is valid when at least half of its block is


def downsample_flow(flow: torch.Tensor, valid: torch.Tensor, factor: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The flow of a coarser level: (N, 2, H, W) in input pixels and its (N, H, W) bool validity ->
    (N, 2, H/f, W/f) in that level's pixels and its validity.

    Each f x f block's value is the mean over its valid pixels (invalid or non-finite vectors do
    not leak in), divided by ``f`` (the unit change); the block is valid when at least half of its
    pixels are. This is the paper's bilinear downsampling made area-exact and validity-aware (for
    f = 2 the two agree on fully valid blocks). H and W must be multiples of ``f``.
    """
    ok = valid & torch.isfinite(flow).all(dim=1)
    if factor == 1:
        return torch.where(ok[:, None], flow, torch.zeros_like(flow)), ok
    weight = ok[:, None].to(flow.dtype)
    clean = torch.where(ok[:, None], flow, torch.zeros_like(flow))
    share = F.avg_pool2d(weight, factor)
    mean = F.avg_pool2d(clean, factor) / share.clamp_min(1e-12)
    return mean / factor, share[:, 0] >= MIN_VALID_SHARE


def level_epe(pred: torch.Tensor, gt: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Per sample, the mean end-point error over the valid pixels: (N,) (0 where none is valid)."""
    errors = torch.linalg.vector_norm(pred - gt, dim=1) * valid
    return errors.sum(dim=(1, 2)) / valid.sum(dim=(1, 2)).clamp_min(1)


def multiscale_epe(levels: Sequence[torch.Tensor], flow: torch.Tensor, valid: torch.Tensor,
                   weights: Sequence[float]) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Per sample ``sum_l w_l EPE_l`` (N,) and each level's EPE (N,), finest level first.

    ``levels[k]`` is the prediction at 1/2^(k+1) of ``flow``'s size (in its own pixels).
    """
    per_level = []
    for k, pred in enumerate(levels):
        gt, ok = downsample_flow(flow, valid, 2 ** (k + 1))
        per_level.append(level_epe(pred, gt, ok))
    total = sum(w * e for w, e in zip(weights, per_level))
    return total, per_level


def flow_loss(levels: Sequence[torch.Tensor], flow_fwd: torch.Tensor, flow_bwd: torch.Tensor,
              valid: torch.Tensor, weights: Sequence[float],
              direction: str = "forward") -> tuple[torch.Tensor, dict[str, float]]:
    """The batch's loss and, for the log, each level's EPE (in its own pixels, of the direction
    each sample was scored against). ``flow_*``: (N, 2, H, W) in input pixels; ``valid``:
    (N, 2, H, W) bool, channel 0 forward, 1 backward."""
    fwd_total, fwd_levels = multiscale_epe(levels, flow_fwd, valid[:, 0], weights)
    if direction == "forward":
        total, chosen = fwd_total, fwd_levels
    else:
        bwd_total, bwd_levels = multiscale_epe(levels, flow_bwd, valid[:, 1], weights)
        backward = bwd_total < fwd_total
        total = torch.where(backward, bwd_total, fwd_total)
        chosen = [torch.where(backward, b, f) for f, b in zip(fwd_levels, bwd_levels)]
    return total.mean(), {f"epe_level_{k + 1}": float(e.detach().mean()) for k, e in enumerate(chosen)}
