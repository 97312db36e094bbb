"""Albumentations pipelines: normalisation, the training presets, and the evaluation transform.

Every pipeline is a plain `A.Compose`. The evaluation pipeline goes into checkpoints in
Albumentations' own serialised form (`A.to_dict`) and is rebuilt with `A.from_dict`; a pipeline
can also be given in that form in a YAML config.

Order inside the training pipeline: pixel-level 8-bit augmentation (colour, CLAHE, gamma) →
normalisation to float32 → geometric augmentation and crop. Geometric steps therefore pad images
with 0 (the mean after normalisation, as the model's own padding) and masks with 255 (ignore),
and resample masks with nearest-neighbour interpolation: labels stay exact.
"""

from __future__ import annotations

import warnings
from typing import Any, Literal

import albumentations as A
import cv2
import numpy as np
from albumentations.core.transforms_interface import ImageOnlyTransform

from segattn.errors import InputError, check_choice
from segattn.labels import IGNORE_INDEX

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
Preset = Literal["natural", "medical", "none"]
NormalizeSpec = str | dict[str, Any]


class Window(ImageOnlyTransform):
    """CT-style intensity window: clip to [center − width/2, center + width/2] and scale to
    [−1, 1] float32. For 16-bit (or float) data, e.g. Hounsfield units. No library transform
    does this (Albumentations' Normalize has no clipping), hence it is written here."""

    def __init__(self, center: float, width: float, p: float = 1.0) -> None:
        super().__init__(p=p)
        if width <= 0:
            raise InputError(f"normalize.window: width must be positive, got {width}")
        self.center, self.width = float(center), float(width)

    def apply(self, img: np.ndarray, **params: Any) -> np.ndarray:
        low = self.center - self.width / 2
        return (np.clip(img.astype(np.float32), low, low + self.width) - low) / self.width * 2 - 1

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("center", "width")


class PercentileClip(ImageOnlyTransform):
    """Per-image robust scaling: clip to the image's [low, high] percentiles (all channels
    together) and scale that range to [−1, 1] float32. For microscopy and 16-bit data with
    outliers; Albumentations has no percentile normalisation, hence it is written here."""

    def __init__(self, low: float = 1.0, high: float = 99.0, p: float = 1.0) -> None:
        super().__init__(p=p)
        if not 0 <= low < high <= 100:
            raise InputError(f"normalize.percentile: expected 0 ≤ low < high ≤ 100, got {low}, {high}")
        self.low, self.high = float(low), float(high)

    def apply(self, img: np.ndarray, **params: Any) -> np.ndarray:
        lo, hi = np.percentile(img, (self.low, self.high))
        span = max(float(hi - lo), 1e-6)
        return ((np.clip(img.astype(np.float32), lo, hi) - lo) / span * 2 - 1).astype(np.float32)

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("low", "high")


def normalization(spec: NormalizeSpec, channels: int) -> A.BasicTransform:
    """uint8/uint16 image → float32, by `spec`:

    "imagenet"                      (x/255 − ImageNet mean) / std, RGB only
    {"mean": [...], "std": [...], "max_pixel_value": 255}   (x/max − mean) / std per channel
    "zscore"                        per image and channel: (x − mean) / std
    {"percentile": [1, 99]}         per image: clip to the percentiles, scale to [−1, 1]
    {"window": [center, width]}     clip to the window, scale to [−1, 1] (CT, 16-bit)
    """
    if spec == "imagenet":
        if channels != 3:
            raise InputError("normalize: 'imagenet' needs 3 channels; use 'zscore' or an explicit mean/std")
        return A.Normalize(mean=IMAGENET_MEAN, std=IMAGENET_STD, max_pixel_value=255.0)
    if spec == "zscore":
        return A.Normalize(normalization="image_per_channel")
    if isinstance(spec, dict) and "mean" in spec:
        unknown = set(spec) - {"mean", "std", "max_pixel_value"}
        mean, std = tuple(spec["mean"]), tuple(spec.get("std", ()))
        if unknown or len(mean) != channels or len(std) != channels:
            raise InputError(
                f"normalize: expected {{mean: [{channels} values], std: [{channels} values], max_pixel_value}}, "
                f"got {spec}"
            )
        return A.Normalize(mean=mean, std=std, max_pixel_value=float(spec.get("max_pixel_value", 255.0)))
    if isinstance(spec, dict) and set(spec) == {"percentile"} and len(spec["percentile"]) == 2:
        return PercentileClip(*spec["percentile"])
    if isinstance(spec, dict) and set(spec) == {"window"} and len(spec["window"]) == 2:
        return Window(*spec["window"])
    raise InputError(
        f"normalize: unknown spec {spec!r}; expected 'imagenet', 'zscore', {{mean, std}}, "
        "{percentile: [low, high]} or {window: [center, width]}"
    )


