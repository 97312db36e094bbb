"""The item format shared by every segattn data set, and applying an Albumentations pipeline."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import albumentations as A
import numpy as np
import torch
from torch.utils.data import Dataset

from segattn.data.sampling import sample_seed
from segattn.errors import InputError

IGNORE_INDEX = 255

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


class Transformed(Dataset):
    """A SegDataset seen through an Albumentations pipeline: items as `to_tensors` returns them.

    Items are read by index, or by an (epoch, index) key as `EpochSampler` yields them (a bare
    index is epoch 0). With a `seed`, the pipeline (an `A.Compose`) is reseeded before each item
    from (seed, epoch, index), see `segattn.data.sampling`: an item's augmentation then depends on
    nothing else.
    """

    def __init__(self, dataset: SegDataset, transform: Callable[..., dict], seed: int | None = None) -> None:
        self.dataset = dataset
        self.transform = transform
        self.seed = seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: int | tuple[int, int]) -> Sample:
        epoch, index = key if isinstance(key, tuple) else (0, key)
        if self.seed is not None:
            self.transform.set_random_seed(sample_seed(self.seed, epoch, index))
        return to_tensors(self.transform, self.dataset.load(index))


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


def check_pixel_depth(pipeline: Any, image: np.ndarray, source: str) -> None:
    """Raises an InputError naming `source` when a 16-bit image meets a pipeline whose mean/std
    Normalize divides by 255 or less (ImageNet's, say): its values would come out up to 257× too
    large, and the network would see nothing like what it was trained on."""
    if image.dtype != np.uint16:
        return
    for step in flatten(pipeline):
        if isinstance(step, A.Normalize) and step.normalization == "standard" and step.max_pixel_value <= 255:
            raise InputError(
                f"{source}: 16-bit pixels (up to {int(image.max())}), but the normalisation divides by "
                f"max_pixel_value {step.max_pixel_value:g}, for 8-bit images; use normalize: zscore, "
                "{percentile: [1, 99]}, {window: [center, width]} or {mean, std, max_pixel_value: 65535}"
            )


def flatten(pipeline: Any) -> list[A.BasicTransform]:
    """The transforms of a pipeline, nested Compose / OneOf / Sequential opened up."""
    if not hasattr(pipeline, "transforms"):
        return [pipeline]
    return [step for child in pipeline.transforms for step in flatten(child)]


def image_to_tensor(image: np.ndarray) -> torch.Tensor:
    """A transformed H×W or H×W×C image as a float32 C×H×W tensor."""
    if image.ndim == 2:
        image = image[..., None]
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32))


def pad_collate(items: list[Sample]) -> Sample:
    """Batches transformed items of different sizes: images are zero-padded (the mean colour
    after normalisation) and masks padded with 255 (ignore) on the bottom and right to the
    largest H×W of the batch, so padding is never scored. "size" lists each image's own (H, W)."""
    sizes = [tuple(item["image"].shape[-2:]) for item in items]
    height, width = max(h for h, _ in sizes), max(w for _, w in sizes)
    images = torch.zeros(len(items), items[0]["image"].shape[0], height, width)
    masks = torch.full((len(items), height, width), IGNORE_INDEX, dtype=torch.int64)
    for i, (item, (h, w)) in enumerate(zip(items, sizes, strict=True)):
        images[i, :, :h, :w] = item["image"]
        masks[i, :h, :w] = item["mask"]
    return {"image": images, "mask": masks, "name": [item["name"] for item in items], "size": sizes}
