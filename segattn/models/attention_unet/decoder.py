"""The expanding path of AttentionUNet: attention-gated skips, decoder blocks with optional
channel and spatial attention."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from segattn.models.attention import channel_attention, spatial_attention
from segattn.models.blocks import ConvBlock, Size, interpolation, layer, make_norm
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
        kernel_size: Size = 3,
        spatial_dims: int = 2,
    ) -> None:
        super().__init__(
            ConvBlock(in_channels, out_channels, norm, convs=convs, kernel_size=kernel_size, spatial_dims=spatial_dims),
            channel_attention(channel, out_channels, spatial_dims),
            spatial_attention(spatial, spatial_dims),
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

    `spatial_dims` 3 does the same on N×C×D×H×W features (trilinear upsampling). `steps[i]` is
    the stride per axis from level i to i+1 (default 2 on every axis): the transposed
    up-convolution takes it, and the gate at level i sub-samples θ by `sub_sample` only along
    the axes that step (θ's grid stays the gating grid's on an axis that is not downsampled,
    nnU-Net's (1, 2, 2) first stride). `kernel_sizes[i]` is the conv kernel of decoder level i.
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
        spatial_dims: int = 2,
        steps: Sequence[Sequence[int]] | None = None,
        kernel_sizes: Sequence[Size] | None = None,
    ) -> None:
        super().__init__()
        self.skip_channels = tuple(skip_channels)
        self.gating = gating
        self.gates_per_skip = gates_per_skip
        self.mode = interpolation(spatial_dims)
        above = (*widths[1:], bottleneck_channels)  # channels of the output that level i upsamples
        levels = range(len(widths))
        steps = steps or [(2,) * spatial_dims] * len(widths)
        kernel_sizes = kernel_sizes or [3] * len(widths)
        self.reduce = nn.ModuleList(
            up_path(upsample, above[i], widths[i], norm, steps[i], spatial_dims) for i in levels
        )
        upsampled = above if upsample == "full" else widths
        self.blocks = nn.ModuleList(
            DecoderBlock(
                self.skip_channels[i] + upsampled[i],
                widths[i],
                norm=norm,
                channel=channel,
                spatial=spatial,
                convs=convs,
                kernel_size=kernel_sizes[i],
                spatial_dims=spatial_dims,
            )
            for i in levels
        )
        finest = min((i for i in levels if self.skip_channels[i] > 0), default=len(widths))
        self.gated_levels = tuple(
            i for i in levels if gates and self.skip_channels[i] > 0 and (i > finest or gate_finest)
        )
        # θ's stride per axis at each level: `sub_sample` along the axes that the level steps down
        self.theta_strides = tuple(tuple(sub_sample if s > 1 else 1 for s in steps[i]) for i in levels)
        theta = [t[0] if len(set(t)) == 1 else t for t in self.theta_strides]  # an int where isotropic
        self.gates = nn.ModuleDict(
            {
                f"gate{i}": make_gate(
                    gates_per_skip,
                    self.skip_channels[i],
                    self.gating_channels(i, above),
                    theta[i],
                    norm,
                    gate_transform,
                    spatial_dims,
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
            if x.shape[2:] != skip.shape[2:]:
                x = F.interpolate(x, size=skip.shape[2:], mode=self.mode, align_corners=False)
            x = self.blocks[i](torch.cat([skip, x], dim=1) if self.skip_channels[i] else x)
            coarser.append(x)
        return coarser[:0:-1], maps  # the decoder outputs, finest first


def up_path(
    upsample: Upsample, in_channels: int, out_channels: int, norm: Norm, step: Sequence[int], spatial_dims: int = 2
) -> nn.Module:
    """What a decoder level applies to the coarser output before it is resized to the skip:
    "reduce": a 1×1 conv + norm + ReLU to `out_channels` at the coarse resolution (the U-Net's
    channel-halving up-convolution, cheap there), then bilinear (trilinear) upsampling; "full":
    nothing, all channels are upsampled, as in Oktay et al.'s reference code (UnetUp: upsample,
    concatenate, conv); "transposed": a 3×3 stride-2 transposed conv + norm + ReLU to
    `out_channels`, which already doubles the size (MONAI's UpConv); per axis of `step`, the
    stride into the finer level: 3 wide for a stride of 1 or 2, as wide as the stride above.
    """
    if upsample == "full":
        return nn.Identity()
    if upsample == "reduce":
        conv = layer("Conv", spatial_dims)(in_channels, out_channels, 1, bias=False)
    else:
        conv = layer("ConvTranspose", spatial_dims)(
            in_channels,
            out_channels,
            tuple(3 if s <= 2 else s for s in step),
            stride=tuple(step),
            padding=tuple(1 if s <= 2 else 0 for s in step),
            output_padding=tuple(1 if s == 2 else 0 for s in step),
            bias=False,
        )
    return nn.Sequential(conv, make_norm(norm, out_channels, spatial_dims), nn.ReLU(inplace=True))


def make_gate(
    count: int,
    skip_channels: int,
    gating_channels: list[int],
    sub_sample: Size,
    norm: Norm,
    transform: bool,
    spatial_dims: int = 2,
) -> nn.Module:
    """An AttentionGate, or a MultiAttentionGate of `count` gates."""
    options = {"sub_sample": sub_sample, "norm": norm, "transform": transform, "spatial_dims": spatial_dims}
    if count == 1:
        return AttentionGate(skip_channels, gating_channels, **options)
    return MultiAttentionGate(count, skip_channels, gating_channels, **options)


def name_maps(name: str, alpha: Tensor, count: int) -> dict[str, Tensor]:
    """{"gate2": α} for one gate; {"gate2.0": α[:, :1], "gate2.1": α[:, 1:2], …} for several."""
    if count == 1:
        return {name: alpha}
    return {f"{name}.{j}": alpha[:, j : j + 1] for j in range(count)}
