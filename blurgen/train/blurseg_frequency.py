"""The blur-frequency cue: local variance of the Laplacian, on the device.

Motion blur removes high frequencies, so the Laplacian (a high-pass filter) of a blurred region
varies less than that of a sharp one. One definition serves two users: the optional fourth input
channel of the blur-segmentation U-Net (:func:`frequency_channel`, paper §3.3 "blur-frequency
channel") and the classical detector the benchmark compares against (thresholded
:func:`laplacian_variance`, the classic variance-of-the-Laplacian blur measure made local).

- grey: Rec. 709 luma of the sRGB values in 0..1 (the Laplacian of gamma-encoded values, as
  the classic measure takes it on 8-bit images);
- Laplacian: the 4-neighbour kernel ``[[0, 1, 0], [1, -4, 1], [0, 1, 0]]``, mirrored borders;
- local variance: ``mean_w(L^2) - mean_w(L)^2`` over a ``window`` x ``window`` box, mirrored
  borders, clamped at 0 (rounding).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LUMA = (0.2126, 0.7152, 0.0722)
# log-variance to channel values: typical photos give log(var + EPS) of about -11 (flat or blurred)
# to -3 (texture); this affine map puts that range at about -2..2, like the normalised RGB channels
EPS = 1e-6
LOG_CENTRE, LOG_SCALE = -7.0, 2.5


def _mirror(x: torch.Tensor, pad: int) -> torch.Tensor:
    """Mirror padding where the image is large enough, edge replication where it is not."""
    mode = "reflect" if min(x.shape[-2:]) > pad else "replicate"
    return F.pad(x, (pad, pad, pad, pad), mode=mode)


def laplacian_variance(images: torch.Tensor, window: int = 7) -> torch.Tensor:
    """Local variance of the Laplacian of float RGB images (N, 3, H, W) in 0..1 -> (N, 1, H, W)."""
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"expected float images (N, 3, H, W), got {tuple(images.shape)}")
    if window < 1 or window % 2 == 0:
        raise ValueError(f"the window must be odd and positive, got {window}")
    luma = torch.tensor(LUMA, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    grey = (images * luma).sum(dim=1, keepdim=True)
    kernel = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]], dtype=images.dtype,
                          device=images.device).view(1, 1, 3, 3)
    lap = F.conv2d(_mirror(grey, 1), kernel)
    pad = window // 2
    mean = F.avg_pool2d(_mirror(lap, pad), window, stride=1)
    mean_sq = F.avg_pool2d(_mirror(lap * lap, pad), window, stride=1)
    return (mean_sq - mean * mean).clamp_min_(0.0)


def frequency_channel(images: torch.Tensor, window: int = 7) -> torch.Tensor:
    """The model's extra input channel: ``(log(var + EPS) - LOG_CENTRE) / LOG_SCALE``."""
    return (torch.log(laplacian_variance(images, window) + EPS) - LOG_CENTRE) / LOG_SCALE


def variance_to_blur_score(variance: torch.Tensor, scale: float) -> torch.Tensor:
    """A blur score in (0, 1] that falls as the variance grows: ``1 / (1 + var / scale)``.

    Monotone, so thresholding it is thresholding the variance; the classical detector uses it to
    be scored with the same threshold grid and curves as the network's probabilities.
    """
    if not scale > 0 or not math.isfinite(scale):
        raise ValueError(f"the scale must be positive, got {scale}")
    return 1.0 / (1.0 + variance / scale)
