"""Convolutional building blocks shared by the encoder and the decoder, for 2-D and 3-D.

One implementation serves both (MONAI's pattern): a layer is picked by `spatial_dims` (`layer`),
not copied into a 3-D twin. Kernel sizes and strides are an int (every axis) or one per axis.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from segattn.errors import InputError, check_choice
from segattn.models.options import Downsample, Norm

Size = int | tuple[int, ...]  # an int for every axis, or one per spatial axis


def layer(kind: str, spatial_dims: int = 2) -> type[nn.Module]:
    """torch's `kind` layer for `spatial_dims` axes: layer("Conv", 3) is nn.Conv3d."""
    return getattr(nn, f"{kind}{spatial_dims}d")


def interpolation(spatial_dims: int) -> str:
    """The linear interpolation mode of F.interpolate for `spatial_dims` axes."""
    return {1: "linear", 2: "bilinear", 3: "trilinear"}[spatial_dims]


def per_axis(value: Size, spatial_dims: int) -> tuple[int, ...]:
    """`value` as one int per axis."""
    return (value,) * spatial_dims if isinstance(value, int) else tuple(value)


def check_per_axis(key: str, values: Sequence | None, count: int, spatial_dims: int, default: int, odd: bool = False):
    """`count` entries, each a positive int (every axis) or `spatial_dims` of them (odd ones
    where `odd`), as tuples per axis; None gives `default` everywhere. Raises a one-line
    InputError naming `key` otherwise."""
    if values is None:
        return ((default,) * spatial_dims,) * count
    kind = "odd positive" if odd else "positive"
    expected = f"{count} entries (an int or {spatial_dims} ints each, {kind})"
    if isinstance(values, str | int) or len(values) != count:
        raise InputError(f"{key}: expected {expected}, got {values!r}")
    result = []
    for value in values:
        axes = [value] * spatial_dims if isinstance(value, int) else value
        if isinstance(axes, str) or not isinstance(axes, Sequence) or len(axes) != spatial_dims:
            raise InputError(f"{key}: expected {expected}, got {values!r}")
        if not all(isinstance(a, int) and not isinstance(a, bool) and a >= 1 and (a % 2 or not odd) for a in axes):
            raise InputError(f"{key}: expected {expected}, got {values!r}")
        result.append(tuple(axes))
    return tuple(result)


def make_norm(kind: Norm, channels: int, spatial_dims: int = 2) -> nn.Module:
    """A normalisation layer: "batch", "instance" (affine) or "group" (up to 32 groups).

    Group and instance norm do not depend on the batch size, which matters for the small batches
    of medical training.
    """
    check_choice("norm", kind, Norm)
    if kind == "batch":
        return layer("BatchNorm", spatial_dims)(channels)
    if kind == "instance":
        return InstanceNorm(channels)
    groups = next(g for g in (32, 16, 8, 4, 2, 1) if channels % g == 0)
    return nn.GroupNorm(groups, channels)


class InstanceNorm(nn.Module):
    """Instance norm (Ulyanov et al. 2016) with an affine map, for 2-D and 3-D: each channel c of
    each sample normalised over its spatial axes, y = (x − mean) / √(var + ε) · weight[c] + bias[c]
    (biased var, ε = 1e-5); the parameters of nn.InstanceNormNd(affine=True), same names.

    Written here because nn.InstanceNorm3d returns a channels-last input contiguous, so that each
    conv of a channels-last 3-D network paid two layout copies. On the CPU it runs as group norm
    with one channel per group (the same function; PyTorch's CPU kernel keeps channels-last), 6 %
    of a 3-D training step on 2 cores; elsewhere as F.instance_norm (cuDNN), unchanged.
    """

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.num_features, self.eps = channels, eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        if x.device.type == "cpu":
            return F.group_norm(x, self.num_features, self.weight, self.bias, self.eps)
        return F.instance_norm(x, weight=self.weight, bias=self.bias, eps=self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}"


class ConvBlock(nn.Sequential):
    """`convs` (k×k conv → norm → ReLU) layers, k = `kernel_size` (3; odd, per axis or one for
    all): N×C_in×H×W → N×C_out×H/stride×W/stride (and D for 3-D); the first conv carries the stride."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        norm: Norm = "batch",
        stride: Size = 1,
        convs: int = 2,
        kernel_size: Size = 3,
        spatial_dims: int = 2,
    ) -> None:
        layers = []
        padding = tuple(k // 2 for k in per_axis(kernel_size, spatial_dims))
        for i in range(convs):
            layers += [
                layer("Conv", spatial_dims)(
                    in_channels if i == 0 else out_channels,
                    out_channels,
                    kernel_size,
                    stride=stride if i == 0 else 1,
                    padding=padding,
                    bias=False,
                ),
                make_norm(norm, out_channels, spatial_dims),
                nn.ReLU(inplace=True),
            ]
        super().__init__(*layers)


class NativeEncoder(nn.Module):
    """The U-Net contracting path: a ConvBlock per level, a max-pool between levels
    (`downsample="pool"`, Ronneberger et al.) or a strided first conv ("conv", as MONAI's
    AttentionUnet). `strides[i]` (per axis) is the step from level i to i+1 (default 2 on every
    axis), `kernel_sizes[i]` level i's conv kernel (default 3): nnU-Net's anisotropic plans.

    `forward(x)` returns one feature map per level, finest first: level i has `widths[i]`
    channels at `level_strides[i]` (per axis; 2**i with the defaults).
    """

    def __init__(
        self,
        in_channels: int,
        widths: tuple[int, ...],
        norm: Norm = "batch",
        downsample: Downsample = "pool",
        *,
        spatial_dims: int = 2,
        strides: Sequence[Sequence[int]] | None = None,
        kernel_sizes: Sequence[Sequence[int]] | None = None,
    ) -> None:
        super().__init__()
        check_choice("downsample", downsample, Downsample)
        self.out_channels = tuple(widths)
        levels = len(widths)
        self.strides = check_per_axis("strides", strides, levels - 1, spatial_dims, 2)
        self.kernel_sizes = check_per_axis("kernel_sizes", kernel_sizes, levels, spatial_dims, 3, odd=True)
        level_strides = [(1,) * spatial_dims]
        for step in self.strides:
            level_strides.append(tuple(a * s for a, s in zip(level_strides[-1], step, strict=True)))
        self.level_strides = tuple(level_strides)
        chans = (in_channels, *widths)
        strided = downsample == "conv"
        uniform = strides is None  # an int stride: the modules (and their repr) as they always were
        self.stages = nn.ModuleList(
            ConvBlock(
                chans[i],
                chans[i + 1],
                norm,
                stride=self.step(i, uniform) if strided and i > 0 else 1,
                kernel_size=self.kernel_sizes[i],
                spatial_dims=spatial_dims,
            )
            for i in range(levels)
        )
        pool = layer("MaxPool", spatial_dims)
        self.pools = nn.ModuleList(nn.Identity() if strided else pool(self.step(i, uniform)) for i in range(1, levels))

    def step(self, level: int, uniform: bool) -> Size:
        """The stride into `level` (≥ 1): 2 with the default strides, per axis otherwise."""
        return 2 if uniform else self.strides[level - 1]

    @property
    def output_stride(self) -> Size:
        """The stride of the coarsest level: an int where every axis has the same."""
        last = self.level_strides[-1]
        return last[0] if len(set(last)) == 1 else last

    def forward(self, x: Tensor) -> list[Tensor]:
        features = []
        for i, stage in enumerate(self.stages):
            x = stage(x if i == 0 else self.pools[i - 1](x))
            features.append(x)
        return features
