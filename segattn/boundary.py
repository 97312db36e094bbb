"""Boundary metrics for medical reporting: HD95 and ASSD per image (or volume) and class.

One definition for 2-D images (H×W) and 3-D volumes (D×H×W). For a class c in one case, with P
and T the predicted and true regions (pixels/voxels whose target is `ignore_index` belong to
neither), their surfaces ∂P, ∂T are the elements of the region with an element outside it among
their 3^d − 1 neighbours (full connectivity: 8 in 2-D, 26 in 3-D; the array's edge counts as
outside, and so does an ignored neighbour). d(x, ∂T) is the exact Euclidean distance from x to the
nearest element of ∂T, with each axis scaled by `spacing` (e.g. (3.0, 0.8, 0.8) mm for D, H, W:
distances are then in millimetres), by scipy.ndimage.distance_transform_edt(sampling=spacing).

    HD95 = max(95th percentile of d(x, ∂T) over x ∈ ∂P, 95th percentile of d(y, ∂P) over y ∈ ∂T)
    ASSD = (Σ_{x ∈ ∂P} d(x, ∂T) + Σ_{y ∈ ∂T} d(y, ∂P)) / (|∂P| + |∂T|)

HD95 is the larger of the two directed 95th percentiles (numpy's linear interpolation), MONAI's
convention in compute_hausdorff_distance(percentile=95), not the 95th percentile of both
directions pooled. (MONAI's surface differs: it erodes with scipy's default cross, so its surface
elements are those with an outside neighbour across a face, 4 in 2-D and 6 in 3-D; segattn's
surface, full connectivity, also holds the inner-corner elements, so values can differ slightly.)

Empty regions: P and T both empty → NaN (the class is not scored on that case); exactly
one empty → the array's diagonal, ‖shape · spacing‖, the largest distance the grid allows, so
means stay finite and such misses weigh the most (MONAI returns inf or NaN there instead).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from scipy import ndimage
from torch import Tensor
from torchmetrics import Metric

from segattn.errors import InputError


def boundary(region: np.ndarray) -> np.ndarray:
    """The elements of a boolean region (H×W or D×H×W) that touch an element outside it among
    their 3^d − 1 neighbours; the array's edge counts as outside."""
    full = np.ones((3,) * region.ndim, bool)
    return region & ~ndimage.binary_erosion(region, full, border_value=0)


def check_spacing(spacing: Sequence[float] | None, ndim: int) -> tuple[float, ...]:
    """`spacing` as one positive float per spatial axis (None: 1.0 each), else an InputError."""
    if spacing is None:
        return (1.0,) * ndim
    values = tuple(float(s) for s in spacing)
    if len(values) != ndim or not all(np.isfinite(values)) or min(values) <= 0:
        raise InputError(
            f"spacing: expected {ndim} positive sizes, one per spatial axis of the {ndim}-D array "
            f"({'D, H, W' if ndim == 3 else 'H, W' if ndim == 2 else 'axes'}), got {tuple(spacing)}"
        )
    return values


def boundary_distances(
    pred: np.ndarray, truth: np.ndarray, spacing: Sequence[float] | None = None
) -> tuple[float, float]:
    """(HD95, ASSD) of two boolean regions of one shape (H×W or D×H×W) in `spacing` units (one
    size per axis; None: 1 each); see the module docstring for the definitions and empty regions."""
    if pred.shape != truth.shape:
        raise InputError(f"pred {pred.shape} and truth {truth.shape} differ in shape")
    spacing = check_spacing(spacing, pred.ndim)
    if not pred.any() and not truth.any():
        return float("nan"), float("nan")
    if not pred.any() or not truth.any():
        diagonal = float(np.linalg.norm(np.multiply(pred.shape, spacing)))
        return diagonal, diagonal
    # Crop to the union's bounding box: every surface element lies inside it and the box's edge is
    # outside both regions, so the surfaces and their distances are those of the whole array.
    box = ndimage.find_objects((pred | truth).astype(np.uint8))[0]
    pred, truth = pred[box], truth[box]
    edge_p, edge_t = boundary(pred), boundary(truth)
    to_truth = ndimage.distance_transform_edt(~edge_t, sampling=spacing)[edge_p]
    to_pred = ndimage.distance_transform_edt(~edge_p, sampling=spacing)[edge_t]
    hd95 = max(np.percentile(to_truth, 95), np.percentile(to_pred, 95))
    assd = (to_truth.sum() + to_pred.sum()) / (to_truth.size + to_pred.size)
    return float(hd95), float(assd)


