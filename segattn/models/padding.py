"""Pad an input to a multiple of the network's stride and crop the output back."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


def pad_to_multiple(x: Tensor, multiple: int) -> Tensor:
    """Zero-pad N×C×H×W on the bottom and right so that H and W are multiples of `multiple`.

    Zero is the mean colour after normalisation, so padding adds no edges of its own.
    """
    h, w = x.shape[-2:]
    pad_h, pad_w = -h % multiple, -w % multiple
    if pad_h == 0 and pad_w == 0:
        return x
    return F.pad(x, (0, pad_w, 0, pad_h))


class PadToStride(nn.Module):
    """Wraps a network that needs H, W divisible by `stride` (smp models): any H×W works."""

    def __init__(self, net: nn.Module, stride: int) -> None:
        super().__init__()
        self.net = net
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        return self.net(pad_to_multiple(x, self.stride))[..., :h, :w]
