"""The input side of inference: paths, folders, globs and arrays expanded to a list of images (or
volumes), and read (and transformed) by a Dataset that DataLoader workers can run. A folder or glob
gives its images or its volume files (`input_kind`), never a mix; a file of the kind the network
does not take is an InputError naming it and the kind expected (`check_kind`)."""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from segattn.data.base import image_to_tensor
from segattn.data.io import IMAGE_SUFFIXES, KINDS, VOLUME_SUFFIXES, match_channels, read_image
from segattn.data.pipeline_checks import check_pixel_depth
from segattn.data.volume_io import Volume
from segattn.errors import InputError, MissingPathError
from segattn.window_transform import window_normalize

ImageInput = str | os.PathLike | np.ndarray | Volume  # a Volume: for volume networks


class InputImages(Dataset):
    """Inputs read and transformed (so that DataLoader workers can do it). raw: the pixels left
    for the device to normalise, C×H×W uint8, or int32 for 16-bit images (torch's uint16 has few
    CUDA kernels). windows (for the sliding window): an image whose transform has a window-wise
    form (`window_normalize`) is left as decoded, "tensor" H×W×C uint8/uint16 (no copy), with
    that form as "normalize"; any other is transformed whole. Either way a 16-bit image must
    suit `transform` (see `check_pixel_depth`). skip_errors: an input that raises an InputError
    gives {"name", "error": message} instead."""

    def __init__(
        self,
        items: list[ImageInput],
        channels: int,
        transform: Any,
        raw: bool = False,
        windows: bool = False,
        skip_errors: bool = False,
    ) -> None:
        self.items, self.channels, self.transform, self.raw, self.windows = items, channels, transform, raw, windows
        self.skip_errors = skip_errors

    def __len__(self) -> int:
        return len(self.items)

    def load(self, index: int) -> np.ndarray:
        """The input as uint8/uint16 H×W×C, before the transform."""
        return load_input(self.items[index], self.channels)

    def name(self, index: int) -> str:
        item = self.items[index]
        return f"array input {item.shape}" if isinstance(item, np.ndarray) else str(item)

    def __getitem__(self, index: int) -> dict[str, Any]:
        try:
            return {"name": self.name(index), **self.prepare(index)}
        except InputError as exc:
            if not self.skip_errors:
                raise
            return {"name": self.name(index), "error": str(exc)}

    def prepare(self, index: int) -> dict[str, Any]:
        image = self.load(index)
        check_pixel_depth(self.transform, image, self.name(index))
        normalize = window_normalize(self.transform, image) if self.windows else None
        if normalize is not None:
            pixels = torch.from_numpy(np.ascontiguousarray(image))
            return {"size": image.shape[:2], "tensor": pixels, "normalize": normalize}
        if self.raw:
            raw = np.ascontiguousarray(image.transpose(2, 0, 1))
            return {
                "size": image.shape[:2],
                "tensor": torch.from_numpy(raw.astype(np.int32, copy=False) if raw.dtype == np.uint16 else raw),
            }
        return {"size": image.shape[:2], "tensor": image_to_tensor(self.transform(image=image)["image"])}


def input_kind(item: ImageInput) -> str | None:
    """ "image" or "volume" by a path's suffix (.nii.gz whole), a Volume's or nothing else's."""
    if isinstance(item, Volume):
        return "volume"
    if isinstance(item, np.ndarray):
        return None
    name = Path(item).name.lower()
    return next((kind for kind, suffixes in KINDS.items() if name.endswith(suffixes)), None)


def check_kind(item: ImageInput, spatial_dims: int) -> None:
    """An InputError naming a file (or Volume) of the kind a network of `spatial_dims` does not take."""
    kind, expected = input_kind(item), "volume" if spatial_dims == 3 else "image"
    if kind not in (None, expected):
        source = item.path if isinstance(item, Volume) else item
        raise InputError(
            f"{source}: the checkpoint's network is {spatial_dims}-D and takes {expected}s "
            f"({', '.join(KINDS[expected])}), not {kind}s"
        )


def load_input(item: ImageInput, channels: int) -> np.ndarray:
    check_kind(item, 2)
    if isinstance(item, np.ndarray):
        return match_channels(item, channels, f"array input {item.dtype} {item.shape}")
    return read_image(item, channels)


def one_image(item: Any) -> ImageInput:
    """`item` if it is one image (an array, a Volume, or a path that is not a folder or a pattern)."""
    if isinstance(item, (np.ndarray, Volume)):
        return item
    path_like = isinstance(item, (str, os.PathLike))
    if not path_like or Path(item).is_dir() or (glob.has_magic(str(item)) and not Path(item).is_file()):
        raise InputError(f"attention: takes one image file or array, got {item!r}; predict takes folders, globs, lists")
    return item


def expand_inputs(inputs: ImageInput | Sequence[ImageInput]) -> list[ImageInput]:
    """A flat list of arrays, Volumes and paths; folders and globs become their image files, or
    their volume files, sorted by name (`listed`)."""
    one = isinstance(inputs, (str, os.PathLike, np.ndarray, Volume))
    items: Iterable[ImageInput] = [inputs] if one else inputs
    expanded: list[ImageInput] = []
    for item in items:
        if isinstance(item, (np.ndarray, Volume)):
            expanded.append(item)
            continue
        path = Path(item)
        if path.is_dir():
            expanded.extend(listed(path.iterdir(), f"{path}: the folder holds", str(path / "*")))
        elif path.is_file():
            expanded.append(path)
        elif glob.has_magic(str(item)):
            expanded.extend(listed(map(Path, glob.glob(str(item))), f"{item}: the pattern matches", str(item)))
        else:
            raise MissingPathError(f"{path}: no such image or volume file, folder or pattern")
    return expanded


def listed(paths: Iterable[Path], where: str, pattern: str) -> list[Path]:
    """The image files, or the volume files, among `paths`, sorted; none, or both kinds, is an
    InputError naming `where` (a folder or a pattern)."""
    files = sorted(p for p in paths if p.is_file() and input_kind(p))
    if not files:
        suffixes = ", ".join(IMAGE_SUFFIXES + VOLUME_SUFFIXES)
        raise InputError(f"{where} no images or volumes ({suffixes})")
    first = {input_kind(p): p.name for p in reversed(files)}  # each kind's first file
    if len(first) > 1:
        raise InputError(
            f"{where} both images ({first['image']}, ...) and volumes ({first['volume']}, ...); "
            f"give one kind, e.g. '{pattern}.nii.gz'"
        )
    return files
