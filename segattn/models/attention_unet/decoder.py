"""The expanding path of AttentionUNet: attention-gated skips, decoder blocks with optional
channel and spatial attention."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from segattn.models.attention import channel_attention, spatial_attention
from segattn.models.blocks import ConvBlock, make_norm
from segattn.models.gates import AttentionGate, MultiAttentionGate
from segattn.models.options import ChannelAttention, Gating, Norm, SpatialAttention, Upsample


class DecoderBlock(nn.Sequential):
    """ConvBlock → channel attention (SE / scSE or none) → spatial attention (CBAM or none)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        norm: Norm,
        channel: ChannelAttention | None = None,
        spatial: SpatialAttention | None = None,
        convs: int = 2,
    ) -> None:
        super().__init__(
            ConvBlock(in_channels, out_channels, norm, convs=convs),
            channel_attention(channel, out_channels),
            spatial_attention(spatial),
        )


class AttentionUNetDecoder(nn.Module):
    """Expanding path over encoder features f_0…f_D (finest first, f_i at stride 2**i, f_D the
    bottleneck). Decoder level i (D-1 down to 0) upsamples the level-(i+1) output (f_D for the
    deepest) bilinearly to f_i's size, concatenates the gated skip f_i, and applies a
    DecoderBlock with `widths[i]` output channels. A level whose `skip_channels[i]` is 0 has no
    skip (smp encoders' level 0 is the input; mit_b*'s level 1 is empty): it only upsamples.

    Gating signals of the gate at level i (`gating`):
        "coarser"     the level-(i+1) decoder output (f_D for the deepest skip), as in Oktay et
                      al.'s code;
        "bottleneck"  f_D for every gate;
        "multi"       f_D and every decoder output coarser than level i, each through its own φ.

    Gated: every level with a skip, except the finest skip unless `gate_finest`; none without
    `gates`. `gates_per_skip` > 1 puts a MultiAttentionGate on each gated skip; `gate_transform`
    is each gate's W (AttentionGate's `transform`).

    `forward(features)` → (decoder outputs finest first: level i N×widths[i]×H/2**i×W/2**i,
    {name: α N×1×H_i×W_i}); names are "gate{i}", or "gate{i}.{j}" for gate j of several.
    """

    def __init__(
        self,
        skip_channels: Sequence[int],
        bottleneck_channels: int,
        widths: Sequence[int],
        *,
        gates: bool = True,
        gate_finest: bool = False,
        sub_sample: int = 2,
        norm: Norm = "batch",
        gating: Gating = "coarser",
        gates_per_skip: int = 1,
        channel: ChannelAttention | None = None,
        spatial: SpatialAttention | None = None,
        upsample: Upsample = "reduce",
        convs: int = 2,
        gate_transform: bool = True,
    ) -> None:
        super().__init__()
        self.skip_channels = tuple(skip_channels)
        self.gating = gating
        self.gates_per_skip = gates_per_skip
        above = (*widths[1:], bottleneck_channels)  # channels of the output that level i upsamples
        levels = range(len(widths))
        self.reduce = nn.ModuleList(up_path(upsample, above[i], widths[i], norm) for i in levels)
        upsampled = above if upsample == "full" else widths
        self.blocks = nn.ModuleList(
            DecoderBlock(
                self.skip_channels[i] + upsampled[i],
                widths[i],
                norm=norm,
                channel=channel,
                spatial=spatial,
                convs=convs,
            )
            for i in levels
        )
        finest = min((i for i in levels if self.skip_channels[i] > 0), default=len(widths))
        self.gated_levels = tuple(
            i for i in levels if gates and self.skip_channels[i] > 0 and (i > finest or gate_finest)
        )
        self.gates = nn.ModuleDict(
            {
                f"gate{i}": make_gate(
                    gates_per_skip,
                    self.skip_channels[i],
                    self.gating_channels(i, above),
                    sub_sample,
                    norm,
                    gate_transform,
                )
                for i in self.gated_levels
            }
        )

    def gating_channels(self, level: int, above: Sequence[int]) -> list[int]:
        """Channels of the gating signals of the gate at `level`, in `select_signals` order."""
        return self.select_signals([above[-1], *reversed(above[level:-1])])

    def select_signals(self, coarser: list) -> list:
        """The gating signals among `coarser` = [f_D, then the decoder outputs, coarsest first]."""
        if self.gating == "bottleneck":
            return coarser[:1]
        if self.gating == "coarser":
            return coarser[-1:]
        return coarser

    def forward(self, features: Sequence[Tensor]) -> tuple[list[Tensor], dict[str, Tensor]]:
        x = features[-1]
        coarser = [x]
        maps: dict[str, Tensor] = {}
        for i in reversed(range(len(self.blocks))):
            skip = features[i]
            name = f"gate{i}"
            if name in self.gates:
                skip, alpha = self.gates[name](skip, self.select_signals(coarser))
                maps.update(name_maps(name, alpha, self.gates_per_skip))
            x = self.reduce[i](x)
            if x.shape[-2:] != skip.shape[-2:]:
                x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = self.blocks[i](torch.cat([skip, x], dim=1) if self.skip_channels[i] else x)
            coarser.append(x)
        return coarser[:0:-1], maps  # the decoder outputs, finest first


def up_path(upsample: Upsample, in_channels: int, out_channels: int, norm: Norm) -> nn.Module:
    """What a decoder level applies to the coarser output before it is resized to the skip:
    "reduce": a 1×1 conv + norm + ReLU to `out_channels` at the coarse resolution (the U-Net's
    channel-halving up-convolution, cheap there), then bilinear upsampling; "full": nothing, all
    channels are upsampled, as in Oktay et al.'s reference code (UnetUp: upsample, concatenate,
    conv); "transposed": a 3×3 stride-2 transposed conv + norm + ReLU to `out_channels`, which
    already doubles the size (MONAI's UpConv).
    """
    if upsample == "full":
        return nn.Identity()
    if upsample == "reduce":
        conv = nn.Conv2d(in_channels, out_channels, 1, bias=False)
    else:
        conv = nn.ConvTranspose2d(in_channels, out_channels, 3, stride=2, padding=1, output_padding=1, bias=False)
    return nn.Sequential(conv, make_norm(norm, out_channels), nn.ReLU(inplace=True))


def make_gate(
    count: int, skip_channels: int, gating_channels: list[int], sub_sample: int, norm: Norm, transform: bool
) -> nn.Module:
    """An AttentionGate, or a MultiAttentionGate of `count` gates."""
    if count == 1:
        return AttentionGate(skip_channels, gating_channels, sub_sample=sub_sample, norm=norm, transform=transform)
    return MultiAttentionGate(
        count, skip_channels, gating_channels, sub_sample=sub_sample, norm=norm, transform=transform
    )


def name_maps(name: str, alpha: Tensor, count: int) -> dict[str, Tensor]:
    """{"gate2": α} for one gate; {"gate2.0": α[:, :1], "gate2.1": α[:, 1:2], …} for several."""
    if count == 1:
        return {name: alpha}
    return {f"{name}.{j}": alpha[:, j : j + 1] for j in range(count)}
