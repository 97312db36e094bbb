"""Volumes as training reads them: in the training grid (`segattn.data.geometry`), normalised
(`segattn.data.intensity`), with the voxels of each labelled class listed for foreground
sampling. Every training patch and validation volume is cut from one of these.

Without a cache a volume is read and prepared again for every patch drawn from it, which costs
next to nothing for small MR crops and seconds for a CT scan. With a `cache_dir` folder
(`data.cache_dir`) each volume is prepared once and kept as .npy files (image float32 C×D×H×W, labels
uint8 D×H×W, one flat-index array per labelled class) that later reads map into memory, so a
patch reads its own box and not the scan: what nnU-Net's preprocessing does for its training.
Written here because neither Albumentations nor Lightning keeps prepared arrays between epochs,
and MONAI's PersistentDataset (pickled items, read whole) is not a dependency.

A cache entry is named by a hash of everything its arrays depend on: both files' paths, sizes and
modification times, the class count, the value map, the geometry and the intensity spec (with
a CT spec's training statistics). A changed file or setting is prepared afresh under a new name;
old entries stay until the folder is deleted. Entries are written atomically (`atomic_write`),
the metadata last, so that processes sharing a cache (loader workers, ranks, folds) never read a
half-written entry.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

from segattn.atomic import atomic_write, writable_folder
from segattn.data.geometry import Geometry, to_training_grid
from segattn.data.intensity import IntensitySpec, check_intensity, normalize_volume
from segattn.data.volumes import VolumeDataset
from segattn.labels import IGNORE_INDEX

CACHE_VERSION = 1  # bump when the preparation or the files change


class PreparedVolume(NamedTuple):
    """image float32 C×D×H×W (normalised; read-only when memory-mapped), mask uint8 D×H×W (class
    indices, 255 = ignore), spacing (d, h, w) mm, the scan's file name, and locations: {class:
    int64 flat indices into D×H×W of its voxels, in C order} for each class other than 0 and 255
    present (`class_locations`), or None where not computed (uncached: found when a patch needs them)."""

    image: np.ndarray
    mask: np.ndarray
    spacing: tuple[float, ...]
    name: str
    locations: dict[int, np.ndarray] | None


def class_locations(mask: np.ndarray) -> dict[int, np.ndarray]:
    """{class: flat indices of its voxels} of a D×H×W label volume, background and ignore left out."""
    classes = [int(c) for c in np.unique(mask) if c not in (0, IGNORE_INDEX)]
    flat = mask.reshape(-1)
    return {c: np.flatnonzero(flat == c) for c in classes}


class PreparedVolumes:
    """`prepared[i]`: volume i of `dataset` as a PreparedVolume, prepared on each call or, with a
    `cache_dir` folder, once (see the module docstring)."""

    def __init__(
        self,
        dataset: VolumeDataset,
        intensity: IntensitySpec | None,
        geometry: Geometry | None = None,
        cache_dir: str | os.PathLike | None = None,
    ) -> None:
        self.dataset, self.geometry = dataset, geometry
        # as VolumePatches checks it, so that training and validation share cache entries
        self.intensity = None if intensity is None else check_intensity(intensity, dataset.in_channels)
        self.cache = None if cache_dir is None else Path(cache_dir)
        if self.cache is not None:
            writable_folder(self.cache, "cache_dir")

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> PreparedVolume:
        if self.cache is None:
            return self.prepare(index)
        stem = self.cache / self.entry_name(index)
        if not Path(f"{stem}.json").exists():
            self.store(self.prepare(index), stem)
        return self.read(stem)

    def prepare(self, index: int) -> PreparedVolume:
        item = self.dataset.load(index)
        image, mask, spacing = item["image"], item["mask"], item["spacing"]
        if self.geometry is not None:
            image, mask, spacing, _ = to_training_grid(image, mask, item["affine"], spacing, self.geometry)
        if self.intensity is not None:
            image = normalize_volume(image, self.intensity)
        mask = mask.astype(np.uint8)  # class indices < 255 (label_lut), 255 = ignore
        return PreparedVolume(image, mask, tuple(float(s) for s in spacing), item["name"], None)

    def entry_name(self, index: int) -> str:
        """`<scan stem>.<hash>`: the hash of the files' identity and the settings (module docstring)."""
        image, labels, _ = self.dataset.samples[index]
        stats = [(Path(p).resolve(), os.stat(p)) for p in (image, labels)]
        files = [[str(path), stat.st_size, stat.st_mtime_ns] for path, stat in stats]
        settings = {
            "version": CACHE_VERSION, "files": files, "classes": len(self.dataset.classes),
            "value_map": self.dataset.value_map, "geometry": self.geometry, "intensity": self.intensity,
        }  # fmt: skip
        digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]
        return f"{Path(image).name.split('.')[0]}.{digest}"

    @staticmethod
    def store(volume: PreparedVolume, stem: Path) -> None:
        locations = class_locations(volume.mask)
        arrays = {"image": volume.image, "mask": volume.mask} | {f"class{c}": v for c, v in locations.items()}
        for key, array in arrays.items():
            with atomic_write(f"{stem}.{key}.npy") as temporary, open(temporary, "wb") as file:
                np.save(file, np.ascontiguousarray(array))
        meta = {"name": volume.name, "spacing": list(volume.spacing), "classes": sorted(locations)}
        with atomic_write(f"{stem}.json") as temporary:
            temporary.write_text(json.dumps(meta))

    @staticmethod
    def read(stem: Path) -> PreparedVolume:
        meta = json.loads(Path(f"{stem}.json").read_text())

        def array(key: str) -> np.ndarray:
            return np.load(f"{stem}.{key}.npy", mmap_mode="r")

        locations = {c: array(f"class{c}") for c in meta["classes"]}
        return PreparedVolume(array("image"), array("mask"), tuple(meta["spacing"]), meta["name"], locations)