def is_8bit(spec: NormalizeSpec) -> bool:
    """Whether images under this normalisation are 8-bit, so 8-bit-only augmentations apply."""
    if spec == "imagenet":
        return True
    if isinstance(spec, dict) and "mean" in spec:
        return float(spec.get("max_pixel_value", 255.0)) <= 255
    return False


def train_pipeline(crop_size: int, normalize: NormalizeSpec, channels: int, preset: Preset = "natural") -> A.Compose:
    """Training augmentation ending in a crop_size×crop_size crop (see the module docstring).

    "natural": brightness/contrast and hue/saturation jitter, scale jitter ×0.5–2.0, pad and
    random crop, horizontal flip. "medical": CLAHE, brightness/contrast, gamma, then flips,
    90° rotations, affine (scale, rotation, shear), elastic or grid distortion, pad and random
    crop. "none": pad and random crop. The pixel-level steps (jitter, CLAHE, gamma) run only under
    an 8-bit normalisation ("imagenet", or mean/std with max_pixel_value ≤ 255); "zscore",
    "percentile" and "window" are taken to mean 16-bit or float data, and leave them out.
    """
    if crop_size < 1:
        raise InputError(f"crop_size: expected a positive size, got {crop_size}")
    check_choice("augment", preset, Preset)
    eight_bit = is_8bit(normalize)
    pad_crop = [
        A.PadIfNeeded(crop_size, crop_size, border_mode=cv2.BORDER_CONSTANT, fill=0, fill_mask=IGNORE_INDEX),
        A.RandomCrop(crop_size, crop_size),
    ]
    norm = normalization(normalize, channels)
    if preset == "none":
        return A.Compose([norm, *pad_crop])
    if preset == "natural":
        pixel = [A.RandomBrightnessContrast(0.2, 0.2, p=0.5)]
        if channels == 3:
            pixel.append(A.HueSaturationValue(10, 20, 10, p=0.3))
        geometric = [
            A.RandomScale(scale_limit=(-0.5, 1.0), interpolation=cv2.INTER_LINEAR, p=1.0),
            *pad_crop,
            A.HorizontalFlip(p=0.5),
        ]
    else:  # "medical"
        pixel = [
            A.CLAHE(clip_limit=2.0, p=0.3),
            A.RandomBrightnessContrast(0.2, 0.2, p=0.5),
            A.RandomGamma((80, 120), p=0.3),
        ]
        geometric = [
            A.HorizontalFlip(p=0.5),
            A.VerticalFlip(p=0.5),
            A.RandomRotate90(p=0.5),
            A.Affine(
                scale=(0.85, 1.15),
                rotate=(-20, 20),
                shear=(-5, 5),
                border_mode=cv2.BORDER_CONSTANT,
                fill=0,
                fill_mask=IGNORE_INDEX,
                p=0.5,
            ),
            A.OneOf(
                [
                    A.ElasticTransform(
                        alpha=30, sigma=6, border_mode=cv2.BORDER_CONSTANT, fill=0, fill_mask=IGNORE_INDEX
                    ),
                    A.GridDistortion(border_mode=cv2.BORDER_CONSTANT, fill=0, fill_mask=IGNORE_INDEX),
                ],
                p=0.3,
            ),
            *pad_crop,
        ]
    return A.Compose([*(pixel if eight_bit else []), norm, *geometric])


def eval_pipeline(normalize: NormalizeSpec, channels: int) -> A.Compose:
    """Evaluation transform: normalisation only; the image keeps its size (the model pads)."""
    return A.Compose([normalization(normalize, channels)])


def serialize(pipeline: A.Compose) -> dict[str, Any]:
    """Albumentations' own serialised form (JSON-safe); `deserialize` rebuilds the pipeline."""
    return A.to_dict(pipeline)


# Albumentations 2.0 writes PadIfNeeded's `padding` in to_dict but does not accept it back.
OWN_ROUND_TRIP_NOISE = "Argument(s) 'padding' are not valid for transform PadIfNeeded"


def deserialize(spec: dict[str, Any], source: str = "transform") -> A.Compose:
    """Rebuilds a pipeline from Albumentations' serialised form; errors name `source`. An
    argument that a transform does not take is an error (Albumentations only warns and drops it)."""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            pipeline = A.from_dict(spec)
    except (KeyError, ValueError, TypeError) as exc:
        raise InputError(f"{source}: not a valid Albumentations pipeline ({type(exc).__name__}: {exc})") from exc
    for warning in caught:
        message = str(warning.message)
        if message.startswith("Argument(s)") and message != OWN_ROUND_TRIP_NOISE:
            raise InputError(f"{source}: {message}")
        if message != OWN_ROUND_TRIP_NOISE:
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    if not isinstance(pipeline, A.Compose):
        pipeline = A.Compose([pipeline])
    return pipeline
