"""BRIDGE, the blur-robust descriptor network of the blur-retrieval paper (§3.1, Eq. 1-2).

    image ─► ResNet through layer4 (frozen norm) ─► GeM (Eq. 1) ─► L2 ─► f
    f ─► blur head:         FC+ReLU ─► f_b ─► MLP ─► sigmoid ─► p      (1 - BS, Eq. 7)
    f ─► localisation head: FC+ReLU ─► f_l ─► MLP ─► sigmoid ─► box    (normalised, Eq. 8)
    f ─► classification head: whitening (linear with bias, DELG) ─► f_c
    [f_c, f_b, f_l] ─► FC ─► L2 ─► descriptor (128-d, Eq. 2)

The paper's equations 1-2 were lost from our copy of the text; the layout above follows its prose
and, where the prose is silent (head widths, the L2 step after GeM, the prediction MLPs), the
authors' public code. Decisions and their reasons are in docs/train.md.

Why these choices:
- "Deactivate the normalization layers" is read as FrozenBatchNorm2d: each BatchNorm becomes a
  fixed per-channel affine from its running statistics, with no parameters at all. It cannot be
  switched back to batch statistics by `model.train()`, the optimiser and DDP never see it, and
  ImageNet weights keep the statistics they were trained with. With random weights its
  statistics are (mean 0, var 1, weight 1, bias 0), i.e. the identity: the same network as the
  other reading (normalisation removed), which the authors' code offers as `norm_type=None`.
- The pooled vector is L2-normalised before the heads (as in the authors' code and cirtorch):
  without normalisation layers the backbone's output scale is unconstrained, and this keeps the
  heads' inputs on the unit sphere.
- Nothing is downloaded: the backbone starts random (`weights=None`) or from a user's torchvision
  state dict read with `torch.load(..., weights_only=True)`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torchvision import models
from torchvision.ops.misc import FrozenBatchNorm2d

from blurgen.errors import BlurgenError
from blurgen.train.checkpoint import load_weights_file

#: backbone name -> torchvision constructor; channels of layer4's output follow from the model
BACKBONES: dict[str, Callable[..., models.ResNet]] = {
    "resnet18": models.resnet18,
    "resnet34": models.resnet34,
    "resnet50": models.resnet50,
}


class BridgeOutput(NamedTuple):
    """What BRIDGE predicts for a batch of N images."""

    descriptor: torch.Tensor  # (N, descriptor_dim), unit L2 norm (Eq. 2)
    blur: torch.Tensor  # (N,), in [0, 1]: the prediction p of 1 - BS (Eq. 7)
    box: torch.Tensor  # (N, 4), in [0, 1]: normalised (x0, y0, x1, y1) (Eq. 8)


class GeM(nn.Module):
    """Generalised-mean pooling (Eq. 1, Radenović et al.): ``(mean_hw x^p)^(1/p)`` per channel.

    p is learnt and starts at 3 (§5); p = 1 is average pooling, p → ∞ max pooling. Activations
    are clamped to `eps` first because a fractional power of 0 (or of a negative value) has no
    usable gradient.
    """

    def __init__(self, p: float = 3.0, eps: float = 1e-6) -> None:
        super().__init__()
        self.p = nn.Parameter(torch.tensor([float(p)]))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, C)."""
        # float32 regardless of autocast: x^3 of activations overflows half precision
        p = self.p.float()
        return x.float().clamp(min=self.eps).pow(p).mean(dim=(-2, -1)).pow(1.0 / p)


