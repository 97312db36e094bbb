"""The evaluation transform applied window by window, as the sliding window needs it.

One rule decides (`window_normalize`): a pipeline that is exactly one always-applied step of

- a fixed per-pixel kind (mean/std `Normalize`, "imagenet" among them; `ToFloat`; `Window`), or
- a per-image kind (`Normalize` with per-channel image statistics, "zscore"; `PercentileClip`)

is a `PixelNormalize`: per channel, y = clamp((x − shift) · scale + offset, low, high). A per-image
step takes the whole image's statistics, read exactly off a per-channel histogram of the integer
image (no float copy of it is made), and then applies to every window as a fixed per-pixel step.
Each window then gets what the whole-image transform gives its pixels (to float32 rounding).
Any other pipeline (several steps, a resize, a step with p < 1, another Normalize mode) has no
window-wise form: the caller transforms the whole image as before.
"""

from __future__ import annotations

from typing import Any

import albumentations as A
import numpy as np
import torch
from torch import Tensor

from segattn.data.transforms import PercentileClip, Window

ROWS_PER_PASS = 256  # histogram rows at a time: the working copy stays O(rows × width)


class PixelNormalize:
    """y = clamp((x − shift) · scale + offset, low, high) in float32, shift and scale per channel,
    on raw N×C×h×w batches (uint8, uint16 or int32) on any device. Written here because
    Albumentations runs on NumPy H×W×C images only, and a window batch is a torch tensor, perhaps on
    a GPU. For a mean/std Normalize it does albucore's float32 operations, so results are equal."""

    def __init__(
        self,
        shift: Any,
        scale: Any,
        offset: float = 0.0,
        bounds: tuple[float, float] | None = None,
        device: torch.device | str = "cpu",
    ) -> None:
        self.shift = torch.as_tensor(np.asarray(shift, np.float32), device=device).reshape(-1, 1, 1)
        self.scale = torch.as_tensor(np.asarray(scale, np.float32), device=device).reshape(-1, 1, 1)
        self.offset, self.bounds = offset, bounds

    def to(self, device: torch.device | str) -> PixelNormalize:
        """The same map with its constants on `device`."""
        return PixelNormalize(self.shift.cpu(), self.scale.cpu(), self.offset, self.bounds, device)

    def __call__(self, batch: Tensor) -> Tensor:
        """raw N×C×h×w → float32 N×C×h×w."""
        out = (batch.float() - self.shift) * self.scale
        if self.offset:
            out += self.offset
        return out if self.bounds is None else out.clamp_(*self.bounds)


def window_normalize(pipeline: Any, image: np.ndarray | None) -> PixelNormalize | None:
    """The pipeline as a per-pixel map for `image` (uint8/uint16 H×W×C, as decoded), or None
    when it has no window-wise form (see the module docstring). image None: fixed steps only."""
    steps = list(pipeline.transforms) if isinstance(pipeline, A.Compose) else [pipeline]
    if len(steps) != 1 or steps[0].p < 1 or pipeline.p < 1:
        return None
    (step,) = steps
    if isinstance(step, A.Normalize) and step.normalization == "standard":
        if image is not None and step.mean_np.size not in (1, image.shape[2]):
            return None  # albucore cuts such statistics to the image's channels; not followed here
        return PixelNormalize(step.mean_np, step.denominator)
    if isinstance(step, Window):
        low = step.center - step.width / 2
        return PixelNormalize(low, 2 / step.width, -1.0, (-1.0, 1.0))
    if image is None:
        return None
    if isinstance(step, A.ToFloat):
        maximum = step.max_value or np.iinfo(image.dtype).max
        return PixelNormalize(0.0, 1 / maximum)
    if isinstance(step, A.Normalize) and step.normalization == "image_per_channel":
        return zscore(histograms(image), image.dtype)
    if isinstance(step, PercentileClip):
        counts = histograms(image).sum(axis=0)  # all channels together, as np.percentile(img) takes them
        low, high = (percentile(counts, q) for q in (step.low, step.high))
        return PixelNormalize(low, 2 / max(high - low, 1e-6), -1.0, (-1.0, 1.0))
    return None


def zscore(counts: np.ndarray, dtype: np.dtype) -> PixelNormalize:
    """Albumentations' Normalize("image_per_channel") from C×levels counts: (x − mean) / std per
    channel, clipped to ±20. Like albucore, std gets + 1e-4 except on 16-bit colour images (its
    OpenCV path, cv2.meanStdDev, adds none), and one channel is the whole image."""
    levels = np.arange(counts.shape[1], dtype=np.float64)
    total = counts.sum(axis=1)
    mean = counts @ levels / total
    std = np.sqrt((counts * (levels - mean[:, None]) ** 2).sum(axis=1) / total)
    eps = 1e-4 if dtype == np.uint8 or len(counts) == 1 else 0.0
    return PixelNormalize(mean, 1 / (std + eps), 0.0, (-20.0, 20.0))


def percentile(counts: np.ndarray, q: float) -> float:
    """np.percentile (linear interpolation) of the values that `counts` (per level) counts."""
    cumulative = np.cumsum(counts)
    position = q / 100 * (cumulative[-1] - 1)
    below = int(np.floor(position))
    low, high = np.searchsorted(cumulative, [below, min(below + 1, cumulative[-1] - 1)], side="right")
    return float(low + (position - below) * (high - low))


def histograms(image: np.ndarray) -> np.ndarray:
    """int64 C×levels counts of a uint8/uint16 H×W×C image (levels 256 or 65536), a band of rows at
    a time: exact (unlike cv2.calcHist's float32 counts beyond 2**24 pixels) and without a copy of
    the image."""
    levels = np.iinfo(image.dtype).max + 1
    counts = np.zeros((image.shape[2], levels), np.int64)
    for top in range(0, image.shape[0], ROWS_PER_PASS):
        rows = image[top : top + ROWS_PER_PASS]
        for channel in range(image.shape[2]):
            counts[channel] += np.bincount(rows[..., channel].ravel(), minlength=levels)
    return counts
