"""Albumentations pipelines: the training augmentation and the evaluation transform.

Pipelines are plain `A.Compose` objects; the evaluation pipeline is stored in checkpoints in
Albumentations' own serialised form (`A.to_dict`) and rebuilt with `A.from_dict`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import albumentations as A
import cv2

from segattn.data.base import IGNORE_INDEX
from segattn.errors import InputError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
Preset = Literal["natural", "none"]


def normalize(mean: Sequence[float], std: Sequence[float]) -> A.Normalize:
    """(pixel / 255 − mean) / std per channel: uint8 in, float32 out."""
    return A.Normalize(mean=tuple(mean), std=tuple(std), max_pixel_value=255.0)


def train_pipeline(
    crop_size: int, mean: Sequence[float], std: Sequence[float], preset: Preset = "natural"
) -> A.Compose:
    """Training augmentation ending in a crop_size×crop_size crop and normalisation.

    "natural": scale jitter ×0.75–1.33, pad (image 0, mask 255 = ignore) and random crop,
    horizontal flip, brightness/contrast jitter. "none": pad and random crop only.
    """
    if crop_size < 1:
        raise InputError(f"crop_size: expected a positive size, got {crop_size}")
    pad_crop = [
        A.PadIfNeeded(crop_size, crop_size, border_mode=cv2.BORDER_CONSTANT, fill=0, fill_mask=IGNORE_INDEX),
        A.RandomCrop(crop_size, crop_size),
    ]
    if preset == "none":
        return A.Compose([*pad_crop, normalize(mean, std)])
    if preset != "natural":
        raise InputError(f"augment: unknown preset {preset!r}; expected 'natural' or 'none'")
    return A.Compose(
        [
            A.RandomScale(scale_limit=(-0.25, 0.33), interpolation=cv2.INTER_LINEAR, p=1.0),
            *pad_crop,
            A.HorizontalFlip(p=0.5),
            A.RandomBrightnessContrast(brightness_limit=0.2, contrast_limit=0.2, p=0.5),
            normalize(mean, std),
        ]
    )


def eval_pipeline(mean: Sequence[float], std: Sequence[float]) -> A.Compose:
    """Evaluation transform: normalisation only; the image keeps its size (the model pads)."""
    return A.Compose([normalize(mean, std)])


def serialize(pipeline: A.Compose) -> dict[str, Any]:
    """Albumentations' own serialised form (JSON-safe); `deserialize` rebuilds the pipeline."""
    return A.to_dict(pipeline)


def deserialize(spec: dict[str, Any]) -> A.Compose:
    return A.from_dict(spec)
