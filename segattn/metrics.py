"""SegMetrics: a confusion-matrix evaluator for semantic segmentation (a torchmetrics Metric).

Definitions (dataset-level, the MMSegmentation convention): every pixel of the split whose
target is not `ignore_index` is counted once into a K×K confusion matrix C (rows = truth,
columns = prediction). Per class c, with TP = C[c, c], FP = column sum − TP, FN = row sum − TP:

    IoU_c  = TP / (TP + FP + FN)      Dice_c = 2 TP / (2 TP + FP + FN)
    Acc_c  = TP / (TP + FN)           (per-class recall)
    aAcc   = Σ TP / Σ C               fwIoU  = Σ_c freq_c · IoU_c,  freq_c = row sum / Σ C

A class whose denominator is 0 (absent from both truth and prediction, or for Acc absent from
the truth) is NaN and left out of the means: mIoU, mDice and mAcc are NaN-means.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric

from segattn.errors import InputError


def confusion_matrix(preds: Tensor, target: Tensor, num_classes: int, ignore_index: int | None = 255) -> Tensor:
    """K×K int64 confusion matrix (rows = truth, columns = prediction) of one batch.

    preds: logits N×K×H×W (argmax is taken) or labels N×H×W; target: labels N×H×W.
    Pixels whose target is `ignore_index` are not counted. One `bincount` on the inputs' device;
    ignored pixels go to an extra bin that is dropped, so no boolean gather is needed.
    """
    if preds.ndim == target.ndim + 1:
        preds = preds.argmax(dim=1)
    if preds.shape != target.shape:
        raise InputError(f"preds {tuple(preds.shape)} and target {tuple(target.shape)} differ in shape")
    preds, target = preds.long(), target.long()
    k = num_classes
    valid = target != ignore_index if ignore_index is not None else torch.ones_like(target, dtype=torch.bool)
    scored = torch.where(valid, target, 0)
    out_of_range = (scored < 0) | (scored >= k) | (preds < 0) | (preds >= k)
    if out_of_range.any():  # the one host sync; the message is built only on this error path
        raise InputError(range_message(preds, scored, valid, k, ignore_index))
    index = torch.where(valid, target * k + preds, k * k)
    return torch.bincount(index.flatten(), minlength=k * k + 1)[: k * k].reshape(k, k)


def range_message(preds: Tensor, target: Tensor, valid: Tensor, k: int, ignore_index: int | None) -> str:
    bad_target = target[valid & ((target < 0) | (target >= k))]
    if bad_target.numel():
        return (
            f"target: label {int(bad_target[0])} is outside the classes 0..{k - 1} "
            f"and is not ignore_index ({ignore_index})"
        )
    bad_pred = preds[(preds < 0) | (preds >= k)]
    return f"preds: label {int(bad_pred[0])} is outside the classes 0..{k - 1}"


def scores(confmat: Tensor) -> dict[str, Tensor]:
    """All scores from a K×K confusion matrix (rows = truth): per-class tensors of length K
    ("IoU", "Dice", "Acc") and scalars ("mIoU", "mDice", "mAcc", "aAcc", "fwIoU"); float64."""
    cm = confmat.double()
    tp = cm.diagonal()
    truth, predicted = cm.sum(dim=1), cm.sum(dim=0)
    total = cm.sum()
    iou = tp / (truth + predicted - tp)  # 0/0 → NaN for absent classes
    dice = 2 * tp / (truth + predicted)
    acc = tp / truth
    freq = truth / total
    return {
        "IoU": iou,
        "Dice": dice,
        "Acc": acc,
        "mIoU": iou.nanmean(),
        "mDice": dice.nanmean(),
        "mAcc": acc.nanmean(),
        "aAcc": tp.sum() / total,
        "fwIoU": torch.where(truth > 0, freq * iou, 0).sum() if total > 0 else torch.full_like(total, torch.nan),
    }


def segmentation_scores(
    preds: Tensor, target: Tensor, num_classes: int, ignore_index: int | None = 255
) -> dict[str, Tensor]:
    """Functional twin of SegMetrics for one-off use on one set of predictions."""
    return scores(confusion_matrix(preds, target, num_classes, ignore_index))


class SegMetrics(Metric):
    """Dataset-level segmentation scores accumulated over batches (see the module docstring).

    `update(preds, target)`: preds logits N×K×H×W or labels N×H×W, target int N×H×W with
    `ignore_index` for pixels not scored. `compute()` → the dict of `scores`. The confusion
    matrix is a summed state, so under DDP it is summed across processes.
    """

    full_state_update = False
    is_differentiable = False
    higher_is_better = True

    def __init__(self, num_classes: int, ignore_index: int | None = 255, **kwargs) -> None:
        super().__init__(**kwargs)
        if num_classes < 1:
            raise InputError(f"num_classes: expected a positive number, got {num_classes}")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.add_state("confmat", torch.zeros(num_classes, num_classes, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, preds: Tensor, target: Tensor) -> None:
        self.confmat += confusion_matrix(preds, target, self.num_classes, self.ignore_index)

    def compute(self) -> dict[str, Tensor]:
        return scores(self.confmat)
