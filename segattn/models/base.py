"""What a segmentation network can do, declared as attributes (smp's capability flags, such as
`requires_divisible_input_shape`, are the model): code asks these, not `forward`'s signature."""

from __future__ import annotations

from torch import nn


class SegmentationNetwork(nn.Module):
    """The base of every network segattn builds: `forward(x)`, x float N×C×H×W of any H×W →
    logits float N×K×H×W (N×C×D×H×W → N×K×D×H×W where spatial_dims is 3). Its capabilities,
    as class or instance attributes:

    spatial_dims: 2 (images) or 3 (volumes); every smp network is 2.
    returns_attention: `forward(x, return_attention=True)` gives (logits, {name: α float
        N×1×h×w in [0, 1]}), each map on a grid that covers the input (h = ⌈H/s⌉, w = ⌈W/s⌉ for
        some s ≥ 1, s = 1 included; N×1×d×h×w in 3-D, s per axis); the dict may be empty (a
        network built without gates). False: forward takes no such argument.
    deep_supervision: `forward(x, return_deep=True)` gives (logits, [per-scale logits float
        N×K×H×W, finest first]); with return_attention too, (logits, maps, deep).
    output_stride: each spatial axis is padded inside the network to a multiple of this (and
        the outputs cropped back): an input whose sides are multiples needs no padding. 1: no
        padding. An int where every axis has the same stride (always in 2-D), else a tuple
        per spatial axis (D, H, W: anisotropic 3-D strides); `stride_per_axis` reads both.
    """

    spatial_dims: int = 2
    returns_attention: bool = False
    deep_supervision: bool = False
    output_stride: int | tuple[int, ...] = 1


def returns_attention(net: nn.Module) -> bool:
    """Whether `net` declares attention maps; a network that declares nothing (another
    library's module, say) has none."""
    return bool(getattr(net, "returns_attention", False))


def deep_supervision(net: nn.Module) -> bool:
    """Whether `net` declares deep-supervision outputs; one that declares nothing has none."""
    return bool(getattr(net, "deep_supervision", False))


def stride_per_axis(net: nn.Module) -> tuple[int, ...]:
    """`net`'s output_stride as one int per spatial axis (1 for a network that declares none)."""
    stride = getattr(net, "output_stride", 1)
    return (stride,) * getattr(net, "spatial_dims", 2) if isinstance(stride, int) else tuple(stride)
