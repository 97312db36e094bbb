"""Learned attention across input scales (Tao et al. 2020, "Hierarchical Multi-Scale Attention
for Semantic Segmentation"), around any segmentation network."""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from segattn.errors import InputError
from segattn.models.base import SegmentationNetwork, returns_attention


class MultiScaleAttention(SegmentationNetwork):
    """Runs `net` on the input resized by each scale and merges the predictions hierarchically
    with a learned per-pixel attention (Tao et al. 2020, sec. 3, eq. 1 and the n-scale chaining):

    scales sorted from largest to smallest, s_0 > s_1 > …; L_s = net(resize(x, s)) resized to H×W;
        P ← L_{s_0};  then for each smaller s:  P ← U(α_s ⊙ L_s) + (1 − U(α_s)) ⊙ P
    α_s float N×1 in [0, 1] is predicted at scale s by a small head on that scale's logits
    (3×3 conv K → `head_channels`, ReLU, 1×1 conv → 1, sigmoid); U resizes bilinearly to H×W.
    With scales (0.5, 1) this is the paper's two-scale training: L = U(α·L_0.5) + (1 − U(α))·L_1.

    `train_scales` are used in train mode (two, as in the paper, keep training cheap) and
    `infer_scales` in eval mode (e.g. 0.5, 1, 2: the chained hierarchy). Each scale s runs `net`
    on a round(H·s)×round(W·s) input, so any H×W works if `net` takes any size.

    `forward(x)`: float N×C×H×W → logits N×K×H×W. `forward(x, return_attention=True)` →
    (logits, maps): "scale{s:g}": α_s N×1×H×W for every scale but the largest, and, when `net`
    has attention gates, "scale{s:g}/{gate}": that gate's α at scale s (N×1×h×w, its own grid)
    for every scale.

    Declares (see SegmentationNetwork): returns_attention (always: the scale maps), no deep
    supervision, and `net`'s output_stride (`net` pads each scale's input to it).
    """

    returns_attention = True

    def __init__(
        self,
        net: nn.Module,
        num_classes: int,
        *,
        train_scales: Sequence[float] = (0.5, 1.0),
        infer_scales: Sequence[float] = (0.5, 1.0, 2.0),
        head_channels: int = 16,
    ) -> None:
        super().__init__()
        self.net = net
        self.train_scales = check_scales("multiscale.train_scales", train_scales)
        self.infer_scales = check_scales("multiscale.infer_scales", infer_scales)
        self.attention = nn.Sequential(
            nn.Conv2d(num_classes, head_channels, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(head_channels, 1, 1),
            nn.Sigmoid(),
        )
        self.num_classes = num_classes
        self.output_stride = getattr(net, "output_stride", 1)

    def forward(self, x: Tensor, return_attention: bool = False) -> Tensor | tuple[Tensor, dict[str, Tensor]]:
        size = x.shape[-2:]
        scales = self.train_scales if self.training else self.infer_scales
        maps: dict[str, Tensor] = {}
        gated = return_attention and returns_attention(self.net)

        def logits_at(scale: float) -> Tensor:
            if not gated:
                return self.net(rescale(x, scale))
            logits, gates = self.net(rescale(x, scale), return_attention=True)
            maps.update({f"scale{scale:g}/{name}": alpha for name, alpha in gates.items()})
            return logits

        merged = resize(logits_at(scales[0]), size)
        for scale in scales[1:]:
            logits = logits_at(scale)
            alpha = self.attention(logits)
            weighted = resize(alpha * logits, size)
            maps[f"scale{scale:g}"] = alpha = resize(alpha, size)
            merged = weighted + (1 - alpha) * merged
        return (merged, maps) if return_attention else merged


def check_scales(key: str, scales: Sequence[float]) -> tuple[float, ...]:
    """Distinct positive scales, largest first."""
    values = sorted((float(s) for s in scales), reverse=True)
    if not values or values[-1] <= 0 or len(set(values)) != len(values):
        raise InputError(f"{key}: expected distinct positive scales, got {list(scales)}")
    return tuple(values)


def rescale(x: Tensor, scale: float) -> Tensor:
    """x resized by `scale` (bilinear) to round(H·scale)×round(W·scale), at least 1×1."""
    if scale == 1.0:
        return x
    h, w = x.shape[-2:]
    return resize(x, (max(round(h * scale), 1), max(round(w * scale), 1)))


def resize(x: Tensor, size: Sequence[int]) -> Tensor:
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)
