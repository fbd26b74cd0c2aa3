"""The blur-retrieval paper's training losses (§3.3, Eq. 7-12), pure torch.

- ArcFace over object identities (Eq. 9-10, Deng et al.): scale s = 30, margin m = 0.15.
- Contrastive loss on (query, positive, negatives) tuples (Eq. 11, Radenović et al.), margin 0.7.
- Blur estimation |p - (1 - BS)| (Eq. 7), localisation L1 on the normalised box (Eq. 8).
- Their weighted sum (Eq. 12) with weights from a config mapping.

Reductions are chosen so that every term is independent of the batch size (a per-rank mean, so
DDP's gradient averaging gives the same update as one process with the whole batch); where the
authors' public code differs, docs/train.md says how.
"""
from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from blurgen.errors import ConfigError

#: the loss terms of Eq. 12, by the names the config uses
LOSS_TERMS = ("arcface", "contrastive", "blur", "localisation")

#: default weights of Eq. 12. The paper's values are lost from our copy (it says only that they
#: make the terms "approximately within the same magnitude"); the authors' public code defaults
#: to 1.0 for every term, which is what we take. A weight of 0 drops the term (Table 5 ablations).
DEFAULT_LOSS_WEIGHTS: dict[str, float] = {name: 1.0 for name in LOSS_TERMS}


class ArcFace(nn.Module):
    """ArcFace margin loss over `num_classes` identities (Eq. 9-10); owns the classifier W.

    logits_j = s · cos θ_j for j ≠ y and s · ψ(θ_y) for the true class y, then cross entropy, with
    cos θ_j = <x/|x|, W_j/|W_j|>. The margin wraps: cos(θ + m) stops decreasing once θ + m > π,
    which would reward moving a sample *away* from its class. We use the threshold form of
    insightface (and the authors' code):

        ψ(θ) = cos(θ + m)              if θ ≤ π - m   (cos θ > cos(π - m))
        ψ(θ) = cos θ - m · sin m        otherwise

    which keeps the target logit decreasing on [0, π] (at θ = π - m it steps down by
    cos m + m·sin m - 1 ≈ 0.011 for m = 0.15). The "easy margin" variant, which applies the
    margin only where cos θ > 0, is not used: it drops the margin for half the sphere. The authors' code also rescales hard
    negatives (a CurricularFace step); the paper describes plain ArcFace, and so is this.
    """

    def __init__(self, num_classes: int, dim: int = 128, scale: float = 30.0, margin: float = 0.15) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_classes, dim))
        nn.init.xavier_uniform_(self.weight)
        self.scale = scale
        self.margin = margin

    def logits(self, descriptors: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(N, dim), (N,) class indices -> (N, num_classes) margin-adjusted, scaled logits."""
        with torch.autocast(descriptors.device.type, enabled=False):  # the margin needs float32 cosines
            return self._logits(descriptors.float(), labels)

    def _logits(self, descriptors: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        cosine = F.linear(F.normalize(descriptors.float(), dim=1), F.normalize(self.weight.float(), dim=1))
        cosine = cosine.clamp(-1.0, 1.0)
        target = cosine.gather(1, labels.view(-1, 1))
        # the clamp keeps sqrt's gradient finite where cos θ = ±1
        sine = (1.0 - target.square()).clamp(min=1e-12).sqrt()
        shifted = target * math.cos(self.margin) - sine * math.sin(self.margin)
        wrapped = torch.where(
            target > math.cos(math.pi - self.margin), shifted, target - self.margin * math.sin(self.margin)
        )
        return self.scale * cosine.scatter(1, labels.view(-1, 1), wrapped)

    def forward(self, descriptors: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Mean cross entropy over the batch."""
        return F.cross_entropy(self.logits(descriptors, labels), labels)


def contrastive_loss(
    query: torch.Tensor, positive: torch.Tensor, negatives: torch.Tensor, margin: float = 0.7
) -> torch.Tensor:
    """Contrastive loss of Eq. 11 on tuples, mean over tuples of the sum over a tuple's pairs.

    query (N, D), positive (N, D), negatives (N, K, D): L2-normalised descriptors. For a pair at
    Euclidean distance d: matching (y = 1) costs ½ d², non-matching (y = 0) ½ max(0, margin - d)².
    """
    query = query.float()
    d_pos = (query - positive.float()).norm(dim=-1)  # (N,)
    d_neg = (query.unsqueeze(1) - negatives.float()).norm(dim=-1)  # (N, K)
    per_tuple = 0.5 * d_pos.square() + 0.5 * (margin - d_neg).clamp(min=0.0).square().sum(dim=1)
    return per_tuple.mean()


def blur_estimation_loss(predicted: torch.Tensor, blur_severity: torch.Tensor) -> torch.Tensor:
    """Eq. 7: mean |p - (1 - BS)|; p is the blur head's output, BS the sample's blur severity."""
    return (predicted.float() - (1.0 - blur_severity.float())).abs().mean()


def localisation_loss(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Eq. 8: L1 distance of (N, 4) normalised boxes, summed over the 4 coordinates, mean over N."""
    return (predicted.float() - target.float()).abs().sum(dim=1).mean()


def normalised_box(bbox: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Pixel boxes (N, 4) ``x0, y0, x1, y1`` (x1, y1 exclusive, as shards store them) -> [0, 1].

    Each coordinate is divided by the image side along its axis, so a box covering the whole image
    is (0, 0, 1, 1) whatever the image's aspect ratio.
    """
    scale = torch.tensor([width, height, width, height], dtype=torch.float32, device=bbox.device)
    return bbox.float() / scale


def check_loss_weights(weights: Mapping[str, float]) -> dict[str, float]:
    """The default weights updated with `weights`; an unknown name or a negative weight is a ConfigError."""
    unknown = sorted(set(weights) - set(LOSS_TERMS))
    if unknown:
        raise ConfigError(f"loss weights: unknown term {unknown[0]!r}; the terms are {', '.join(LOSS_TERMS)}")
    merged = {**DEFAULT_LOSS_WEIGHTS, **{name: float(value) for name, value in weights.items()}}
    negative = [name for name, value in merged.items() if not value >= 0.0]  # also catches NaN
    if negative:
        raise ConfigError(f"loss weights: {negative[0]} must be >= 0, got {merged[negative[0]]}")
    return merged


def combine_losses(terms: Mapping[str, torch.Tensor], weights: Mapping[str, float]) -> torch.Tensor:
    """Eq. 12: Σ weight · term over the terms given. A term with weight 0 is skipped, so an ablation
    need not compute it; a term with a non-zero weight that is missing is an error (a silent drop
    would train another model than the config says)."""
    weights = check_loss_weights(weights)
    missing = [name for name in LOSS_TERMS if weights[name] != 0.0 and name not in terms]
    if missing:
        raise ValueError(f"loss term {missing[0]!r} has weight {weights[missing[0]]} but was not computed")
    unknown = sorted(set(terms) - set(LOSS_TERMS))
    if unknown:
        raise ValueError(f"unknown loss term {unknown[0]!r}")
    active = [weights[name] * terms[name] for name in LOSS_TERMS if weights[name] != 0.0]
    if not active:
        raise ConfigError("loss weights: every weight is 0; nothing would be trained")
    return torch.stack(active).sum()
