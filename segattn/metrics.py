"""SegMetrics: the segmentation evaluator (a torchmetrics Metric), and its functional twin.

One definition, every choice a named option. Pixels whose target is `ignore_index` are not
counted. With C the K×K confusion matrix (rows = truth, columns = prediction), per class c:
TP = C[c, c], FP = column sum − TP, FN = row sum − TP, and

    IoU_c = TP / (TP + FP + FN)        Dice_c = 2 TP / (2 TP + FP + FN)
    Precision_c = TP / (TP + FP)       Recall_c = Acc_c = TP / (TP + FN)   (MMSegmentation's "Acc")
    aAcc = Σ TP / Σ C                  fwIoU = Σ_c (row sum_c / Σ C) · IoU_c

Volumes work the same way, voxel for voxel: logits N×K×D×H×W (or labels N×D×H×W) against a
target N×D×H×W; every dimension after the class axis is spatial.

averaging="dataset" (default; MMSegmentation's convention): C is summed over every pixel (voxel)
of the split, then scored. averaging="image": each image (each volume, item n of the batch axis)
is scored from its own C; a per-class score is the mean over the images where it is defined, and
mIoU (mDice, ...) the mean over images of each image's own class mean. averaging="case" is the
same option under its name for volumes: one score per case (volume), then the mean.

A class absent from both truth and prediction has IoU = Dice = 0/0: with absent="nan" (default)
it is NaN and left out of the means (nanmean), with "one" it scores 1, with "zero" 0. Other 0/0
ratios (the precision of a class never predicted, the recall of a class never present) stay NaN.
The absent rule applies to a confusion matrix that holds pixels: when nothing was scored (Σ C =
0: every target pixel was ignore_index, or no update was made) every score is NaN, whatever
`absent`, and `compute()` warns. With averaging="image", such an image's scores are NaN, so it is
left out of the image means rather than counted as a perfect (or zero) image.
include_background=False leaves class 0 out of the means (it is still reported per class).
reduce_zero_label=True (MMSegmentation's option for sets whose label 0 is "other"): target 0
becomes ignore and every other target label is lowered by one.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities import rank_zero_warn

from segattn.errors import InputError, check_choice
from segattn.labels import IGNORE_INDEX

Averaging = Literal["dataset", "image", "case"]  # "case" = "image", named for volumes
Absent = Literal["nan", "one", "zero"]
PER_CLASS = ("IoU", "Dice", "Precision", "Recall", "Acc")
MEANS = ("mIoU", "mDice", "mPrecision", "mRecall", "mAcc", "aAcc", "fwIoU")


def confusion_matrix(
    preds: Tensor,
    target: Tensor,
    num_classes: int,
    ignore_index: int | None = IGNORE_INDEX,
    reduce_zero_label: bool = False,
    per_image: bool = False,
) -> Tensor:
    """Confusion matrix, int64 K×K (rows = truth, columns = prediction), or N×K×K per image.

    preds: logits N×K×H×W (argmax is taken) or labels N×H×W; target: labels N×H×W; volumes
    likewise with one more axis (N×K×D×H×W or N×D×H×W against N×D×H×W).
    One pass to form t·K + p and one `bincount`, on the inputs' device: an ignored target
    (≥ K) lands in bins past K·K that are checked and dropped, so no boolean gather is needed;
    predictions are range-checked by one aminmax.
    A label outside the classes, logits with another class count than K or a NaN or infinite
    value (one isfinite pass), or float labels are an InputError naming them.
    """
    check_ignore_index(ignore_index, num_classes)
    if target.is_floating_point() or target.is_complex():
        raise InputError(f"target: expected integer labels, got {target.dtype}")
    if preds.ndim == target.ndim + 1:
        if preds.shape[1] != num_classes:
            raise InputError(
                f"preds: logits {tuple(preds.shape)} hold {preds.shape[1]} classes, expected {num_classes}"
            )
        if preds.is_floating_point() and not torch.isfinite(preds).all():  # argmax would score NaN as a class
            bad = int((~torch.isfinite(preds)).sum())
            raise InputError(
                f"preds: {bad} of {preds.numel()} logits {tuple(preds.shape)} are NaN or infinite; "
                "expected finite network outputs"
            )
        preds = preds.argmax(dim=1)
    elif preds.is_floating_point() or preds.is_complex():
        raise InputError(
            f"preds {tuple(preds.shape)} {preds.dtype}: expected logits N×K×H×W for a target N×H×W, or integer "
            f"labels of the target's shape; target is {tuple(target.shape)}"
        )
    if preds.shape != target.shape:
        raise InputError(f"preds {tuple(preds.shape)} and target {tuple(target.shape)} differ in shape")
    k = num_classes
    target = target.long()
    if reduce_zero_label:
        target = torch.where(target == 0, ignore_index if ignore_index is not None else -1, target - 1)
        if ignore_index is not None:
            target = torch.where(target == ignore_index - 1, ignore_index, target)
    preds = preds.long()
    p_min, p_max = torch.aminmax(preds)
    if p_min < 0 or p_max >= k:  # a prediction ≥ K would alias into the next row's bins
        raise InputError(range_message(preds, target, k, ignore_index))
    index = torch.add(preds, target, alpha=k)  # target row t fills bins t·K … t·K + K − 1
    images = len(target) if per_image else 1
    if per_image:  # one block of bins per image, each large enough for every target row present
        t_min, t_max = torch.aminmax(target)
        if t_min < 0:
            raise InputError(range_message(preds, target, k, ignore_index))
        block = max(int(t_max) + 1, k) * k
        offsets = torch.arange(images, device=target.device).view(-1, *([1] * (target.ndim - 1)))
        index = index + offsets * block
    try:
        counts = torch.bincount(index.view(-1), minlength=images * k * k)
    except RuntimeError as exc:  # a negative index: a negative target label
        raise InputError(range_message(preds, target, k, ignore_index)) from exc
    counts = F.pad(counts, (0, -len(counts) % (images * k))).view(images, -1)
    stray = counts[:, k * k :]  # rows of target labels ≥ K: only the ignore row may hold pixels
    if ignore_index is not None and (ignore_index + 1) * k <= counts.shape[1]:
        stray = torch.cat([stray[:, : (ignore_index - k) * k], stray[:, (ignore_index - k + 1) * k :]], dim=1)
    if stray.numel() and stray.any():
        raise InputError(range_message(preds, target, k, ignore_index))
    matrices = counts[:, : k * k].reshape(-1, k, k)
    return matrices if per_image else matrices[0]


def check_ignore_index(ignore_index: int | None, num_classes: int) -> None:
    """ignore_index must be None or a label past the classes (the bins past K·K hold it)."""
    if ignore_index is None or ignore_index >= num_classes:
        return
    if ignore_index >= 0:
        raise InputError(f"ignore_index {ignore_index} is a class index (0..{num_classes - 1}); it must lie outside")
    raise InputError(
        f"ignore_index {ignore_index}: expected None or a label ≥ num_classes ({num_classes}), e.g. 255; "
        f"map ignored pixels there first (target.masked_fill(target == {ignore_index}, 255))"
    )


def range_message(preds: Tensor, target: Tensor, k: int, ignore_index: int | None) -> str:
    """Names the first label outside 0..K−1 (built only on the error path)."""
    bad_target = target[((target < 0) | (target >= k)) & (target != ignore_index)]
    if bad_target.numel():
        label = int(bad_target[0])
        return f"target: label {label} is outside the classes 0..{k - 1} and is not ignore_index ({ignore_index})"
    bad_pred = preds[(preds < 0) | (preds >= k)]
    return f"preds: label {int(bad_pred[0])} is outside the classes 0..{k - 1}"


def scores(confmat: Tensor, absent: Absent = "nan", include_background: bool = True) -> dict[str, Tensor]:
    """Scores from a K×K confusion matrix (or a stack …×K×K): per-class tensors (…×K) under
    PER_CLASS names and class means / pixel scores (…) under MEANS names; float64."""
    check_choice("absent", absent, Absent)
    cm = confmat.double()
    tp = cm.diagonal(dim1=-2, dim2=-1)
    truth, predicted = cm.sum(dim=-1), cm.sum(dim=-2)
    total = truth.sum(dim=-1)
    # absent from both, in a matrix that holds pixels: an empty matrix's scores all stay NaN
    both_absent = ((truth + predicted) == 0) & (total > 0).unsqueeze(-1)
    iou = tp / (truth + predicted - tp)
    dice = 2 * tp / (truth + predicted)
    if absent != "nan":
        fill = 1.0 if absent == "one" else 0.0
        iou, dice = iou.masked_fill(both_absent, fill), dice.masked_fill(both_absent, fill)
    recall = tp / truth
    per_class = {"IoU": iou, "Dice": dice, "Precision": tp / predicted, "Recall": recall, "Acc": recall}
    counted = slice(None) if include_background else slice(1, None)
    result = dict(per_class)
    for key, value in per_class.items():
        result[f"m{key}"] = value[..., counted].nanmean(dim=-1)
    result["aAcc"] = tp.sum(dim=-1) / total
    weighted = torch.where(truth > 0, truth * iou, 0).sum(dim=-1) / total
    result["fwIoU"] = weighted
    return result


def segmentation_scores(
    preds: Tensor,
    target: Tensor,
    num_classes: int,
    ignore_index: int | None = IGNORE_INDEX,
    averaging: Averaging = "dataset",
    absent: Absent = "nan",
    include_background: bool = True,
    reduce_zero_label: bool = False,
) -> dict[str, Tensor]:
    """Functional twin of SegMetrics: the same scores for one set of predictions."""
    metric = SegMetrics(num_classes, ignore_index, averaging, absent, include_background, reduce_zero_label)
    metric.update(preds, target)
    return metric.compute()


def check_confusion(cm: Tensor, num_classes: int) -> None:
    """Raises an InputError unless `cm` is integer N×K×K with no negative count."""
    k = num_classes
    if cm.ndim != 3 or tuple(cm.shape[1:]) != (k, k) or cm.is_floating_point() or cm.is_complex():
        raise InputError(f"confusion: expected integer N×{k}×{k} matrices, got {cm.dtype} {tuple(cm.shape)}")
    if cm.numel() and cm.min() < 0:
        raise InputError(f"confusion: counts must be 0 or more, got {int(cm.min())}")


class SegMetrics(Metric):
    """Segmentation scores accumulated over batches (definitions: the module docstring).

    `update(preds, target)`: preds logits N×K×H×W or labels N×H×W, target int N×H×W with
    `ignore_index` where pixels are not scored; volumes N×K×D×H×W or N×D×H×W against N×D×H×W.
    `compute()` → {"IoU", "Dice", "Precision", "Recall", "Acc": float64 K; "mIoU", "mDice",
    "mPrecision", "mRecall", "mAcc", "aAcc", "fwIoU": float64 scalars}. All states are sums, so
    under DDP they are summed across processes (torchmetrics' sync) and the result equals a
    single process's.
    """

    full_state_update = False
    is_differentiable = False
    higher_is_better = True

    def __init__(
        self,
        num_classes: int,
        ignore_index: int | None = IGNORE_INDEX,
        averaging: Averaging = "dataset",
        absent: Absent = "nan",
        include_background: bool = True,
        reduce_zero_label: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if num_classes < 1:
            raise InputError(f"num_classes: expected a positive number, got {num_classes}")
        check_choice("averaging", averaging, Averaging)
        check_choice("absent", absent, Absent)
        if reduce_zero_label and ignore_index is None:
            raise InputError("reduce_zero_label needs an ignore_index: target 0 becomes ignore")
        check_ignore_index(ignore_index, num_classes)
        self.num_classes, self.ignore_index = num_classes, ignore_index
        self.averaging = "image" if averaging == "case" else averaging  # one code path, two names
        self.absent = absent
        self.include_background, self.reduce_zero_label = include_background, reduce_zero_label
        k = num_classes
        self.add_state("confmat", torch.zeros(k, k, dtype=torch.long), dist_reduce_fx="sum")
        if self.averaging == "image":
            zeros = torch.zeros(len(PER_CLASS), k, dtype=torch.float64)
            self.add_state("class_sum", zeros.clone(), dist_reduce_fx="sum")
            self.add_state("class_count", zeros.clone(), dist_reduce_fx="sum")
            self.add_state("mean_sum", torch.zeros(len(MEANS), dtype=torch.float64), dist_reduce_fx="sum")
            self.add_state("mean_count", torch.zeros(len(MEANS), dtype=torch.float64), dist_reduce_fx="sum")

    def update(
        self, preds: Tensor | None = None, target: Tensor | None = None, *, confusion: Tensor | None = None
    ) -> None:
        """Adds preds and target, or (`update_confusion`) images given by their confusion matrices."""
        by_pixels = preds is not None and target is not None
        if by_pixels == (confusion is not None) or (confusion is not None and (preds, target) != (None, None)):
            raise InputError("SegMetrics.update: expected preds and target, or confusion=N×K×K matrices, not both")
        if confusion is None:
            per_image = self.averaging == "image"
            cm = confusion_matrix(preds, target, self.num_classes, self.ignore_index, self.reduce_zero_label, per_image)
            confusion = cm if per_image else cm[None]
        else:
            check_confusion(confusion, self.num_classes)
        self.confmat += confusion.sum(dim=0)
        if self.averaging != "image":
            return
        each = scores(confusion, self.absent, self.include_background)
        per_class = torch.stack([each[key] for key in PER_CLASS], dim=1)  # N×M×K
        means = torch.stack([each[key] for key in MEANS], dim=1)  # N×S
        self.class_sum += per_class.nan_to_num().sum(dim=0)
        self.class_count += (~per_class.isnan()).sum(dim=0)
        self.mean_sum += means.nan_to_num().sum(dim=0)
        self.mean_count += (~means.isnan()).sum(dim=0)

    def update_confusion(self, cm: Tensor) -> None:
        """Adds images given by their confusion matrices, int64 N×K×K (rows = truth), as
        `confusion_matrix(..., per_image=True)` returns them (with "dataset" averaging, any
        grouping of the images will do). Goes through `update`, so torchmetrics counts the update
        and drops its cached `compute()` result."""
        self.update(confusion=cm)

    def compute(self) -> dict[str, Tensor]:
        """The scores (see the class docstring); all NaN, with a warning, when no pixel was scored."""
        if not self.confmat.any():
            zero_label = " or 0, with reduce_zero_label" if self.reduce_zero_label else ""
            rank_zero_warn(
                f"SegMetrics: no pixel was scored: every target pixel was ignore_index ({self.ignore_index}"
                f"{zero_label}), or no update was made; every score is NaN"
            )
        if self.averaging == "dataset":
            return scores(self.confmat, self.absent, self.include_background)
        class_means = self.class_sum / self.class_count  # 0/0 → NaN: never defined
        image_means = self.mean_sum / self.mean_count
        result = {key: class_means[i] for i, key in enumerate(PER_CLASS)}
        result.update({key: image_means[i] for i, key in enumerate(MEANS)})
        return result
