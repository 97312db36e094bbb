"""Pad an input to a multiple of the network's stride and crop outputs back, over the last two
(H, W) or three (D, H, W) axes.

Both use F.pad (a negative amount crops), so that traced and exported graphs (ONNX,
torch.export with dynamic H and W) pad and crop inputs of every size.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from segattn.models.base import SegmentationNetwork
from segattn.models.blocks import Size, per_axis


def pad_to_multiple(x: Tensor, multiple: Size, min_size: int = 0) -> Tensor:
    """Zero-pad N×C×H×W (or N×C×D×H×W) at the end of each spatial axis so that its size is a
    multiple of `multiple` (an int for every axis, or one per axis), and at least `min_size`.

    Zero is the mean colour after normalisation, so padding adds no edges of its own.
    """
    sizes = x.shape[2:]
    targets = [round_up(s, m) for s, m in zip(sizes, per_axis(multiple, len(sizes)), strict=True)]
    if min_size:  # a plain multiple otherwise: torch.export's shape solver reasons about that form
        targets = [max(t, round_up(min_size, m)) for t, m in zip(targets, per_axis(multiple, len(sizes)), strict=True)]
    return F.pad(x, end_pads(sizes, targets))


def end_pads(sizes: Sequence[int], targets: Sequence[int]) -> list[int]:
    """F.pad's amounts (last axis first) taking each axis from `sizes` to `targets` at its end."""
    pads: list[int] = []
    for size, target in zip(reversed(sizes), reversed(targets), strict=True):
        pads += [0, target - size]
    return pads


def round_up(size: int, multiple: int) -> int:
    """The least multiple of `multiple` ≥ size (a form torch.export's shape solver reasons about)."""
    return (size + multiple - 1) // multiple * multiple


def crop(t: Tensor, *sizes: int) -> Tensor:
    """The leading corner of the last len(sizes) axes: crop(t, h, w) is the top-left h×w of
    N×C×H'×W' (H' ≥ h, W' ≥ w); crop(t, d, h, w) likewise in 3-D."""
    return F.pad(t, end_pads(t.shape[t.ndim - len(sizes) :], sizes))


def crop_to_input(t: Tensor, padded: Sequence[int], sizes: Sequence[int]) -> Tensor:
    """Crops a map computed on the padded input (spatial shape `padded`, at any stride per axis)
    to the cells covering the original `sizes`."""
    steps = [p // c for p, c in zip(padded, t.shape[2:], strict=True)]
    return crop(t, *(-(-s // step) for s, step in zip(sizes, steps, strict=True)))


class PadToStride(SegmentationNetwork):
    """Wraps a network that needs each spatial side divisible by `stride`, and some at least
    `min_size` (smp models, or MONAI's 3-D networks, which return logits alone): any H×W (D×H×W)
    works. Declares `output_stride` = stride, no attention maps, no deep supervision, and
    `spatial_dims` (2 by default; 3 for a volume network) (see SegmentationNetwork). Pads and crops
    every axis after N×C, whichever `spatial_dims` says."""

    def __init__(self, net: nn.Module, stride: int, min_size: int = 0, spatial_dims: int = 2) -> None:
        super().__init__()
        self.net = net
        self.output_stride = stride
        self.min_size = min_size
        self.spatial_dims = spatial_dims

    def forward(self, x: Tensor) -> Tensor:
        return crop(self.net(pad_to_multiple(x, self.output_stride, self.min_size)), *x.shape[2:])
