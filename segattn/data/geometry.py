"""The training grid of volumes (optional): a canonical voxel orientation and a target spacing, and
the way back from it for predictions.

Spec {"orientation": axis codes | None, "spacing": [d, h, w] mm | None} (`data.orientation`,
`data.spacing`; stored in the checkpoint as "geometry"). Orientation: three of nibabel's axis
codes, one of L/R, A/P and S/I each, e.g. "RAS": the voxel axes are permuted and flipped (lossless,
nibabel's `io_orientation` / `apply_orientation`) so that they run towards those directions, as
closely as the scan's affine allows. Spacing, in the reoriented axis order: images are resampled
linearly (trilinear) and labels to the nearest voxel, to round(n · spacing / target) voxels per
axis. Without a spec (the default) volumes are used in their own grid, never resampled.

Predictions go back by the inverse steps: probabilities are resampled linearly to the reoriented
shape of the input (the Segmenter resizes to `size`), labelled, and their axes restored
(`restore_axes`), so a label map lies in the input's own grid.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from nibabel.orientations import apply_orientation, axcodes2ornt, io_orientation, ornt_transform

from segattn.errors import InputError

Geometry = dict[str, Any]
AXIS_CODES = ("LR", "PA", "IS")  # each axis code pairs one letter of each


def check_geometry(orientation: str | None, spacing: Sequence[float] | None) -> Geometry | None:
    """The spec of `data.orientation` and `data.spacing` (None when neither is given); anything
    else is an InputError naming the key."""
    if orientation is None and spacing is None:
        return None
    if orientation is not None:
        letters = orientation.upper() if isinstance(orientation, str) else ""
        pairs = sorted(next((i for i, pair in enumerate(AXIS_CODES) if c in pair), -1) for c in letters)
        if pairs != [0, 1, 2]:
            raise InputError(
                f"data.orientation: expected three axis codes, one of L/R, A/P and S/I each (e.g. 'RAS'), "
                f"got {orientation!r}"
            )
        orientation = letters
    if spacing is not None:
        ok = isinstance(spacing, (list, tuple)) and len(spacing) == 3
        if not ok or not all(isinstance(s, (int, float)) and not isinstance(s, bool) and s > 0 for s in spacing):
            raise InputError(f"data.spacing: expected three voxel sizes > 0 in mm (d, h, w), got {spacing!r}")
        spacing = [float(s) for s in spacing]
    return {"orientation": orientation, "spacing": spacing}


def resamples(geometry: Geometry | None) -> bool:
    """Whether the spec resamples (a prediction then goes back as probabilities, not logits)."""
    return geometry is not None and geometry["spacing"] is not None


def orientation_change(affine: np.ndarray, geometry: Geometry) -> np.ndarray | None:
    """nibabel's orientation transform from the scan's voxel axes to the spec's (None: none asked)."""
    if geometry["orientation"] is None:
        return None
    return ornt_transform(io_orientation(affine), axcodes2ornt(tuple(geometry["orientation"])))


def reorient(array: np.ndarray, change: np.ndarray | None, channels_first: bool) -> np.ndarray:
    """`array` (D×H×W, or C×D×H×W when channels_first) with its spatial axes moved by `change`."""
    if change is None:
        return array
    if channels_first:
        return np.moveaxis(apply_orientation(np.moveaxis(array, 0, -1), change), -1, 0)
    return apply_orientation(array, change)


def reordered(values: Sequence[Any], change: np.ndarray | None) -> list[Any]:
    """Per-axis values (spacing, shape) in the reoriented axis order."""
    if change is None:
        return list(values)
    out = list(values)
    for axis, (target, _) in enumerate(change):
        out[int(target)] = values[axis]
    return out


def target_shape(shape: Sequence[int], spacing: Sequence[float], geometry: Geometry) -> tuple[int, ...]:
    """The shape at the spec's spacing: round(n · spacing / target), at least 1, per axis."""
    if geometry["spacing"] is None:
        return tuple(shape)
    return tuple(max(1, round(n * s / t)) for n, s, t in zip(shape, spacing, geometry["spacing"], strict=True))


def resample(image: np.ndarray, shape: Sequence[int], labels: bool = False) -> np.ndarray:
    """C×D×H×W float32 images (trilinear) or D×H×W int64 labels (nearest) at `shape`."""
    if tuple(image.shape[-3:]) == tuple(shape):
        return image
    if labels:
        x = torch.from_numpy(np.ascontiguousarray(image)).to(torch.float32)[None, None]
        return F.interpolate(x, size=tuple(shape), mode="nearest-exact")[0, 0].to(torch.int64).numpy()
    x = torch.from_numpy(np.ascontiguousarray(image))[None]
    return F.interpolate(x, size=tuple(shape), mode="trilinear", align_corners=False)[0].numpy()


def to_training_grid(
    image: np.ndarray, mask: np.ndarray | None, affine: np.ndarray, spacing: Sequence[float], geometry: Geometry
) -> tuple[np.ndarray, np.ndarray | None, tuple[float, ...], np.ndarray | None]:
    """(image C×D×H×W float32, mask D×H×W int64 or None, spacing, the orientation change) in the
    spec's grid: reoriented, then resampled (image linearly, labels nearest)."""
    change = orientation_change(affine, geometry)
    image = reorient(image, change, channels_first=True)
    mask = None if mask is None else reorient(mask, change, channels_first=False)
    spacing = [float(s) for s in reordered(spacing, change)]
    shape = target_shape(image.shape[1:], spacing, geometry)
    image, mask = resample(image, shape), None if mask is None else resample(mask, shape, labels=True)
    if geometry["spacing"] is not None:
        spacing = geometry["spacing"]
    return np.ascontiguousarray(image), None if mask is None else np.ascontiguousarray(mask), tuple(spacing), change


def restore_axes(array: np.ndarray, change: Any, channels_first: bool = False) -> np.ndarray:
    """A result in the reoriented axes (D×H×W labels or α, or K×D×H×W probabilities when
    channels_first) in the input's own axes: `reorient` undone (change: its transform, as an
    array or nested tuples; None: nothing to undo)."""
    if change is None:
        return array
    change = np.asarray(change, dtype=float)
    inverse = np.zeros_like(change)
    for axis, (target, flip) in enumerate(change):
        inverse[int(target)] = [axis, flip]
    return np.ascontiguousarray(reorient(array, inverse, channels_first))