class BoundaryMetrics(Metric):
    """HD95 and ASSD per class, averaged over the images (volumes) where the class is scored.

    `update(preds, target)`: logits N×K×H×W or labels N×H×W, target N×H×W (`ignore_index` =
    not scored); volumes N×K×D×H×W or N×D×H×W against N×D×H×W. `spacing`: one size per spatial
    axis (e.g. (3.0, 0.8, 0.8) mm), None = 1 each (pixel units). `compute()` → {"HD95", "ASSD":
    float64 K (NaN where never scored); "mHD95", "mASSD": NaN-means over classes}. Background
    (class 0) is left out of the means by default: in binary tasks its boundary is the
    foreground's. Runs on the CPU (scipy), per image.
    """

    full_state_update = False
    is_differentiable = False
    higher_is_better = False

    def __init__(
        self,
        num_classes: int,
        ignore_index: int | None = 255,
        include_background: bool = False,
        spacing: Sequence[float] | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if num_classes < 2:
            raise InputError(f"num_classes: expected at least 2, got {num_classes}")
        self.num_classes, self.ignore_index = num_classes, ignore_index
        self.include_background = include_background
        self.spacing = None if spacing is None else check_spacing(spacing, len(spacing))
        zeros = torch.zeros(2, num_classes, dtype=torch.float64)
        self.add_state("total", zeros.clone(), dist_reduce_fx="sum")  # rows: HD95, ASSD
        self.add_state("count", zeros.clone(), dist_reduce_fx="sum")

    def update(self, preds: Tensor, target: Tensor) -> None:
        if preds.ndim == target.ndim + 1:
            preds = preds.argmax(dim=1)
        if preds.shape != target.shape:
            raise InputError(f"preds {tuple(preds.shape)} and target {tuple(target.shape)} differ in shape")
        spacing = check_spacing(self.spacing, target.ndim - 1)
        preds_np, target_np = preds.cpu().numpy(), target.cpu().numpy()
        for pred, truth in zip(preds_np, target_np, strict=True):
            hd95, assd = case_distances(pred, truth, self.num_classes, spacing, self.ignore_index)
            scored = ~np.isnan(hd95)
            values = torch.from_numpy(np.stack([np.nan_to_num(hd95), np.nan_to_num(assd)]))
            self.total += values.to(self.total.device)
            self.count += torch.from_numpy(np.stack([scored, scored])).to(self.count.device)

    def compute(self) -> dict[str, Tensor]:
        per_class = self.total / self.count
        counted = slice(None) if self.include_background else slice(1, None)
        return {
            "HD95": per_class[0],
            "ASSD": per_class[1],
            "mHD95": per_class[0, counted].nanmean(),
            "mASSD": per_class[1, counted].nanmean(),
        }


def case_distances(
    pred: np.ndarray,
    truth: np.ndarray,
    num_classes: int,
    spacing: Sequence[float] | None = None,
    ignore_index: int | None = 255,
) -> tuple[np.ndarray, np.ndarray]:
    """(HD95, ASSD), float64 K each, of one case's label maps (H×W or D×H×W); elements whose truth
    is `ignore_index` belong to no region. NaN where a class is in neither map."""
    scored = truth != ignore_index if ignore_index is not None else np.ones(truth.shape, bool)
    result = np.full((2, num_classes), np.nan)
    for c in range(num_classes):
        result[:, c] = boundary_distances((pred == c) & scored, (truth == c) & scored, spacing)
    return result[0], result[1]
