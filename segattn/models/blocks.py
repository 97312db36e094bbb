"""Convolutional building blocks shared by the encoder and the decoder."""

from __future__ import annotations

from torch import Tensor, nn

from segattn.errors import check_choice
from segattn.models.options import Downsample, Norm


def make_norm(kind: Norm, channels: int) -> nn.Module:
    """A 2-D normalisation layer: "batch", "instance" (affine) or "group" (up to 32 groups).

    Group and instance norm do not depend on the batch size, which matters for the small batches
    of medical training.
    """
    check_choice("norm", kind, Norm)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    groups = next(g for g in (32, 16, 8, 4, 2, 1) if channels % g == 0)
    return nn.GroupNorm(groups, channels)


class ConvBlock(nn.Sequential):
    """`convs` (3×3 conv → norm → ReLU) layers: N×C_in×H×W → N×C_out×H/stride×W/stride; the
    first conv carries the stride."""

    def __init__(
        self, in_channels: int, out_channels: int, norm: Norm = "batch", stride: int = 1, convs: int = 2
    ) -> None:
        layers = []
        for i in range(convs):
            layers += [
                nn.Conv2d(
                    in_channels if i == 0 else out_channels,
                    out_channels,
                    3,
                    stride=stride if i == 0 else 1,
                    padding=1,
                    bias=False,
                ),
                make_norm(norm, out_channels),
                nn.ReLU(inplace=True),
            ]
        super().__init__(*layers)


class NativeEncoder(nn.Module):
    """The U-Net contracting path: a ConvBlock per level, a 2×2 max-pool between levels
    (`downsample="pool"`, Ronneberger et al.) or a stride-2 first conv ("conv", as MONAI's
    AttentionUnet).

    `forward(x)` returns one feature map per level, finest first: level i has `widths[i]`
    channels at stride 2**i.
    """

    def __init__(
        self, in_channels: int, widths: tuple[int, ...], norm: Norm = "batch", downsample: Downsample = "pool"
    ) -> None:
        super().__init__()
        check_choice("downsample", downsample, Downsample)
        self.out_channels = tuple(widths)
        chans = (in_channels, *widths)
        strided = downsample == "conv"
        self.stages = nn.ModuleList(
            ConvBlock(chans[i], chans[i + 1], norm, stride=2 if strided and i > 0 else 1) for i in range(len(widths))
        )
        self.pool = nn.Identity() if strided else nn.MaxPool2d(2)

    @property
    def output_stride(self) -> int:
        return 2 ** (len(self.stages) - 1)

    def forward(self, x: Tensor) -> list[Tensor]:
        features = []
        for i, stage in enumerate(self.stages):
            x = stage(x if i == 0 else self.pool(x))
            features.append(x)
        return features
