"""The data-set contract: the item format every segattn data set returns, and its tensor form."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from segattn.data.pipeline_checks import check_pixel_depth
from segattn.errors import InputError
from segattn.labels import IGNORE_INDEX

Sample = dict[str, Any]


class SegDataset(Dataset):
    """Base class of segattn data sets.

    `load(i)` returns the raw item {"image": uint8 H×W×C, "mask": int64 H×W (class indices,
    255 = ignore), "name": str}. `ds[i]` is the raw item when `transform` is None, else the
    output of `to_tensors(transform, item)`. Subclasses set `classes` (names, index = label),
    `in_channels` and `image_paths` (the image file of each sample, to check that splits are
    disjoint).
    """

    classes: list[str]
    in_channels: int = 3
    image_paths: list[Path]

    def __init__(self, transform: Callable[..., dict] | None = None) -> None:
        self.transform = transform

    def load(self, index: int) -> Sample:
        raise NotImplementedError

    def __getitem__(self, index: int) -> Sample:
        item = self.load(index)
        return item if self.transform is None else to_tensors(self.transform, item)


def to_tensors(transform: Callable[..., dict], item: Sample) -> Sample:
    """Applies an Albumentations pipeline to a raw item and returns
    {"image": float32 C×H×W, "mask": int64 H×W (255 = ignore), "name": str}.

    The mask travels through the pipeline as uint8 (OpenCV warps do not take int64), which holds
    every class index 0–254 and the ignore value exactly; Albumentations resamples masks with
    nearest-neighbour interpolation, so no label is interpolated.
    """
    mask = item["mask"]
    if mask.size and (mask.min() < 0 or mask.max() > IGNORE_INDEX):
        raise InputError(f"{item['name']}: mask values must lie in 0..255, got {mask.min()}..{mask.max()}")
    check_pixel_depth(transform, item["image"], item["name"])
    out = transform(image=item["image"], mask=mask.astype(np.uint8))
    return {
        "image": image_to_tensor(out["image"]),
        "mask": torch.from_numpy(out["mask"].astype(np.int64)),
        "name": item["name"],
    }


def image_to_tensor(image: np.ndarray) -> torch.Tensor:
    """A transformed H×W or H×W×C image as a float32 C×H×W tensor."""
    if image.ndim == 2:
        image = image[..., None]
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32))
