"""The flow-from-one-blurred-image network in the paper's shape (Argaw et al., AAAI 2021, Fig. 2).

- **Encoder**: ``levels`` blocks of two 3x3 convolutions (stride 2, then 1), each followed by a
  ReLU; block l gives the encoded feature U_e^l at 1/2^l of the input.
- **Two feature decoders** (first and last frame, separate weights), coarse to fine (Eq. 1-2):
  a spatial transformer warps U_e^l by an affine transform it predicts from U_e^l (initialised
  to the identity); a refining block (densely connected 3x3 layers) takes the transformed
  feature, U_e^l and the previous level's decoded feature upsampled by a 4x4 stride-2
  transposed convolution, and gives the decoded feature V^l (as wide as U_e^l).
- **Flow estimator**, coarse to fine (Eq. 3-5): the last-frame feature is warped backwards by
  the upsampled flow of the level above, a cost volume correlates it with the first-frame
  feature, a flow decoder (densely connected layers) takes the cost volume, the first-frame
  feature, the upsampled flow feature and the upsampled flow, and a 3x3 prediction layer gives
  the level's flow; at the finest level a context network of dilated convolutions (1, 2, 4, 8,
  16, 1, then 1) adds a residual refinement.

Units: the flow of level l is in pixels of level l ((u, v) = (dx, dy), x right, y down, pixel
centres at integers), so level l's flow is the input-resolution flow divided by 2^l. The flow
upsampling deconvolutions start as bilinear x2 upsampling that doubles the values, which is
exactly the change of units between levels. The full-resolution output is level 1's flow
upsampled bilinearly by 2 with its values doubled. Inputs must be a multiple of 2^levels in
size: :mod:`blurgen.train.padding` pads them and cuts the prediction back.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from blurgen.train.flow_config import CONTEXT_DILATIONS, FlowConfig


def _conv(cin: int, cout: int, *, stride: int = 1, dilation: int = 1, relu: bool = True) -> nn.Module:
    conv = nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation)
    return nn.Sequential(conv, nn.ReLU(inplace=True)) if relu else conv


class DenseBlock(nn.Module):
    """3x3 layers (ReLU after each), each taking the block's input and every earlier layer's
    output concatenated; the block's output is its last layer's."""

    def __init__(self, cin: int, widths: tuple[int, ...]) -> None:
        super().__init__()
        self.layers = nn.ModuleList()
        for width in widths:
            self.layers.append(_conv(cin, width))
            cin += width
        self.out_channels = widths[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            y = layer(x)
            x = torch.cat([x, y], dim=1)
        return y


class SpatialTransformer(nn.Module):
    """Jaderberg et al.'s STN: an affine transform predicted from the feature, applied to it
    (bilinear sampling, zeros outside); the last layer starts at zero weights and the identity."""

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.features = nn.Sequential(_conv(channels, hidden, stride=2), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.theta = nn.Linear(hidden, 6)
        nn.init.zeros_(self.theta.weight)
        with torch.no_grad():
            self.theta.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        theta = self.theta(self.features(x)).view(-1, 2, 3)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def upsampler(channels: int) -> nn.ConvTranspose2d:
    """A 4x4 stride-2 transposed convolution that doubles the size (the paper's 'deconvolution')."""
    return nn.ConvTranspose2d(channels, channels, 4, stride=2, padding=1)


def flow_upsampler() -> nn.ConvTranspose2d:
    """The flow's deconvolution, started as bilinear x2 upsampling of each component times 2
    (the unit change between levels); training may move it from there."""
    up = upsampler(2)
    # away from the border; at the border the missing neighbour's share is zero instead of the edge's
    kernel = torch.tensor([0.25, 0.75, 0.75, 0.25])  # bilinear weights of a 2x upsampling with this padding
    with torch.no_grad():
        up.weight.zero_()
        up.bias.zero_()
        for c in range(2):
            up.weight[c, c] = 2.0 * torch.outer(kernel, kernel)
    return up


class FeatureDecoder(nn.Module):
    """One frame's decoder (Eq. 1-2): per level an STN and a refining block, coarse to fine."""

    def __init__(self, widths: tuple[int, ...], dense_widths: tuple[int, ...], stn_width: int) -> None:
        super().__init__()
        levels = len(widths)
        self.stns = nn.ModuleList(SpatialTransformer(c, stn_width) for c in widths)
        self.refine = nn.ModuleList(
            DenseBlock(2 * widths[k] + (widths[k + 1] if k + 1 < levels else 0), (*dense_widths[:-1], widths[k]))
            for k in range(levels))
        self.up = nn.ModuleList(upsampler(widths[k + 1]) for k in range(levels - 1))

    def forward(self, encoded: list[torch.Tensor]) -> list[torch.Tensor]:
        decoded: list[torch.Tensor] = [None] * len(encoded)  # type: ignore[list-item]
        for k in reversed(range(len(encoded))):
            parts = [self.stns[k](encoded[k]), encoded[k]]
            if k + 1 < len(encoded):
                parts.append(self.up[k](decoded[k + 1]))
            decoded[k] = self.refine[k](torch.cat(parts, dim=1))
        return decoded


def backward_warp(feature: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """``feature`` sampled at ``x + flow(x)`` (bilinear, zeros outside); flow in this level's pixels,
    pixel centres at integers (so ``align_corners=True`` normalisation)."""
    _, _, h, w = feature.shape
    ys, xs = torch.meshgrid(torch.arange(h, device=flow.device, dtype=flow.dtype),
                            torch.arange(w, device=flow.device, dtype=flow.dtype), indexing="ij")
    x = xs + flow[:, 0]
    y = ys + flow[:, 1]
    grid = torch.stack([2 * x / max(w - 1, 1) - 1, 2 * y / max(h - 1, 1) - 1], dim=-1)
    return F.grid_sample(feature, grid, mode="bilinear", padding_mode="zeros", align_corners=True)


def cost_volume(first: torch.Tensor, second: torch.Tensor, search_range: int) -> torch.Tensor:
    """Correlation (FlowNet's, PWC-Net's): for each displacement (dx, dy) in [-d, d]^2, row-major with
    dy outer, the channel mean of ``first(x) * second(x + (dx, dy))``, zero outside the image."""
    d = search_range
    _, _, h, w = first.shape
    padded = F.pad(second, (d, d, d, d))
    costs = [(first * padded[:, :, dy:dy + h, dx:dx + w]).mean(dim=1)
             for dy in range(2 * d + 1) for dx in range(2 * d + 1)]
    return torch.stack(costs, dim=1)


class FlowOutput(NamedTuple):
    """What the network predicts: each level's flow (finest first, in that level's pixels) and the
    full-resolution flow (input pixels). A named tuple, so DDP finds the tensors in it."""

    levels: list[torch.Tensor]
    flow: torch.Tensor


class BlurFlowNet(nn.Module):
    """Flow from one blurred image: ``forward(x)`` with x (N, 3, H, W), H and W multiples of
    :attr:`stride`, gives a :class:`FlowOutput`."""

    def __init__(self, config: FlowConfig) -> None:
        super().__init__()
        m = config.model
        widths, self.levels, self.search_range = tuple(m.widths), m.levels, m.search_range
        self.stride = 2 ** m.levels
        channels = (3, *widths)
        self.encoder = nn.ModuleList(
            nn.Sequential(_conv(channels[k], channels[k + 1], stride=2), _conv(channels[k + 1], channels[k + 1]))
            for k in range(m.levels))
        self.first = FeatureDecoder(widths, tuple(m.dense_widths), m.stn_width)
        self.last = FeatureDecoder(widths, tuple(m.dense_widths), m.stn_width)
        cost = (2 * m.search_range + 1) ** 2
        feat = m.dense_widths[-1]
        self.decoders = nn.ModuleList(
            DenseBlock(cost + widths[k] + (feat + 2 if k + 1 < m.levels else 0), tuple(m.dense_widths))
            for k in range(m.levels))
        self.predict = nn.ModuleList(_conv(feat, 2, relu=False) for _ in range(m.levels))
        self.feature_up = nn.ModuleList(upsampler(feat) for _ in range(m.levels - 1))
        self.flow_up = nn.ModuleList(flow_upsampler() for _ in range(m.levels - 1))
        context, cin = [], feat + 2
        for width, dilation in zip(m.context_widths, CONTEXT_DILATIONS):
            context.append(_conv(cin, width, dilation=dilation))
            cin = width
        context.append(_conv(cin, 2, relu=False))
        self.context = nn.Sequential(*context)

    def forward(self, x: torch.Tensor) -> FlowOutput:
        if x.shape[-1] % self.stride or x.shape[-2] % self.stride:
            raise ValueError(f"input {tuple(x.shape[-2:])} is not a multiple of {self.stride}: pad_to_multiple first")
        encoded = []
        for block in self.encoder:
            x = block(x)
            encoded.append(x)
        first, last = self.first(encoded), self.last(encoded)
        flows: list[torch.Tensor] = [None] * self.levels  # type: ignore[list-item]
        feature = flow = None
        for k in reversed(range(self.levels)):
            if flow is None:
                parts = [cost_volume(first[k], last[k], self.search_range), first[k]]
            else:
                flow = self.flow_up[k](flow)
                warped = backward_warp(last[k], flow)
                parts = [cost_volume(first[k], warped, self.search_range), first[k], self.feature_up[k](feature), flow]
            feature = self.decoders[k](torch.cat(parts, dim=1))
            flow = self.predict[k](feature)
            if k == 0:
                flow = flow + self.context(torch.cat([feature, flow], dim=1))
            flows[k] = flow
        full = 2.0 * F.interpolate(flows[0], scale_factor=2, mode="bilinear", align_corners=False)
        return FlowOutput(flows, full)
