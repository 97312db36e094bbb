"""Sliding-window inference, every knob explicit (after MONAI's `sliding_window_inference`, which
is not a segattn dependency): `sliding_bands` hands on the result a band of rows at a time as the
bands become final, so that a caller can reduce each (to labels, say) and memory stays bounded by
strips of the image's width; `sliding_window` puts the bands together into the full-size result."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Literal

import torch
from torch import Tensor

from segattn.errors import InputError, check_choice

Blending = Literal["gaussian", "constant"]


def window_starts(size: int, window: int, stride: int) -> list[int]:
    """Start offsets along one axis: every `stride`, the last window flush with the end."""
    if size <= window:
        return [0]
    starts = list(range(0, size - window, stride))
    return [*starts, size - window]


def blend_weights(height: int, width: int, blending: Blending, device: torch.device) -> Tensor:
    """h×w float32 window weights: constant 1, or a Gaussian with σ = window/8 per axis
    (nnU-Net's and MONAI's choice), scaled to a maximum of 1 and floored at 1e-3 so that every
    pixel keeps some weight."""
    check_choice("blending", blending, Blending)
    if blending == "constant":
        return torch.ones(height, width, device=device)

    def axis(n: int) -> Tensor:
        x = torch.arange(n, device=device, dtype=torch.float32) - (n - 1) / 2
        return torch.exp(-0.5 * (x / (n / 8)) ** 2)

    weights = axis(height)[:, None] * axis(width)[None, :]
    return (weights / weights.max()).clamp(min=1e-3)


def sliding_window(
    image: Tensor,
    predict: Callable[[Tensor], Tensor],
    window: int | tuple[int, int],
    overlap: float = 0.25,
    batch_size: int = 4,
    blending: Blending = "gaussian",
    device: torch.device | str = "cpu",
    output_device: torch.device | str = "cpu",
) -> Tensor:
    """Class probabilities of a large image from overlapping windows: float32 1×K×H×W on
    `output_device`, the weighted mean of the windows' probabilities (the bands of
    `sliding_bands`, arguments as there, put together). Memory: this full-size result plus
    `sliding_bands`' strips."""
    output = None
    for top, band in sliding_bands(image, predict, window, overlap, batch_size, blending, device, output_device):
        if output is None:
            output = band.new_empty(1, band.shape[1], *image.shape[-2:])
        output[:, :, top : top + band.shape[2]] = band
    return output


def sliding_bands(
    image: Tensor,
    predict: Callable[[Tensor], Tensor],
    window: int | tuple[int, int],
    overlap: float = 0.25,
    batch_size: int = 4,
    blending: Blending = "gaussian",
    device: torch.device | str = "cpu",
    output_device: torch.device | str = "cpu",
) -> Iterator[tuple[int, Tensor]]:
    """The sliding window's probabilities, a band of rows at a time, top to bottom.

    image: 1×C×H×W of any dtype `predict` takes (kept where it is; windows are cut there and
        copied to `device` batch by batch).
    predict: windows B×C×h×w on `device` → probabilities B×K×h×w.
    window: window side (or (h, w)); a window larger than the image shrinks to it.
    overlap: share of a window that overlaps its neighbour, in [0, 1).
    Yields (top, float32 1×K×b×W on `output_device`): rows top : top + b of the weighted mean of
    the windows' probabilities, each band once no later window reaches it, together covering
    0 : H in order. Windows run row by row in batches that may span rows; the sums are held
    for one window's height only, (K + 1) × h × W floats on `output_device`, and device memory
    is bounded by one batch of windows. The sums are the full-image sums, added in the same
    order, so the result is the same to the bit.
    """
    if image.ndim != 4 or image.shape[0] != 1:
        raise InputError(f"sliding_window: expected one image 1×C×H×W, got {tuple(image.shape)}")
    if not 0 <= overlap < 1:
        raise InputError(f"overlap: expected a share in [0, 1), got {overlap}")
    win_h, win_w = (window, window) if isinstance(window, int) else window
    if win_h < 1 or win_w < 1:
        raise InputError(f"window: expected a positive size, got {window}")
    _, _, height, width = image.shape
    win_h, win_w = min(win_h, height), min(win_w, width)
    stride_h, stride_w = max(int(win_h * (1 - overlap)), 1), max(int(win_w * (1 - overlap)), 1)
    corners = [(y, x) for y in window_starts(height, win_h, stride_h) for x in window_starts(width, win_w, stride_w)]
    weights = blend_weights(win_h, win_w, blending, torch.device(device))
    stitch_weights = weights.to(output_device)
    # rows top : top + win_h of the weighted sums and of the weights
    total, norm, top = None, torch.zeros(1, 1, win_h, width, device=output_device), 0
    for start in range(0, len(corners), batch_size):
        chunk = corners[start : start + batch_size]
        windows = torch.cat([image[..., y : y + win_h, x : x + win_w] for y, x in chunk]).to(device)
        probs = (predict(windows).float() * weights).to(output_device)
        if total is None:
            total = torch.zeros(1, probs.shape[1], win_h, width, device=output_device)
        for (y, x), p in zip(chunk, probs, strict=True):
            if y > top:  # windows come row by row: rows above y receive no more
                yield top, total[:, :, : y - top] / norm[:, :, : y - top]
                total, norm, top = shift_up(total, y - top), shift_up(norm, y - top), y
            total[0, :, :, x : x + win_w] += p
            norm[0, :, :, x : x + win_w] += stitch_weights
    yield top, total / norm


def shift_up(rows: Tensor, count: int) -> Tensor:
    """1×C×h×W rows moved up by `count`, zeros below."""
    return torch.cat([rows[:, :, count:], rows.new_zeros(*rows.shape[:2], count, rows.shape[3])], dim=2)
