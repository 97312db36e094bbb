"""What SegDataModule needs for volume data sets: its volume settings checked and defaulted, the
3-D training augmentation, and whole evaluation volumes.

Training items are `VolumePatches` (random patches, foreground oversampled), mirrored at random
along each axis (and, with "nnunet", rotated, scaled and varied in intensity) by
`volume_augmentation`; evaluation items are whole volumes (`WholeVolumes`), normalised by the
same intensity spec. Both carry the volume's voxel spacing (mm).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Literal

import albumentations as A
import numpy as np
import torch
from torch.utils.data import Dataset

from segattn.data.augment3d import IntensityAugment3D, RandomRotateScale3D
from segattn.data.base import Sample, SegDataset
from segattn.data.geometry import Geometry
from segattn.data.intensity import IntensitySpec, check_intensity
from segattn.data.patches import VolumePatches
from segattn.data.prepared import PreparedVolumes
from segattn.data.slices import SliceSpec, slice_patch_size
from segattn.data.volumes import VolumeDataset
from segattn.errors import InputError

Augment3D = Literal["flips", "nnunet", "none"]
AUGMENT_3D = ("flips", "nnunet", "none")
DEFAULT_INTENSITY: dict[str, Any] = {"zscore": {"foreground": False}}  # MR; CT needs ct_statistics
DEFAULT_FOREGROUND = 0.33  # nnU-Net's oversample_foreground_percent
VOLUME_KEYS = (
    "patch_size", "foreground_share", "intensity", "augment_3d", "slices", "orientation", "spacing",
    "patches_per_volume", "cache_dir",
)  # fmt: skip
IMAGE_KEYS = ("crop_size", "augment", "normalize", "train_transform", "eval_transform")


class DepthFlip(A.Transform3D):
    """Mirrors a volume (D×H×W[×C]) and its mask3d along D. Written here because Albumentations
    2.0.8 has no such flip: VerticalFlip / HorizontalFlip mirror a volume slice by slice (H and
    W), and its one 3-D symmetry transform, CubicSymmetry, also rotates, which needs a cube."""

    def apply_to_volume(self, volume: np.ndarray, *args: Any, **params: Any) -> np.ndarray:
        return np.flip(volume, 0)

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ()


def volume_augmentation(augment: Augment3D) -> A.Compose | None:
    """The training pipeline on {"volume": D×H×W×C, "mask3d": D×H×W}: "flips" mirrors each axis
    with probability 1/2 (nnU-Net's mirroring); "nnunet" then rotates and scales (probability 0.2
    each) and varies intensity as nnU-Net does (`segattn.data.augment3d`); "none" nothing (None)."""
    if augment not in AUGMENT_3D:
        raise InputError(f"data.augment_3d: expected 'flips', 'nnunet' or 'none', got {augment!r}")
    if augment == "none":
        return None
    flips = [DepthFlip(p=0.5), A.VerticalFlip(p=0.5), A.HorizontalFlip(p=0.5)]
    if augment == "flips":
        return A.Compose(flips)
    return A.Compose([*flips, RandomRotateScale3D(), IntensityAugment3D()])


def check_kind(datasets: dict[str, SegDataset | None]) -> bool:
    """Whether the data sets are volumes; a volume set mixed with an image set is an InputError."""
    given = {split: isinstance(ds, VolumeDataset) for split, ds in datasets.items() if ds is not None}
    if len(set(given.values())) > 1:
        volumes = [split for split, is_volume in given.items() if is_volume]
        images = [split for split, is_volume in given.items() if not is_volume]
        raise InputError(
            f"data.{volumes[0]} holds volumes but data.{images[0]} images; "
            "train, val and test must all be volume data sets or all image data sets"
        )
    return any(given.values())


def refuse_keys(settings: dict[str, Any], volumes: bool) -> None:
    """An InputError naming the first setting given that the other kind of data takes."""
    foreign = IMAGE_KEYS if volumes else VOLUME_KEYS
    for key in foreign:
        if settings.get(key) is not None:
            kind, other = ("image", "volume") if volumes else ("volume", "image")
            raise InputError(f"data.{key}: applies to {kind} data sets only, and these are {other}s; leave it out")


def volume_settings(
    train: VolumeDataset,
    patch_size: Sequence[int] | None,
    foreground_share: float | None,
    intensity: IntensitySpec | None,
    augment_3d: Augment3D | None,
    slices: SliceSpec | None = None,
    geometry: Geometry | None = None,
    per_volume: int | None = None,
    cache_dir: str | None = None,
) -> dict[str, Any]:
    """VolumePatches' keyword arguments (but the seed) from the data module's settings, defaults
    filled in and checked (by building the patches once: nothing is read). With `slices` (2.5-D,
    `segattn.data.slices`), patch_size is the slice's (h, w), and the patches are one slice
    thick with its neighbours as context."""
    if patch_size is None:
        example = "[56, 40] (the slice's voxels)" if slices is not None else "[40, 56, 40] (d, h, w voxels)"
        raise InputError(f"data.patch_size: required for volume data sets, e.g. {example}")
    spec = DEFAULT_INTENSITY if intensity is None else intensity
    check_intensity(spec, train.in_channels, "data.intensity")
    augment = "flips" if augment_3d is None else augment_3d
    context = [0, 0, 0]
    if slices is not None:
        if augment == "nnunet":
            raise InputError(
                "data.augment_3d 'nnunet': its rotations and scaling act in 3-D, which a stack of a slice and its "
                "neighbours cannot take (data.slices); use 'flips' or 'none'"
            )
        patch_size, context = slice_patch_size(patch_size, slices)
    settings = {
        "patch_size": list(patch_size),
        "foreground": DEFAULT_FOREGROUND if foreground_share is None else foreground_share,
        "intensity": spec,
        "transform": volume_augmentation(augment),
        "context": context,
        "geometry": geometry,
        "per_volume": 1 if per_volume is None else per_volume,
        "cache_dir": cache_dir,  # the folder is created (or refused) here, by the patches built below
    }
    try:
        VolumePatches(train, **settings)
    except InputError as error:  # "patch_size: ...", "foreground: ...": named as the data module's keys
        message = str(error)
        for own, key in (("foreground", "foreground_share"), ("per_volume", "patches_per_volume")):
            if message.startswith(f"{own}:"):
                message = key + message.removeprefix(own)
        raise InputError(f"data.{message}") from None
    return settings


class WholeVolumes(Dataset):
    """A VolumeDataset's whole volumes for evaluation: {"image": float32 C×D×H×W normalised by
    `intensity`, "mask": int64 D×H×W, "name", "spacing": (d, h, w) mm}, in the training grid of
    `geometry` where one is given (validation scores there; `segattn evaluate` in the scans' own);
    kept prepared in `cache_dir` as training patches are (`segattn.data.prepared`)."""

    def __init__(
        self,
        dataset: VolumeDataset,
        intensity: IntensitySpec,
        geometry: Geometry | None = None,
        cache_dir: str | os.PathLike | None = None,
    ) -> None:
        self.volumes = PreparedVolumes(dataset, intensity, geometry, cache_dir)

    def __len__(self) -> int:
        return len(self.volumes)

    def __getitem__(self, index: int) -> Sample:
        volume = self.volumes[index]
        image = volume.image if volume.image.flags.writeable else np.array(volume.image)  # cached: read-only
        return {
            "image": torch.from_numpy(image),
            "mask": torch.from_numpy(volume.mask.astype(np.int64)),
            "name": volume.name,
            "spacing": volume.spacing,
        }
