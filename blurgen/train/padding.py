"""Inputs of any size for networks that need a multiple of their stride: pad, then crop back.

Both the blur-segmentation U-Net and the flow network take (N, C, H, W) of any size: the input is
padded at the bottom and right only, so every original pixel keeps its coordinates, and a
prediction made on the padded input is cut back to the top-left (H, W).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def pad_to_multiple(x: torch.Tensor, multiple: int, mode: str = "replicate", value: float = 0.0) -> torch.Tensor:
    """``x`` (N, C, H, W) padded at the bottom and right to the next multiples of ``multiple``
    (``x`` itself when it is one already).

    ``mode``: ``"replicate"`` repeats the edge (flow's images: no false border); ``"reflect"``
    mirrors it (blur detection: zeros or a repeated edge would look like a flat, i.e. blurred,
    band), with the edge repeated where the image is too small to mirror; ``"constant"`` fills
    ``value`` (labels marked invalid).
    """
    h, w = x.shape[-2:]
    ph, pw = -h % multiple, -w % multiple
    if not ph and not pw:
        return x
    if mode == "constant":
        return F.pad(x, (0, pw, 0, ph), mode="constant", value=value)
    if mode == "reflect" and not (ph < h and pw < w):
        mode = "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode)


def crop_to(x: torch.Tensor, size: tuple[int, int] | torch.Size) -> torch.Tensor:
    """The top-left (H, W) of ``x`` (..., H', W'): undoes :func:`pad_to_multiple` (padding at the
    bottom and right moves no pixel)."""
    return x[..., :size[0], :size[1]]
