"""Sliding-window inference over images or volumes, every knob explicit (after MONAI's
`sliding_window_inference`, which is not a segattn dependency). One implementation for any number
of spatial axes (H×W images, D×H×W volumes): `sliding_bands` hands on one image's result a band at
a time along its first spatial axis (rows of an image, slabs of a volume) as the bands become
final, so that a caller can reduce each (to labels, say) and memory stays bounded by one window's
extent along that axis; `sliding_window` puts the bands together into the full-size result."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from itertools import product
from numbers import Integral
from typing import Literal

import torch
from torch import Tensor

from segattn.errors import InputError, check_choice

Blending = Literal["gaussian", "constant"]
Window = int | tuple[int, ...]  # one side for every spatial axis, or a side per axis: (h, w), (d, h, w)


def window_starts(size: int, window: int, stride: int) -> list[int]:
    """Start offsets along one axis: every `stride`, the last window flush with the end."""
    if size <= window:
        return [0]
    starts = list(range(0, size - window, stride))
    return [*starts, size - window]


def window_weights(window: Sequence[int], blending: Blending, device: torch.device) -> Tensor:
    """float32 weights of one window's shape (h×w, d×h×w, ...): constant 1, or a separable Gaussian,
    the product of one per axis centred on the axis' middle, (side − 1)/2, with σ = side/8 (MONAI's
    `compute_importance_map`: σ = 0.125 × side, separable, centred so; nnU-Net's σ is the same,
    its centre side // 2), scaled to a maximum of 1 and floored at 1e-3 (MONAI's floor) so that
    every voxel keeps some weight."""
    check_choice("blending", blending, Blending)
    if blending == "constant":
        return torch.ones(*window, device=device)
    weights = None
    for i, n in enumerate(window):
        x = torch.arange(n, device=device, dtype=torch.float32) - (n - 1) / 2
        axis = torch.exp(-0.5 * (x / (n / 8)) ** 2).reshape([1] * i + [n] + [1] * (len(window) - i - 1))
        weights = axis if weights is None else weights * axis
    return (weights / weights.max()).clamp(min=1e-3)


def blend_weights(height: int, width: int, blending: Blending, device: torch.device) -> Tensor:
    """h×w `window_weights` of a 2-D window."""
    return window_weights((height, width), blending, device)


def sliding_window(
    images: Tensor,
    predict: Callable[[Tensor], Tensor],
    window: Window,
    overlap: float = 0.25,
    batch_size: int = 4,
    blending: Blending = "gaussian",
    device: torch.device | str = "cpu",
    output_device: torch.device | str = "cpu",
) -> Tensor:
    """Class probabilities of large images or volumes from overlapping windows: float32
    N×K×H×W (or N×K×D×H×W) on `output_device`, per image the weighted mean of its windows'
    probabilities (the bands of `sliding_bands`, arguments as there, put together). images:
    N×C×H×W or N×C×D×H×W, one image at a time (windows are batched within an image). Memory:
    this full-size result plus `sliding_bands`' strips."""
    if images.ndim < 3 or len(images) < 1:
        raise InputError(f"sliding_window: expected images N×C×(D×)H×W, got {tuple(images.shape)}")
    output = None
    knobs = window, overlap, batch_size, blending, device, output_device
    for i in range(len(images)):
        for top, band in sliding_bands(images[i : i + 1], predict, *knobs):
            if output is None:
                output = band.new_empty(len(images), band.shape[1], *images.shape[2:])
            output[i, :, top : top + band.shape[2]] = band[0]
    return output


