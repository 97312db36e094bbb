"""Sliding-window inference: one function, every knob explicit (after MONAI's
`sliding_window_inference`, which is not a segattn dependency)."""

from __future__ import annotations

from collections.abc import Callable
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
    """Class probabilities of a large image from overlapping windows.

    image: 1×C×H×W of any dtype `predict` takes (kept where it is; windows are cut there and
        copied to `device` batch by batch).
    predict: windows B×C×h×w on `device` → probabilities B×K×h×w.
    window: window side (or (h, w)); a window larger than the image shrinks to it.
    overlap: share of a window that overlaps its neighbour, in [0, 1).
    Returns float32 1×K×H×W on `output_device`: the weighted mean of the windows' probabilities.
    Device memory is bounded by one batch of windows; the full-size result lives on
    `output_device` (the CPU for images too large for the accelerator).
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
    output, norm = None, torch.zeros(1, 1, height, width, device=output_device)
    for start in range(0, len(corners), batch_size):
        chunk = corners[start : start + batch_size]
        windows = torch.cat([image[..., y : y + win_h, x : x + win_w] for y, x in chunk]).to(device)
        probs = (predict(windows).float() * weights).to(output_device)
        if output is None:
            output = torch.zeros(1, probs.shape[1], height, width, device=output_device)
        for (y, x), p in zip(chunk, probs, strict=True):
            output[0, :, y : y + win_h, x : x + win_w] += p
            norm[0, :, y : y + win_h, x : x + win_w] += stitch_weights
    return output.div_(norm)
