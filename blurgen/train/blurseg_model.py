"""SMBlurDetect's network (subtle-blur paper §3.3): a U-Net with two pixel heads and deep supervision.

- Encoder and decoder: segmentation_models_pytorch's U-Net (``smp.Unet``), encoder a config value
  (the paper: ResNet-50). ``encoder_weights`` is never a download: None (random) or a user's
  state-dict file read with ``torch.load(weights_only=True)`` (torchvision ResNet keys; ``fc.*``
  ignored). With the frequency channel the first convolution takes 4 inputs: the file's RGB
  filters are loaded into an RGB encoder first and smp's ``set_in_channels`` then adds the fourth
  (its rule: new input channels reuse the pretrained filters, scaled).
- Heads on the last decoder stage: a 1x1 convolution giving blur-mask logits (no activation),
  and a 1x1 convolution + sigmoid giving the blur-intensity map in 0..1.
- Deep supervision: a 1x1 convolution giving mask logits on each of the last ``aux_stages``
  intermediate decoder stages (coarser resolutions), read by forward hooks on smp's decoder
  blocks, so smp's own forward runs unchanged.
- Inputs of any size: padded at the right and bottom to a multiple of the encoder's stride
  (mirrored: :func:`~blurgen.train.padding.pad_to_multiple`) and every output cropped back.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn

from blurgen.errors import BlurgenError
from blurgen.train.checkpoint import load_weights_file
from blurgen.train.padding import crop_to, pad_to_multiple


PADDING = "reflect"  # mirrored: a repeated edge or zeros would read as a flat, i.e. blurred, band


class BlurSegOutput(NamedTuple):
    mask_logits: torch.Tensor          # (N, 1, H, W)
    intensity: torch.Tensor            # (N, 1, H, W) in 0..1
    aux_logits: tuple[torch.Tensor, ...]  # coarse to fine, each (N, 1, H / 2^k, W / 2^k) of the padded input


class BlurSegNet(nn.Module):
    """U-Net (smp) with mask logits, sigmoid intensity and auxiliary mask heads."""

    def __init__(self, encoder: str = "resnet50", *, encoder_weights: str | Path | None = None,
                 encoder_depth: int = 5, decoder_channels: tuple[int, ...] = (256, 128, 64, 32, 16),
                 in_channels: int = 3, aux_stages: int = 3) -> None:
        super().__init__()
        import segmentation_models_pytorch as smp

        if len(decoder_channels) != encoder_depth:
            raise BlurgenError(f"model.decoder_channels has {len(decoder_channels)} widths for encoder_depth "
                               f"{encoder_depth}: give one per encoder stage")
        if aux_stages > encoder_depth - 1:
            raise BlurgenError(f"model.aux_stages {aux_stages}: the decoder has only {encoder_depth - 1} "
                               "intermediate stages")
        # a user's RGB weights are loaded into an RGB encoder, then widened to in_channels
        built_channels = 3 if encoder_weights is not None else in_channels
        try:
            self.unet = smp.Unet(encoder, encoder_depth=encoder_depth, encoder_weights=None,
                                 decoder_channels=tuple(decoder_channels), in_channels=built_channels, classes=1)
        except (KeyError, ValueError, RuntimeError) as exc:
            raise BlurgenError(f"model.encoder {encoder!r} is not a segmentation_models_pytorch encoder "
                               f"({str(exc).splitlines()[0][:120]})") from None
        if encoder_weights is not None:
            load_encoder_weights(self.unet.encoder, encoder_weights)
            if in_channels != 3:
                if not hasattr(self.unet.encoder, "set_in_channels"):
                    raise BlurgenError(f"model.encoder {encoder!r} cannot widen loaded RGB weights to the frequency "
                                       "channel: set model.frequency_channel: false, or use an smp encoder "
                                       "(e.g. resnet18)")
                self.unet.encoder.set_in_channels(in_channels, pretrained=True)
        del self.unet.segmentation_head  # replaced by the two heads below (1x1, as the paper)
        self.multiple = int(self.unet.encoder.output_stride)
        final = decoder_channels[-1]
        self.mask_head = nn.Conv2d(final, 1, kernel_size=1)
        self.intensity_head = nn.Conv2d(final, 1, kernel_size=1)
        blocks = list(self.unet.decoder.blocks)
        self._aux_blocks = blocks[len(blocks) - 1 - aux_stages:len(blocks) - 1]
        self.aux_heads = nn.ModuleList(nn.Conv2d(decoder_channels[len(blocks) - 1 - aux_stages + k], 1, 1)
                                       for k in range(aux_stages))
        self._captured: list[torch.Tensor] = []
        for block in self._aux_blocks:
            block.register_forward_hook(self._capture)

    def _capture(self, module: nn.Module, inputs: object, output: torch.Tensor) -> None:
        self._captured.append(output)

    def forward(self, x: torch.Tensor) -> BlurSegOutput:
        size = x.shape[-2:]
        padded = pad_to_multiple(x, self.multiple, mode=PADDING)
        self._captured = []
        features = self.unet.decoder(self.unet.encoder(padded))
        captured, self._captured = self._captured, []
        aux = tuple(head(f) for head, f in zip(self.aux_heads, captured))
        return BlurSegOutput(crop_to(self.mask_head(features), size),
                             crop_to(torch.sigmoid(self.intensity_head(features)), size), aux)


def load_encoder_weights(encoder: nn.Module, path: str | Path) -> None:
    """A user's state dict from ``path`` into smp's encoder (``fc.*`` ignored); one line when it does not fit."""
    load_weights_file(encoder, path, option="model.encoder_weights", part="encoder")