class _PredictionHead(nn.Module):
    """FC+ReLU to the head's features (which join the descriptor), then an MLP to a prediction
    squashed by a sigmoid into [0, 1] (both targets, 1 - BS and the normalised box, live there)."""

    def __init__(self, in_dim: int, feature_dim: int, hidden_dim: int, out_dim: int) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Linear(in_dim, feature_dim), nn.ReLU(inplace=True))
        self.predict = nn.Sequential(
            nn.Linear(feature_dim, hidden_dim), nn.ReLU(inplace=True), nn.Linear(hidden_dim, out_dim)
        )

    def forward(self, pooled: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.features(pooled)
        return features, torch.sigmoid(self.predict(features))


class Bridge(nn.Module):
    """BRIDGE (§3.1): a ResNet backbone through layer4, GeM, three heads, a 128-d descriptor.

    Input: float NCHW already normalised (the data pipeline normalises on the device); any
    memory format, channels_last included. Output: :class:`BridgeOutput`.

    - `backbone`: one of :data:`BACKBONES` (the paper uses resnet50).
    - `freeze_norm`: True (the paper) turns every BatchNorm into FrozenBatchNorm2d; False keeps
      trainable BatchNorm (for experiments only).
    - `backbone_weights`: a torchvision ResNet state dict file (e.g. ImageNet weights the user
      fetched); `fc.*` is ignored, any other missing or unexpected key is a BlurgenError.
    - `head_dim`: width of the blur and localisation features that join the descriptor;
      `whiten_dim`: width of the whitened features (None: the backbone's channels, as DELG).
    """

    def __init__(
        self,
        backbone: str = "resnet50",
        *,
        descriptor_dim: int = 128,
        head_dim: int = 1024,
        hidden_dim: int = 256,
        whiten_dim: int | None = None,
        gem_p: float = 3.0,
        freeze_norm: bool = True,
        backbone_weights: str | Path | None = None,
    ) -> None:
        super().__init__()
        resnet = build_backbone(backbone, freeze_norm=freeze_norm, weights=backbone_weights)
        channels = resnet.fc.in_features
        # through layer4, the last downsampling block; avgpool and fc are not used
        self.backbone = nn.Sequential(
            resnet.conv1, resnet.bn1, resnet.relu, resnet.maxpool,
            resnet.layer1, resnet.layer2, resnet.layer3, resnet.layer4,
        )
        self.pool = GeM(p=gem_p)
        self.blur_head = _PredictionHead(channels, head_dim, hidden_dim, 1)
        self.box_head = _PredictionHead(channels, head_dim, hidden_dim, 4)
        # whitening as a learnt affine map (Gordo et al. [11], DELG): a Linear layer with bias
        self.whiten = nn.Linear(channels, whiten_dim or channels, bias=True)
        self.reduce = nn.Linear((whiten_dim or channels) + 2 * head_dim, descriptor_dim)

    def forward(self, images: torch.Tensor) -> BridgeOutput:
        pooled = F.normalize(self.pool(self.backbone(images)), dim=1)
        blur_features, blur = self.blur_head(pooled)
        box_features, box = self.box_head(pooled)
        joined = torch.cat([self.whiten(pooled), blur_features, box_features], dim=1)
        descriptor = F.normalize(self.reduce(joined).float(), dim=1)
        return BridgeOutput(descriptor=descriptor, blur=blur.squeeze(1), box=box)


def build_backbone(
    name: str, *, freeze_norm: bool = True, weights: str | Path | None = None
) -> models.ResNet:
    """A torchvision ResNet with random weights or the user's, norm layers frozen or not."""
    if name not in BACKBONES:
        raise BlurgenError(f"model.backbone: unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}")
    norm_layer = FrozenBatchNorm2d if freeze_norm else nn.BatchNorm2d
    resnet = BACKBONES[name](weights=None, norm_layer=norm_layer)
    if weights is not None:
        load_backbone_weights(resnet, weights)
    return resnet


def load_backbone_weights(resnet: models.ResNet, path: str | Path) -> None:
    """Load a torchvision ResNet state dict from `path` into `resnet` (fc.* ignored)."""
    load_weights_file(resnet, path, option="model.backbone_weights", part="backbone",
                      hint=" (a torchvision ResNet state dict of the same depth is expected)")
