"""Attention U-Net (Oktay et al., 2018): a U-Net whose skip connections pass through additive
attention gates driven by the next-coarser decoder level."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from segattn.errors import InputError
from segattn.models.blocks import ConvBlock, NativeEncoder, Norm
from segattn.models.gates import AttentionGate
from segattn.models.padding import pad_to_multiple


class AttentionUNetDecoder(nn.Module):
    """Expanding path. Level i (stride 2**i) upsamples the level-(i+1) output bilinearly,
    concatenates the (gated) skip feature of level i and applies a ConvBlock.

    The gate at level i takes its gating signal from the next-coarser decoder output (the
    bottleneck for the deepest skip), as in the paper's reference implementation.
    """

    def __init__(
        self,
        widths: Sequence[int],
        gates: bool = True,
        gate_finest: bool = False,
        sub_sample: int = 2,
        norm: Norm = "batch",
    ) -> None:
        super().__init__()
        levels = range(len(widths) - 1)
        self.blocks = nn.ModuleList(ConvBlock(widths[i] + widths[i + 1], widths[i], norm) for i in levels)
        self.gates = nn.ModuleDict(
            {
                f"gate{i}": AttentionGate(widths[i], widths[i + 1], sub_sample=sub_sample, norm=norm)
                for i in levels
                if gates and (i > 0 or gate_finest)
            }
        )

    def forward(self, features: list[Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        x = features[-1]
        maps: dict[str, Tensor] = {}
        for i in reversed(range(len(self.blocks))):
            skip = features[i]
            gate = self.gates[f"gate{i}"] if f"gate{i}" in self.gates else None
            if gate is not None:
                skip, maps[f"gate{i}"] = gate(skip, x)
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = self.blocks[i](torch.cat([skip, x], dim=1))
        return x, maps


class AttentionUNet(nn.Module):
    """Attention U-Net for 2-D semantic segmentation.

    Args:
        in_channels: image channels (1 grey, 3 RGB, ...).
        num_classes: K, the number of output channels (background included).
        encoder: "native", the U-Net's own conv encoder.
        widths: channels per level, finest first; depth = len(widths) - 1 poolings.
        gates: False gives the plain U-Net of the same widths (the ablation baseline).
        gate_finest: also gate the full-resolution skip (the paper does not).
        sub_sample: θ's stride in each gate (1, 2 or 4).
        norm: "batch", "instance" or "group".

    `forward(x)`: x float N×C×H×W, any H×W → logits N×K×H×W (padded to the stride inside,
    cropped back). `forward(x, return_attention=True)` → (logits, {gate name: α N×1×H_i×W_i}),
    α in [0, 1] at the resolution of the skip it gates (gate i: stride 2**i).
    """

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 2,
        encoder: str = "native",
        widths: Sequence[int] = (32, 64, 128, 256, 512),
        gates: bool = True,
        gate_finest: bool = False,
        sub_sample: int = 2,
        norm: Norm = "batch",
    ) -> None:
        super().__init__()
        if encoder != "native":
            raise InputError(f"encoder: unknown value {encoder!r}; expected 'native'")
        if len(widths) < 2 or any(int(w) < 1 for w in widths):
            raise InputError(f"widths: expected at least 2 positive channel counts, got {list(widths)}")
        widths = tuple(int(w) for w in widths)
        self.encoder = NativeEncoder(in_channels, widths, norm)
        self.decoder = AttentionUNetDecoder(widths, gates, gate_finest, sub_sample, norm)
        self.head = nn.Conv2d(widths[0], num_classes, 1)
        self.num_classes = num_classes
        self.in_channels = in_channels

    @property
    def stride(self) -> int:
        """H and W are padded to a multiple of this inside `forward`."""
        return self.encoder.output_stride

    def forward(self, x: Tensor, return_attention: bool = False) -> Tensor | tuple[Tensor, dict[str, Tensor]]:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise InputError(f"expected input N×{self.in_channels}×H×W, got shape {tuple(x.shape)}")
        h, w = x.shape[-2:]
        padded = pad_to_multiple(x, self.stride)
        out, maps = self.decoder(self.encoder(padded))
        logits = self.head(out)[..., :h, :w]
        if not return_attention:
            return logits
        return logits, {name: crop_to_input(a, padded.shape[-1], h, w) for name, a in maps.items()}


def crop_to_input(alpha: Tensor, padded_width: int, h: int, w: int) -> Tensor:
    """Crops a map computed on the padded input to the cells that cover the original H×W."""
    step = padded_width // alpha.shape[-1]
    return alpha[..., : -(-h // step), : -(-w // step)]
