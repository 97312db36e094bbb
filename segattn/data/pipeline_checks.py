"""Inspecting Albumentations pipelines: what they normalise by, and whether an image suits them."""

from __future__ import annotations

from typing import Any

import albumentations as A
import numpy as np

from segattn.data.transforms import PercentileClip, Window
from segattn.errors import InputError


def flatten(pipeline: Any) -> list[A.BasicTransform]:
    """The transforms of a pipeline, nested Compose / OneOf / Sequential opened up."""
    if not hasattr(pipeline, "transforms"):
        return [pipeline]
    return [step for child in pipeline.transforms for step in flatten(child)]


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


def check_normalisations(train: A.Compose, evaluation: A.Compose, source: str) -> None:
    """Raises an InputError unless the training pipeline normalises its images, and exactly as the
    evaluation pipeline does: otherwise the network trains on raw 0–255 (or 0–65535) values, or
    is scored and served on inputs of another scale than it learnt. `source` names the settings."""
    steps = [normalisation_steps(pipeline) for pipeline in (train, evaluation)]
    if not steps[0]:
        raise InputError(
            "data.train_transform: no normalisation step (Normalize, ToFloat, or segattn's Window or "
            "PercentileClip); the network would train on raw pixel values"
        )
    if steps[0] != steps[1]:
        raise InputError(f"{source}: the training pipeline normalises by {steps[0]}, the evaluation one by {steps[1]}")


def normalisation_steps(pipeline: A.Compose) -> list[dict[str, Any]]:
    """The serialised settings of every normalising step in the pipeline, in order."""
    kinds = (A.Normalize, A.ToFloat, Window, PercentileClip)
    return [step.to_dict()["transform"] for step in flatten(pipeline) if isinstance(step, kinds)]
