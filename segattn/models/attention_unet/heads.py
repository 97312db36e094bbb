"""The deep-supervision head of AttentionUNet."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from segattn.models.blocks import interpolation, layer


class DeepSupervisionHead(nn.Module):
    """The "dsv" of Oktay et al. 2018's code (deep supervision, Lee et al. 2015): a 1×1 conv to K
    classes on every decoder output, each upsampled bilinearly to the input size; the main
    output is a 1×1 conv over their concatenation (K·D → K channels).

    `forward(outputs, size)`: decoder outputs finest first (level i N×widths[i]×h_i×w_i) →
    (fused logits N×K×H×W, [per-scale logits N×K×H×W, finest first]); D×H×W and trilinear
    upsampling with `spatial_dims` 3.
    """

    def __init__(self, widths: Sequence[int], num_classes: int, spatial_dims: int = 2) -> None:
        super().__init__()
        conv = layer("Conv", spatial_dims)
        self.heads = nn.ModuleList(conv(w, num_classes, 1) for w in widths)
        self.fuse = conv(num_classes * len(widths), num_classes, 1)
        self.mode = interpolation(spatial_dims)

    def forward(self, outputs: Sequence[Tensor], size: Sequence[int]) -> tuple[Tensor, list[Tensor]]:
        deep = [
            F.interpolate(head(out), size=size, mode=self.mode, align_corners=False)
            for head, out in zip(self.heads, outputs, strict=True)
        ]
        return self.fuse(torch.cat(deep, dim=1)), deep