def sliding_bands(
    image: Tensor,
    predict: Callable[[Tensor], Tensor],
    window: Window,
    overlap: float = 0.25,
    batch_size: int = 4,
    blending: Blending = "gaussian",
    device: torch.device | str = "cpu",
    output_device: torch.device | str = "cpu",
) -> Iterator[tuple[int, Tensor]]:
    """The sliding window's probabilities, a band at a time along the first spatial axis (rows of
    an image, slabs of a volume), top to bottom.

    image: one image 1×C×H×W or volume 1×C×D×H×W (any number of spatial axes), of any dtype
        `predict` takes (kept where it is; windows are cut there and copied to `device` batch by
        batch).
    predict: windows B×C×h×w (B×C×d×h×w) on `device` → probabilities B×K×h×w (B×K×d×h×w).
    window: one side for every spatial axis, or a side per axis ((h, w), (d, h, w)); a window
        larger than the image along an axis shrinks to it there. The image is tiled, never resized.
    overlap: share of a window that overlaps its neighbour along each axis, in [0, 1); the stride
        is int(side × (1 − overlap)) (at least 1), the last window flush with the end, so windows
        cover every pixel (voxel).
    blending: "gaussian" or "constant" `window_weights`.
    Yields (top, float32 1×K×b×… on `output_device`): indices top : top + b along the first
    spatial axis of the weighted mean of the windows' probabilities, each band once no later
    window reaches it, together covering the whole axis in order. Windows run in row-major order
    of their corners in batches that may span rows; the sums are held for one window's extent
    along the first axis only on `output_device`, (K + 1) × h × W floats for an image,
    (K + 1) × d × H × W for a volume (d the window's depth), and device memory is bounded by one
    batch of windows. The sums are the
    full-image sums, added in the same order, so the result is the same to the bit.
    """
    spatial = image.shape[2:]
    if image.ndim < 3 or image.shape[0] != 1:
        raise InputError(f"sliding_window: expected one image 1×C×(D×)H×W, got {tuple(image.shape)}")
    if not 0 <= overlap < 1:
        raise InputError(f"overlap: expected a share in [0, 1), got {overlap}")
    sides = (window,) * len(spatial) if isinstance(window, Integral) else tuple(window)
    if len(sides) != len(spatial) or not all(isinstance(s, Integral) and s >= 1 for s in sides):
        raise InputError(f"window: expected a positive size or one per spatial axis of {tuple(spatial)}, got {window}")
    sides = tuple(min(int(side), size) for side, size in zip(sides, spatial, strict=True))
    strides = [max(int(side * (1 - overlap)), 1) for side in sides]
    corners = list(product(*map(window_starts, spatial, sides, strides)))  # row-major: first axis slowest
    weights = window_weights(sides, blending, torch.device(device))
    stitch_weights = weights.to(output_device)

    def cut(corner: tuple[int, ...]) -> tuple[slice, ...]:
        return tuple(slice(start, start + side) for start, side in zip(corner, sides, strict=True))

    # indices top : top + sides[0] along the first axis of the weighted sums and of the weights
    total, norm, top = None, torch.zeros(1, 1, sides[0], *spatial[1:], device=output_device), 0
    for start in range(0, len(corners), batch_size):
        chunk = corners[start : start + batch_size]
        windows = torch.cat([image[(..., *cut(corner))] for corner in chunk]).to(device)
        probs = (predict(windows).float() * weights).to(output_device)
        if total is None:
            total = torch.zeros(1, probs.shape[1], sides[0], *spatial[1:], device=output_device)
        for corner, p in zip(chunk, probs, strict=True):
            y = corner[0]
            if y > top:  # windows come row by row: indices above y receive no more
                yield top, total[:, :, : y - top] / norm[:, :, : y - top]
                total, norm, top = shift_up(total, y - top), shift_up(norm, y - top), y
            inside = (0, slice(None), slice(None), *cut(corner)[1:])
            total[inside] += p
            norm[inside] += stitch_weights
    yield top, total / norm


def shift_up(rows: Tensor, count: int) -> Tensor:
    """1×C×h×… rows moved up by `count` along the first spatial axis, zeros below."""
    return torch.cat([rows[:, :, count:], rows.new_zeros(*rows.shape[:2], count, *rows.shape[3:])], dim=2)
