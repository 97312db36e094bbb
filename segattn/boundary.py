"""Boundary metrics for medical reporting: HD95 and ASSD per image and class.

For a class c in one image, with P and T the predicted and true regions (pixels whose target is
`ignore_index` belong to neither), their boundaries ∂P, ∂T are the pixels of the region with a
pixel outside it among their 8 neighbours. d(x, ∂T) is the Euclidean distance (in `spacing`
units) from x to the nearest pixel of ∂T, by a distance transform (scipy.ndimage).

    HD95 = max(95th percentile of d(x, ∂T) over x ∈ ∂P, 95th percentile of d(y, ∂P) over y ∈ ∂T)
    ASSD = (Σ_{x ∈ ∂P} d(x, ∂T) + Σ_{y ∈ ∂T} d(y, ∂P)) / (|∂P| + |∂T|)

(HD95 as in MONAI's compute_hausdorff_distance with percentile=95.) Empty regions: P and T both
empty → NaN (the class is not scored on that image); exactly one empty → the image diagonal, the
largest distance the image allows, so means stay finite and such misses weigh the most.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from scipy import ndimage
from torch import Tensor
from torchmetrics import Metric

from segattn.errors import InputError

EIGHT_NEIGHBOURS = np.ones((3, 3), bool)


def boundary(region: np.ndarray) -> np.ndarray:
    """The pixels of a boolean H×W region that touch a pixel outside it (8-connectivity)."""
    return region & ~ndimage.binary_erosion(region, EIGHT_NEIGHBOURS, border_value=0)


def boundary_distances(
    pred: np.ndarray, truth: np.ndarray, spacing: Sequence[float] = (1.0, 1.0)
) -> tuple[float, float]:
    """(HD95, ASSD) of two boolean H×W regions; see the module docstring for empty regions."""
    if not pred.any() and not truth.any():
        return float("nan"), float("nan")
    if not pred.any() or not truth.any():
        diagonal = float(np.hypot(pred.shape[0] * spacing[0], pred.shape[1] * spacing[1]))
        return diagonal, diagonal
    edge_p, edge_t = boundary(pred), boundary(truth)
    to_truth = ndimage.distance_transform_edt(~edge_t, sampling=spacing)[edge_p]
    to_pred = ndimage.distance_transform_edt(~edge_p, sampling=spacing)[edge_t]
    hd95 = max(np.percentile(to_truth, 95), np.percentile(to_pred, 95))
    assd = (to_truth.sum() + to_pred.sum()) / (to_truth.size + to_pred.size)
    return float(hd95), float(assd)


class BoundaryMetrics(Metric):
    """HD95 and ASSD per class, averaged over the images where the class is scored.

    `update(preds, target)`: logits N×K×H×W or labels N×H×W, target N×H×W (`ignore_index` =
    not scored). `compute()` → {"HD95", "ASSD": float64 K (NaN where never scored); "mHD95",
    "mASSD": NaN-means over classes}. Background (class 0) is left out of the means by default:
    in binary tasks its boundary is the foreground's. Runs on the CPU (scipy), per image.
    """

    full_state_update = False
    is_differentiable = False
    higher_is_better = False

    def __init__(
        self,
        num_classes: int,
        ignore_index: int | None = 255,
        include_background: bool = False,
        spacing: Sequence[float] = (1.0, 1.0),
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if num_classes < 2:
            raise InputError(f"num_classes: expected at least 2, got {num_classes}")
        if len(spacing) != 2 or min(spacing) <= 0:
            raise InputError(f"spacing: expected two positive pixel sizes (rows, columns), got {spacing}")
        self.num_classes, self.ignore_index = num_classes, ignore_index
        self.include_background, self.spacing = include_background, tuple(float(s) for s in spacing)
        zeros = torch.zeros(2, num_classes, dtype=torch.float64)
        self.add_state("total", zeros.clone(), dist_reduce_fx="sum")  # rows: HD95, ASSD
        self.add_state("count", zeros.clone(), dist_reduce_fx="sum")

    def update(self, preds: Tensor, target: Tensor) -> None:
        if preds.ndim == target.ndim + 1:
            preds = preds.argmax(dim=1)
        if preds.shape != target.shape:
            raise InputError(f"preds {tuple(preds.shape)} and target {tuple(target.shape)} differ in shape")
        preds_np, target_np = preds.cpu().numpy(), target.cpu().numpy()
        for pred, truth in zip(preds_np, target_np, strict=True):
            scored = truth != self.ignore_index if self.ignore_index is not None else np.ones_like(truth, bool)
            for c in range(self.num_classes):
                hd95, assd = boundary_distances((pred == c) & scored, (truth == c) & scored, self.spacing)
                if not np.isnan(hd95):
                    self.total[:, c] += torch.tensor([hd95, assd], dtype=torch.float64, device=self.total.device)
                    self.count[:, c] += 1

    def compute(self) -> dict[str, Tensor]:
        per_class = self.total / self.count
        counted = slice(None) if self.include_background else slice(1, None)
        return {
            "HD95": per_class[0],
            "ASSD": per_class[1],
            "mHD95": per_class[0, counted].nanmean(),
            "mASSD": per_class[1, counted].nanmean(),
        }
