"""The deep-supervision head of AttentionUNet."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class DeepSupervisionHead(nn.Module):
    """The "dsv" of Oktay et al. 2018's code (deep supervision, Lee et al. 2015): a 1×1 conv to K
    classes on every decoder output, each upsampled bilinearly to the input size; the main
    output is a 1×1 conv over their concatenation (K·D → K channels).

    `forward(outputs, size)`: decoder outputs finest first (level i N×widths[i]×h_i×w_i) →
    (fused logits N×K×H×W, [per-scale logits N×K×H×W, finest first]).
    """

    def __init__(self, widths: Sequence[int], num_classes: int) -> None:
        super().__init__()
        self.heads = nn.ModuleList(nn.Conv2d(w, num_classes, 1) for w in widths)
        self.fuse = nn.Conv2d(num_classes * len(widths), num_classes, 1)

    def forward(self, outputs: Sequence[Tensor], size: Sequence[int]) -> tuple[Tensor, list[Tensor]]:
        deep = [
            F.interpolate(head(out), size=size, mode="bilinear", align_corners=False)
            for head, out in zip(self.heads, outputs, strict=True)
        ]
        return self.fuse(torch.cat(deep, dim=1)), deep
