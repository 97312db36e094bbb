"""Segmentation losses: cross-entropy + soft Dice, both skipping ignore pixels, and
deep-supervision weighting over per-scale outputs."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch.nn.functional as F
from segmentation_models_pytorch.losses import DiceLoss
from torch import Tensor, nn

from segattn.errors import InputError
from segattn.labels import IGNORE_INDEX


class CEDiceLoss(nn.Module):
    """ce_weight · CrossEntropy + dice_weight · soft Dice (smp's multiclass DiceLoss).

    logits: float N×K×H×W; target: int64 N×H×W, `ignore_index` pixels count in neither term.
    """

    def __init__(self, ce_weight: float = 1.0, dice_weight: float = 1.0, ignore_index: int = IGNORE_INDEX) -> None:
        super().__init__()
        if ce_weight < 0 or dice_weight < 0 or ce_weight + dice_weight == 0:
            raise InputError(f"loss weights: expected ≥ 0 and not both 0, got ce={ce_weight}, dice={dice_weight}")
        self.ce_weight, self.dice_weight = ce_weight, dice_weight
        self.ignore_index = ignore_index
        self.dice = DiceLoss(mode="multiclass", from_logits=True, ignore_index=ignore_index)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        loss = logits.new_zeros(())
        if self.ce_weight:
            # Mean over scored pixels; an all-ignore batch gives 0, not nn.CrossEntropyLoss's NaN.
            scored = (target != self.ignore_index).sum().clamp(min=1)
            ce = F.cross_entropy(logits, target, ignore_index=self.ignore_index, reduction="sum") / scored
            loss = loss + self.ce_weight * ce
        if self.dice_weight:
            loss = loss + self.dice_weight * self.dice(logits, target)
        return loss


class DeepSupervisionLoss(nn.Module):
    """Deep supervision (Lee et al. 2015) over AttentionUNet's per-scale outputs: a weighted mean
    of `base_loss` on the main output and on every per-scale output,

        L = (base(logits) + Σ_s w_s · base(deep_s)) / (1 + Σ_s w_s)

    so that it stays on the scale of `base_loss` alone. deep_s is the output of decoder level s
    (stride 2**s), upsampled to the target's size, finest first; the main output weighs 1.

    weights: "halving" (w_s = 2^-s: 1 for the finest scale, halved per coarser scale), a list
    with one w_s ≥ 0 per scale, finest first, or None (every w_s = 1).

    `forward(logits, deep, target)`: logits and each deep_s float N×K×H×W, target int64 N×H×W
    → scalar loss.
    """

    def __init__(self, base_loss: nn.Module, weights: str | Sequence[float] | None = "halving") -> None:
        super().__init__()
        if isinstance(weights, str) and weights != "halving":
            raise InputError(f"deep_supervision_weights: unknown value {weights!r}; expected 'halving' or a list")
        if weights is not None and not isinstance(weights, str):
            weights = [float(w) for w in weights]
            if any(not math.isfinite(w) or w < 0 for w in weights):
                raise InputError(f"deep_supervision_weights: expected finite weights ≥ 0, got {weights}")
        self.base = base_loss
        self.weights = weights

    def scale_weights(self, count: int) -> list[float]:
        """w_s for `count` per-scale outputs, finest first."""
        if self.weights is None:
            return [1.0] * count
        if self.weights == "halving":
            return [0.5**s for s in range(count)]
        if len(self.weights) != count:
            raise InputError(
                f"deep_supervision_weights: {len(self.weights)} weight(s) for {count} deep-supervision outputs"
            )
        return list(self.weights)

    def forward(self, logits: Tensor, deep: Sequence[Tensor], target: Tensor) -> Tensor:
        weights = self.scale_weights(len(deep))
        total = self.base(logits, target)
        for weight, scale_logits in zip(weights, deep, strict=True):
            total = total + weight * self.base(scale_logits, target)
        return total / (1 + sum(weights))
