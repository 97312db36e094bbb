"""Pad an input to a multiple of the network's stride and crop outputs back.

Both use F.pad (a negative amount crops), so that traced and exported graphs (ONNX,
torch.export with dynamic H and W) pad and crop inputs of every size.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from segattn.models.base import SegmentationNetwork


def pad_to_multiple(x: Tensor, multiple: int, min_size: int = 0) -> Tensor:
    """Zero-pad N×C×H×W on the bottom and right so that H and W are multiples of `multiple`, and
    at least `min_size`.

    Zero is the mean colour after normalisation, so padding adds no edges of its own.
    """
    h, w = x.shape[-2:]
    height, width = round_up(h, multiple), round_up(w, multiple)
    if min_size:  # a plain multiple otherwise: torch.export's shape solver reasons about that form
        height, width = max(height, round_up(min_size, multiple)), max(width, round_up(min_size, multiple))
    return F.pad(x, (0, width - w, 0, height - h))


def round_up(size: int, multiple: int) -> int:
    """The least multiple of `multiple` ≥ size (a form torch.export's shape solver reasons about)."""
    return (size + multiple - 1) // multiple * multiple


def crop(t: Tensor, h: int, w: int) -> Tensor:
    """The top-left h×w of N×C×H'×W' (H' ≥ h, W' ≥ w)."""
    return F.pad(t, (0, w - t.shape[-1], 0, h - t.shape[-2]))


def crop_to_input(t: Tensor, padded_width: int, h: int, w: int) -> Tensor:
    """Crops a map computed on the padded input (at any stride) to the cells covering the original H×W."""
    step = padded_width // t.shape[-1]
    return crop(t, -(-h // step), -(-w // step))


class PadToStride(SegmentationNetwork):
    """Wraps a network that needs H, W divisible by `stride`, and some at least `min_size` (smp
    models, which return logits alone): any H×W works. Declares `output_stride` = stride, no
    attention maps, no deep supervision (see SegmentationNetwork)."""

    def __init__(self, net: nn.Module, stride: int, min_size: int = 0) -> None:
        super().__init__()
        self.net = net
        self.output_stride = stride
        self.min_size = min_size

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        return crop(self.net(pad_to_multiple(x, self.output_stride, self.min_size)), h, w)
