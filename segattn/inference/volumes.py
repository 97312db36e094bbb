"""Inference on volumes: the Segmenter's path for a network built with `spatial_dims: 3` (or a
2-D one run over volumes' slices, `segattn.inference.slices`).

Inputs: volume files (.nii, .nii.gz through nibabel; .nrrd, .nhdr, .mha, .mhd through
SimpleITK), `Volume` objects (`read_volume`'s, e.g. of a DICOM folder) and numpy arrays,
C×D×H×W or D×H×W (one channel), in voxel order as `read_volume` gives them (D×H×W = the file's
i, j, k axes): never transposed, resampled or resized. Every input, an array as much as a file,
holds raw intensities (MR values, CT Hounsfield units) and goes through the checkpoint's
intensity spec (`segattn.data.intensity.normalize_volume`, record["intensity"]), so an array
that is already normalised would be normalised twice; a checkpoint without a spec takes the
voxels as float32 as they are.

Window: with `slide` given, every volume is tiled by `SlidingWindow` (one side, or (d, h, w)
sides; a side longer than the volume shrinks to it). Without, a volume of at most `WHOLE_VOXELS`
voxels runs in one forward, and a larger one is tiled with `DEFAULT_WINDOW` (overlap 0.25,
Gaussian blending), so that a CT of 512×512×300 does not need a forward of its whole extent.
Volumes run one at a time; `batch_size` is the number of windows run together.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import torch

from segattn.data.geometry import Geometry, reordered, resamples, restore_axes, to_training_grid
from segattn.data.intensity import IntensitySpec, normalize_volume
from segattn.data.volume_io import Volume, check_finite, image_array, read_volume
from segattn.errors import InputError
from segattn.inference.inputs import ImageInput, InputImages, check_kind
from segattn.inference.options import DEFAULT_OVERLAP
from segattn.inference.slices import SliceBySlice
from segattn.inference.strategies import Inferer, SlidingWindow, WholeImage

WHOLE_VOXELS = 2**22  # 128³ × 2: a volume up to this runs in one forward when `slide` is None
DEFAULT_WINDOW = (128, 128, 128)  # the window of a larger one (nnU-Net's usual 3-D patch)


class InputVolumes(InputImages):
    """Volumes read and normalised (as `InputImages` reads images, DataLoader workers included):
    {"name", "size": (D, H, W), "tensor": float32 C×D×H×W} per input, or {"name", "error"} with
    skip_errors. intensity: the checkpoint's spec, or None (voxels as they are)."""

    def __init__(
        self,
        items: list[ImageInput],
        channels: int,
        intensity: IntensitySpec | None,
        skip_errors: bool = False,
        geometry: Geometry | None = None,
    ) -> None:
        super().__init__(items, channels, None, skip_errors=skip_errors)
        self.intensity, self.geometry = intensity, geometry

    def name(self, index: int) -> str:
        item = self.items[index]
        return str(item.path) if isinstance(item, Volume) else super().name(index)

    def prepare(self, index: int) -> dict[str, Any]:
        name, item = self.name(index), self.items[index]
        if self.geometry is not None:  # the training grid: the scan's affine and spacing are needed
            item = scan(item, name, self.geometry)
        image = check_finite(volume_array(item, self.channels, name), name)
        sample: dict[str, Any] = {"size": tuple(image.shape[1:])}
        if self.geometry is not None:
            image, _, _, change = to_training_grid(image, None, item.affine, item.spacing, self.geometry)
            if change is not None:  # nested tuples: they cross DataLoader workers unconverted
                sample = {"size": tuple(reordered(sample["size"], change)), "change": tuple(map(tuple, change))}
        if self.intensity is not None:
            image = check_finite(normalize_volume(image, self.intensity), f"{name} (after intensity normalisation)")
        return {**sample, "tensor": torch.from_numpy(image)}


def scan(item: ImageInput, name: str, geometry: Geometry) -> Volume:
    """A volume input as a Volume (its affine and spacing), for a network trained in `geometry`'s
    grid; an array, which has neither, is an InputError."""
    check_kind(item, 3)
    if isinstance(item, np.ndarray):
        raise InputError(
            f"{name}: the network was trained on volumes brought to orientation {geometry['orientation']} and "
            f"spacing {geometry['spacing']} mm, which needs the scan's affine and spacing; pass its file or a "
            "segattn Volume (segattn.data.read_volume), not an array"
        )
    return item if isinstance(item, Volume) else read_volume(item)


def volume_array(item: ImageInput, channels: int, name: str) -> np.ndarray:
    """A volume input (path, Volume or array; see the module docstring) as float32 C×D×H×W with
    C = `channels`; anything else is an InputError naming it."""
    check_kind(item, 3)
    if isinstance(item, np.ndarray):
        array = item[None] if item.ndim == 3 and channels == 1 else item
        if array.ndim != 4 or array.shape[0] != channels or 0 in array.shape or array.dtype.kind not in "biuf":
            raise InputError(
                f"{name}: expected a volume D×H×W (one channel) or C×D×H×W with C = {channels}, "
                f"of numbers, got {item.dtype} {item.shape}"
            )
        return np.ascontiguousarray(array, dtype=np.float32)
    volume = item if isinstance(item, Volume) else read_volume(item)
    image = image_array(volume)
    if image.shape[0] != channels:
        raise InputError(f"{name}: has {image.shape[0]} channel(s), the network takes {channels}")
    return image


def volume_strategy(strategy: Inferer, size: tuple[int, ...], batch_size: int, device: torch.device) -> Inferer:
    """`strategy` (from `build_strategy`) for a volume of `size`; without a sliding window, a
    volume of more than `WHOLE_VOXELS` voxels is tiled by `DEFAULT_WINDOW` around it (not one run
    slice by slice, whose 2-D forwards are small already)."""
    if isinstance(strategy, (SlidingWindow, SliceBySlice)) or math.prod(size) <= WHOLE_VOXELS:
        return strategy
    return SlidingWindow(DEFAULT_WINDOW, DEFAULT_OVERLAP, batch_size, "gaussian", device, inner=strategy)


def predict_volumes(
    segmenter: Any, samples: Iterable[dict[str, Any]], strategy: Inferer, batch_size: int, return_probs: bool
) -> Iterator[np.ndarray | InputError]:
    """`Segmenter.predict_iter` for volumes: the samples of `InputVolumes`, one at a time, through
    `volume_strategy`: D×H×W labels (or float32 K×D×H×W probabilities), or an InputError in place
    of an input that could not be read. Labels are reduced slab by slab when tiled
    (`Segmenter.slide`). Logits are averaged as softmax probabilities whenever views or windows are,
    and resampled back from a training grid's spacing as probabilities too."""
    for sample in samples:
        if "error" in sample:
            yield InputError(sample["error"])
            continue
        chosen = volume_strategy(strategy, sample["size"], batch_size, segmenter.device)
        alone = chosen.inner if isinstance(chosen, SliceBySlice) else chosen  # no views or windows: no average
        averaged = not isinstance(alone, WholeImage) or resamples(segmenter.geometry)  # probabilities, as nnU-Net
        network = functools.partial(segmenter.forward, softmax=return_probs or averaged)
        if isinstance(chosen, SlidingWindow):
            results = [segmenter.slide(sample, chosen, network, return_probs)]
        else:
            results = segmenter.run_batch([sample], chosen, network, return_probs)
        for result in results:  # back in the input's own axes (a training grid reoriented them)
            yield restore_axes(result, sample.get("change"), channels_first=return_probs)
