"""ImageMaskFolder: images and label images in two folders, paired by name."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np

from segattn.data.base import Sample, SegDataset
from segattn.data.io import KINDS, read_image, read_mask
from segattn.data.splits import SplitSpec, select
from segattn.errors import InputError, MissingPathError
from segattn.labels import IGNORE_INDEX

KEY = "{id}"


class ImageMaskFolder(SegDataset):
    """Semantic segmentation from an image folder and a mask folder.

    Pairing: by file stem (`a.jpg` ↔ `a.png`), or by patterns that share a key, e.g. DRIVE's
    `image_pattern="{id}_training.tif"`, `mask_pattern="{id}_manual1.gif"`. The sample key is
    the stem or the `{id}` part; `split` (see `segattn.data.splits`) selects samples by key.
    Every image needs a mask and every mask an image: nothing is silently dropped.

    Labels: `value_map` maps stored mask values to class indices (e.g. {0: 0, 255: 1} for a
    0/255 binary mask, {11: 255} style entries for void → ignore); without it, stored values
    must be class indices 0..K−1 (255 too is an error then: a binary 0/255 mask read as
    "ignore" would silently lose its foreground; map it explicitly). A value outside the map is
    an error naming the file and the values. `roi_dir` (+ `roi_pattern`) gives a region-of-interest mask
    per image; pixels where it is 0 become 255 (ignore), e.g. DRIVE's field of view.

    Item: {"image": uint8/uint16 H×W×C (C = `channels`), "mask": int64 H×W, "name": image file name}.
    """

    def __init__(
        self,
        images_dir: str | os.PathLike,
        masks_dir: str | os.PathLike,
        classes: list[str],
        image_pattern: str | None = None,
        mask_pattern: str | None = None,
        value_map: dict[int, int] | None = None,
        roi_dir: str | os.PathLike | None = None,
        roi_pattern: str | None = None,
        channels: int = 3,
        split: SplitSpec | None = None,
        transform: Callable[..., dict] | None = None,
    ) -> None:
        super().__init__(transform)
        self.images_dir, self.masks_dir = Path(images_dir), Path(masks_dir)
        self.roi_dir = Path(roi_dir) if roi_dir is not None else None
        for name, folder in (("images_dir", self.images_dir), ("masks_dir", self.masks_dir), ("roi_dir", self.roi_dir)):
            if folder is not None and not folder.is_dir():
                raise MissingPathError(f"{name}: {folder} is not a folder", folder)
        if len(classes) < 2:
            raise InputError(f"classes: expected at least 2 names (background included), got {classes}")
        if channels not in (1, 3):
            raise InputError(f"channels: expected 1 or 3, got {channels}")
        if (image_pattern is None) != (mask_pattern is None):
            raise InputError("image_pattern and mask_pattern go together: give both or neither")
        self.classes = list(classes)
        self.in_channels = channels
        self.lut = label_lut(value_map, len(classes))
        images = files_by_key(self.images_dir, image_pattern)
        masks = files_by_key(self.masks_dir, mask_pattern)
        unpaired = sorted(set(images) ^ set(masks))
        if unpaired:
            raise InputError(
                f"{self.images_dir} and {self.masks_dir}: {len(unpaired)} sample(s) have an image or a mask "
                f"but not both, e.g. {unpaired[:5]}"
            )
        rois = files_by_key(self.roi_dir, roi_pattern) if self.roi_dir is not None else None
        if rois is not None and set(rois) != set(images):
            missing = sorted(set(images) - set(rois))
            raise InputError(f"{self.roi_dir}: no region-of-interest mask for {missing[:5]}")
        self.keys = select(list(images), split, str(self.images_dir))
        self.samples = [(images[k], masks[k], rois[k] if rois else None) for k in self.keys]

    @property
    def image_paths(self) -> list[Path]:
        return [image for image, _, _ in self.samples]

    def __len__(self) -> int:
        return len(self.samples)

    def load(self, index: int) -> Sample:
        image_path, mask_path, roi_path = self.samples[index]
        image = read_image(image_path, self.in_channels)
        raw = read_mask(mask_path)
        if raw.shape != image.shape[:2]:
            raise InputError(
                f"{mask_path}: mask is {raw.shape[1]}×{raw.shape[0]} but image {image_path.name} is "
                f"{image.shape[1]}×{image.shape[0]}"
            )
        mask = apply_lut(self.lut, raw, mask_path)
        if roi_path is not None:
            roi = read_mask(roi_path)
            if roi.shape != raw.shape:
                raise InputError(f"{roi_path}: region of interest is {roi.shape[::-1]}, image is {raw.shape[::-1]}")
            mask[roi == 0] = IGNORE_INDEX
        return {"image": image, "mask": mask, "name": image_path.name}


def files_by_key(folder: Path, pattern: str | None, kind: str = "image") -> dict[str, Path]:
    """{sample key: path} of the `kind` files ("image" or "volume", by suffix; any case; several
    dots allowed, e.g. ".nii.gz") in `folder`, keyed by the name without that suffix or by the
    pattern's {id}. A file of the other kind (a volume in an image folder, or the reverse) is an
    InputError naming it: it would otherwise be silently left out."""
    suffixes = KINDS[kind]
    other = next(k for k in KINDS if k != kind)
    names = sorted(p for p in folder.iterdir() if p.is_file())
    strays = [p for p in names if matched_suffix(p.name, KINDS[other]) and not matched_suffix(p.name, suffixes)]
    if strays:
        article = "an" if other == "image" else "a"
        raise InputError(
            f"{strays[0]}: {article} {other} file in a folder of {kind}s; expected {kind} files only "
            f"({', '.join(suffixes)}): move it out, or use {article} {other} data set"
        )
    files = [p for p in names if matched_suffix(p.name, suffixes)]
    if not files:
        raise InputError(f"{folder}: no {kind} files ({', '.join(suffixes)})")
    if pattern is None:
        by_key: dict[str, Path] = {}
        for path in files:
            stem = path.name[: -len(matched_suffix(path.name, suffixes))]
            if stem in by_key:
                raise InputError(f"{folder}: {by_key[stem].name} and {path.name} share the stem {stem!r}")
            by_key[stem] = path
        return by_key
    if pattern.count(KEY) != 1:
        raise InputError(f"pattern {pattern!r}: expected exactly one {KEY}")
    head, tail = pattern.split(KEY)
    regex = re.compile(re.escape(head) + "(?P<id>.+)" + re.escape(tail))
    by_key = {m["id"]: p for p in files if (m := regex.fullmatch(p.name))}
    if not by_key:
        raise InputError(
            f"pattern {pattern!r} matches no file in {folder} (it holds e.g. {[p.name for p in files[:3]]})"
        )
    return by_key


def matched_suffix(name: str, suffixes: tuple[str, ...]) -> str:
    """The longest of `suffixes` that `name` ends with after a non-empty stem (case-insensitive:
    as `Path.suffix`, a bare ".png" has none), or ""."""
    return max((s for s in suffixes if name.lower().endswith(s) and len(name) > len(s)), key=len, default="")


def label_lut(value_map: dict[int, int] | None, num_classes: int) -> np.ndarray:
    """A lookup table stored value → class index (−1 = not allowed) for 8- and 16-bit masks."""
    lut = np.full(65536, -1, np.int64)
    if value_map is None:  # 255 is not implied: a 0/255 binary mask must be mapped, not read as ignore
        lut[:num_classes] = np.arange(num_classes)
        return lut
    for stored, label in value_map.items():
        if not 0 <= int(stored) < 65536:
            raise InputError(f"value_map: stored value {stored} is not an 8- or 16-bit mask value")
        if not (0 <= int(label) < num_classes or int(label) == IGNORE_INDEX):
            raise InputError(f"value_map: {stored} → {label}, but classes are 0..{num_classes - 1} (or 255 = ignore)")
        lut[int(stored)] = int(label)
    return lut


def apply_lut(lut: np.ndarray, raw: np.ndarray, path: Path) -> np.ndarray:
    if raw.dtype not in (np.uint8, np.uint16):
        raise InputError(f"{path}: expected an 8- or 16-bit label image, got {raw.dtype}")
    mask = lut[raw]
    if (mask < 0).any():
        bad = np.unique(raw[mask < 0])
        allowed = np.flatnonzero(lut >= 0)
        hint = " (a 0/255 binary mask needs value_map {0: 0, 255: 1}; void as ignore: 255: 255)" if 255 in bad else ""
        raise InputError(
            f"{path}: mask values {bad[:10].tolist()} are not in the value map (allowed: {allowed[:20].tolist()}){hint}"
        )
    return mask
