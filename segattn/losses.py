"""Segmentation losses: cross-entropy + soft Dice, both skipping ignore pixels."""

from __future__ import annotations

import torch.nn.functional as F
from segmentation_models_pytorch.losses import DiceLoss
from torch import Tensor, nn

from segattn.errors import InputError


class CEDiceLoss(nn.Module):
    """ce_weight · CrossEntropy + dice_weight · soft Dice (smp's multiclass DiceLoss).

    logits: float N×K×H×W; target: int64 N×H×W, `ignore_index` pixels count in neither term.
    """

    def __init__(self, ce_weight: float = 1.0, dice_weight: float = 1.0, ignore_index: int = 255) -> None:
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
