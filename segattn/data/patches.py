"""Random training patches from volumes, with foreground oversampling, reproducible by key.

Axes as in `segattn.data.volume_io`: D×H×W in the file's voxel order. A patch is a
`patch_size` (d, h, w) box of the volume. With probability `foreground` the box is placed
around a labelled voxel (a class other than background 0 and ignore 255; first a class drawn
uniformly among those present, then one of its voxels, so small classes are not starved), centred
on it where the volume allows and shifted inwards at its borders (the voxel stays inside), as
nnU-Net does; otherwise anywhere, uniformly. Along an axis where the volume is smaller than the
patch, the box overhangs the volume and the outside is padded: image 0, labels 255 (ignore), so
padding is never scored.

Each draw depends only on (seed, epoch, index) through `segattn.data.sampling.sample_seed`:
keys come from `EpochSampler` as for 2-D training, and a resumed run sees the same patches.
An optional Albumentations pipeline on the 3-D targets ("volume" D×H×W×C, "mask3d" D×H×W)
augments each patch, reseeded likewise (its own stream of the same key).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import albumentations as A
import numpy as np
import torch
from torch.utils.data import Dataset

from segattn.data.base import Sample
from segattn.data.geometry import Geometry
from segattn.data.intensity import IntensitySpec
from segattn.data.prepared import PreparedVolumes, class_locations
from segattn.data.sampling import sample_seed
from segattn.data.volumes import VolumeDataset
from segattn.errors import InputError, check_count, check_counts
from segattn.labels import IGNORE_INDEX


class VolumePatches(Dataset):
    """A VolumeDataset seen as random patches: item {"image": float32 tensor C×d×h×w, "mask":
    int64 tensor d×h×w (255 = ignore, padding included), "name": str, "spacing": (d, h, w) mm,
    "start": the patch's first voxel in the volume (negative where it overhangs)}.

    `intensity` (see `segattn.data.intensity`) normalises the whole volume before cropping, so a
    per-volume z-score measures the volume, not the patch. `transform` (an `A.Compose` over the
    "volume" and "mask3d" targets) then augments the patch. Keys: an index, or (epoch, index).
    `context` (c_d, c_h, c_w) widens the box drawn by that many voxels on both sides of each axis
    (padded as above where it leaves the volume): 2.5-D training draws one slice, (1, h, w), and
    takes its neighbours as context (`segattn.data.slices`). `geometry` (`segattn.data.geometry`)
    first brings each volume into the training grid (reoriented, resampled). `per_volume` patches
    are drawn from each volume per epoch: index i is a patch of volume i mod len(dataset), each
    seeded by its own index, so an epoch is len(dataset) × per_volume patches. `cache_dir` (a folder)
    keeps each volume prepared (grid, intensity) after its first read (`segattn.data.prepared`).
    """

    def __init__(
        self,
        dataset: VolumeDataset,
        patch_size: Sequence[int],
        foreground: float = 0.33,
        seed: int = 0,
        intensity: IntensitySpec | None = None,
        transform: A.Compose | None = None,
        context: Sequence[int] = (0, 0, 0),
        geometry: Geometry | None = None,
        per_volume: int = 1,
        cache_dir: str | os.PathLike | None = None,
    ) -> None:
        check_count("per_volume", per_volume)
        self.dataset = dataset
        self.per_volume = per_volume
        self.patch_size = check_counts("patch_size", patch_size, 3, "d, h, w")
        self.context = tuple(context)
        if not isinstance(foreground, (int, float)) or not 0 <= foreground <= 1:
            raise InputError(f"foreground: expected a share between 0 and 1, got {foreground!r}")
        self.foreground = float(foreground)
        self.seed = int(seed)
        self.transform = transform
        self.volumes = PreparedVolumes(dataset, intensity, geometry, cache_dir)  # checks the intensity spec

    def __len__(self) -> int:
        return len(self.dataset) * self.per_volume

    def __getitem__(self, key: int | tuple[int, int]) -> Sample:
        epoch, index = key if isinstance(key, tuple) else (0, key)
        volume = self.volumes[index % len(self.dataset)]
        rng = np.random.default_rng(sample_seed(self.seed, epoch, index))
        foreground = rng.random() < self.foreground
        start = patch_start(volume.mask, self.patch_size, rng, foreground, volume.locations)
        start = tuple(s - c for s, c in zip(start, self.context, strict=True))
        size = tuple(p + 2 * c for p, c in zip(self.patch_size, self.context, strict=True))
        image, mask = crop(volume.image, start, size, 0), crop(volume.mask, start, size, IGNORE_INDEX)
        if self.transform is not None:
            self.transform.set_random_seed(sample_seed(self.seed, epoch, index, stream=1))
            out = self.transform(volume=np.moveaxis(image, 0, -1), mask3d=mask)
            image, mask = np.moveaxis(out["volume"], -1, 0), out["mask3d"]
        return {
            "image": torch.from_numpy(np.ascontiguousarray(image)),  # a flip leaves negative strides
            "mask": torch.from_numpy(mask.astype(np.int64)),
            "name": volume.name,
            "spacing": volume.spacing,
            "start": start,
        }


def patch_start(
    mask: np.ndarray,
    patch_size: tuple[int, int, int],
    rng: np.random.Generator,
    foreground: bool,
    locations: dict[int, np.ndarray] | None = None,
) -> tuple[int, int, int]:
    """The first voxel of a patch of `mask` (D×H×W): around a labelled voxel when `foreground`
    and the volume has one, else uniform. Per axis the start lies in [min(0, n − p), max(0, n − p)].
    `locations`: the mask's `class_locations` where known (a cached volume), else found here."""
    low = [min(0, n - p) for n, p in zip(mask.shape, patch_size, strict=True)]
    high = [max(0, n - p) for n, p in zip(mask.shape, patch_size, strict=True)]
    if foreground and locations is None:
        locations = class_locations(mask)
    if foreground and locations:
        voxels = locations[rng.choice(sorted(locations))]
        centre = np.unravel_index(int(voxels[rng.integers(len(voxels))]), mask.shape)
        start = [int(np.clip(c - p // 2, lo, hi)) for c, p, lo, hi in zip(centre, patch_size, low, high, strict=True)]
    else:
        start = [int(rng.integers(lo, hi + 1)) for lo, hi in zip(low, high, strict=True)]
    return tuple(start)  # type: ignore[return-value]


def crop(array: np.ndarray, start: Sequence[int], patch_size: Sequence[int], fill: float) -> np.ndarray:
    """The `patch_size` box at `start` of the last three axes of `array` (…×D×H×W), padded with
    `fill` where the box lies outside the array."""
    spatial = array.shape[-3:]
    out = np.full((*array.shape[:-3], *patch_size), fill, dtype=array.dtype)
    source, target = [], []
    for s, p, n in zip(start, patch_size, spatial, strict=True):
        a, b = max(s, 0), min(s + p, n)
        source.append(slice(a, b))
        target.append(slice(a - s, b - s))
    out[(..., *target)] = array[(..., *source)]
    return out
