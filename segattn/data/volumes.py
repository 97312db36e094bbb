"""Volume data sets: the 3-D item contract, a pair of folders, and the Decathlon layout.

Axes as `segattn.data.volume_io` reads them: the file's own voxel order (i, j, k), called D×H×W,
never transposed or resampled. Item: {"image": float32 C×D×H×W, "mask": int64 D×H×W (class
indices, 255 = ignore), "name": str, "spacing": (d, h, w) voxel size in mm, "affine": float64
4×4 voxel → RAS+ mm}. A label volume must
lie in its image's grid: the same shape and affine (to `AFFINE_TOLERANCE`), else the pair is an
error naming both files.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from segattn.data.base import Sample, SegDataset
from segattn.data.folder import KEY, files_by_key, label_lut, matched_suffix
from segattn.data.splits import SplitSpec, select
from segattn.data.volume_io import VOLUME_SUFFIXES, check_finite, image_array, read_label_volume, read_volume
from segattn.errors import InputError, MissingPathError

# How far a label volume's affine may stray from its image's (mm, and mm per voxel) before the
# pair counts as two grids: rounding in headers, not a shift anyone could see.
AFFINE_TOLERANCE = 1e-3


class VolumeDataset(SegDataset):
    """Base class of volume data sets: `load(i)` returns the item above; `ds[i]` is that item,
    or `transform(item)` when a transform is given (a callable on the whole item, as 3-D
    augmentation needs the image, mask and spacing together). Subclasses set `classes`,
    `in_channels`, `channel_names`, `value_map` and `samples` (image path, label path, key)."""

    classes: list[str]
    channel_names: list[str]
    value_map: dict[int, int] | None = None
    samples: list[tuple[Path, Path, str]]

    def __init__(self, transform: Callable[[Sample], Sample] | None = None) -> None:
        super().__init__(transform)

    @property
    def image_paths(self) -> list[Path]:
        return [image for image, _, _ in self.samples]

    @property
    def keys(self) -> list[str]:
        return [key for _, _, key in self.samples]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> Sample:
        item = self.load(index)
        return item if self.transform is None else self.transform(item)

    def load(self, index: int) -> Sample:
        image_path, label_path, _ = self.samples[index]
        volume = read_volume(image_path)
        mask, labels = read_label_volume(label_path, self.value_map, self.classes)
        if labels.shape != volume.shape:
            raise InputError(
                f"{label_path}: labels are {'×'.join(map(str, labels.shape))} but image {image_path} is "
                f"{'×'.join(map(str, volume.shape))}"
            )
        gap = float(np.abs(labels.affine - volume.affine).max())
        if gap > AFFINE_TOLERANCE:
            raise InputError(
                f"{label_path}: labels lie in another grid than image {image_path} (their affines differ by up to "
                f"{gap:.4g}); expected the image's own grid"
            )
        image = check_finite(image_array(volume), image_path)
        if image.shape[0] != self.in_channels:
            raise InputError(f"{image_path}: {image.shape[0]} channel(s), expected {self.in_channels}")
        return {
            "image": image,
            "mask": mask,
            "name": image_path.name,
            "spacing": volume.spacing,
            "affine": volume.affine,
        }


def check_classes(classes: list[str], value_map: dict[int, int] | None) -> dict[int, int] | None:
    """Checks the class names and the value map as ImageMaskFolder does (errors name the key)."""
    if len(classes) < 2:
        raise InputError(f"classes: expected at least 2 names (background included), got {classes}")
    label_lut(value_map, len(classes))
    return None if value_map is None else {int(k): int(v) for k, v in value_map.items()}


class VolumeFolder(VolumeDataset):
    """Volumes in an image folder and a label folder, paired by name as `ImageMaskFolder` pairs
    them (`a.nii.gz` ↔ `a.nii.gz` or `a.nrrd`; or `image_pattern`/`mask_pattern` sharing
    `{id}`): every image needs labels and every label file an image. `value_map` and `split`
    work as in ImageMaskFolder. `channels` is C of every scan (a 4-D scan's last axis)."""

    def __init__(
        self,
        images_dir: str | os.PathLike,
        masks_dir: str | os.PathLike,
        classes: list[str],
        image_pattern: str | None = None,
        mask_pattern: str | None = None,
        value_map: dict[int, int] | None = None,
        channels: int = 1,
        split: SplitSpec | None = None,
        transform: Callable[[Sample], Sample] | None = None,
    ) -> None:
        super().__init__(transform)
        self.images_dir, self.masks_dir = Path(images_dir), Path(masks_dir)
        for name, folder in (("images_dir", self.images_dir), ("masks_dir", self.masks_dir)):
            if not folder.is_dir():
                raise MissingPathError(f"{name}: {folder} is not a folder", folder)
        if (image_pattern is None) != (mask_pattern is None):
            raise InputError("image_pattern and mask_pattern go together: give both or neither")
        for pattern in (image_pattern, mask_pattern):
            if pattern is not None and pattern.count(KEY) != 1:
                raise InputError(f"pattern {pattern!r}: expected exactly one {KEY}")
        if not isinstance(channels, int) or channels < 1:
            raise InputError(f"channels: expected an integer ≥ 1, got {channels!r}")
        self.classes = list(classes)
        self.value_map = check_classes(self.classes, value_map)
        self.in_channels = channels
        self.channel_names = [f"channel {c}" for c in range(channels)]
        images = files_by_key(self.images_dir, image_pattern, "volume")
        masks = files_by_key(self.masks_dir, mask_pattern, "volume")
        unpaired = sorted(set(images) ^ set(masks))
        if unpaired:
            raise InputError(
                f"{self.images_dir} and {self.masks_dir}: {len(unpaired)} sample(s) have an image or labels "
                f"but not both, e.g. {unpaired[:5]}"
            )
        keys = select(list(images), split, str(self.images_dir))
        self.samples = [(images[k], masks[k], k) for k in keys]


class Decathlon(VolumeDataset):
    """A Medical Segmentation Decathlon task folder: `root/dataset.json` lists the training
    pairs ("training": [{"image": "./imagesTr/x.nii.gz", "label": "./labelsTr/x.nii.gz"}, ...]),
    the class names ("labels": {"0": "background", ...}, index = label value) and the channels
    ("modality": {"0": "MRI", ...}, index = the scan's last axis). The sample key is the image
    file name without its suffix; `split` selects keys (see `segattn.data.splits`). A listed
    file that is missing is an error naming it."""

    def __init__(
        self,
        root: str | os.PathLike,
        split: SplitSpec | None = None,
        value_map: dict[int, int] | None = None,
        transform: Callable[[Sample], Sample] | None = None,
    ) -> None:
        super().__init__(transform)
        self.root = Path(root)
        index = self.root / "dataset.json"
        if not index.is_file():
            raise MissingPathError(f"{index}: Decathlon dataset.json not found", index)
        try:
            spec = json.loads(index.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(f"{index}: not a readable JSON file ({exc})") from exc
        self.classes = numbered_names(spec, "labels", index)
        self.channel_names = numbered_names(spec, "modality", index)
        self.in_channels = len(self.channel_names)
        self.value_map = check_classes(self.classes, value_map)
        pairs: dict[str, tuple[Path, Path]] = {}
        training = spec.get("training")
        if not isinstance(training, list) or not training:
            raise InputError(f"{index}: 'training' must be a non-empty list of image/label pairs")
        for entry in training:
            if not isinstance(entry, dict) or not {"image", "label"} <= set(entry):
                raise InputError(f"{index}: a 'training' entry needs 'image' and 'label', got {entry!r}")
            image, label = self.root / entry["image"], self.root / entry["label"]
            for path in (image, label):
                if not path.exists():
                    raise MissingPathError(f"{path}: listed in {index} but not found", path)
            key = image.name[: len(image.name) - len(matched_suffix(image.name, VOLUME_SUFFIXES))]
            if key in pairs:
                raise InputError(f"{index}: 'training' lists {key!r} twice")
            pairs[key] = (image.resolve(), label.resolve())
        keys = select(list(pairs), split, str(index))
        self.samples = [(*pairs[k], k) for k in keys]


def numbered_names(spec: dict, key: str, source: Path) -> list[str]:
    """{"0": name, "1": name, ...} from dataset.json as a list; the numbers must be 0..n−1."""
    table = spec.get(key)
    if not isinstance(table, dict) or not table:
        raise InputError(f"{source}: '{key}' must map numbers to names, got {table!r}")
    try:
        numbered = {int(k): str(v) for k, v in table.items()}
    except ValueError:
        raise InputError(f"{source}: '{key}' keys must be numbers, got {sorted(table)}") from None
    if sorted(numbered) != list(range(len(numbered))):
        raise InputError(f"{source}: '{key}' must be numbered 0..{len(numbered) - 1}, got {sorted(numbered)}")
    return [numbered[i] for i in range(len(numbered))]
