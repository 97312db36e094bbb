"""The device side of inference: which device and precision, the inference copy of a network
(batch norms folded), device-side normalisation, and where a sliding window is stitched."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from segattn.errors import InputError, check_choice
from segattn.window_transform import PixelNormalize, window_normalize

Precision = Literal["auto", "fp32", "bf16", "fp16"]
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(device: str | torch.device) -> torch.device:
    """ "auto" → the first CUDA GPU if there is one, else the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InputError(f"device: unknown device {device!r}; expected 'auto', 'cpu', 'cuda' or 'cuda:N'") from exc
    if resolved.type not in ("cpu", "cuda"):
        raise InputError(f"device: {device!r} is not supported; expected 'auto', 'cpu', 'cuda' or 'cuda:N'")
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device: {device!r} asked for, but no CUDA GPU is available")
    return resolved


def resolve_precision(precision: Precision, device: torch.device) -> torch.dtype:
    """ "auto" → bf16 on GPUs that support it, else fp16 on a GPU, fp32 on the CPU."""
    check_choice("precision", precision, Precision)
    if precision == "auto":
        if device.type != "cuda":
            return torch.float32
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return DTYPES[precision]


FOLDABLE = ((nn.Conv2d, nn.BatchNorm2d), (nn.Conv3d, nn.BatchNorm3d))


def fold_batchnorm(module: nn.Module) -> nn.Module:
    """Folds every BatchNorm2d (BatchNorm3d) that directly follows a Conv2d (Conv3d) inside an
    nn.Sequential into the convolution (eval mode: y = W'x + b' with the running statistics), in
    place; the norm becomes an Identity. Saves a memory-bound pass per norm at inference; outputs
    are equal up to float rounding."""
    for child in module.children():
        if isinstance(child, nn.Sequential):
            for i in range(len(child) - 1):
                conv, norm = child[i], child[i + 1]
                pair = any(isinstance(conv, c) and isinstance(norm, n) for c, n in FOLDABLE)
                if pair and norm.track_running_stats:
                    child[i], child[i + 1] = fuse_conv_bn_eval(conv, norm), nn.Identity()
        fold_batchnorm(child)
    return module


def device_normalize(pipeline: Any, device: torch.device) -> PixelNormalize | None:
    """On a GPU, a pipeline that is one fixed per-pixel step (a mean/std Normalize or a Window; see
    `window_normalize`) as a PixelNormalize on the device, for raw N×C×H×W batches; None otherwise
    (the CPU, per-image normalisations, anything else in the pipeline, no pipeline: volumes)."""
    normalize = window_normalize(pipeline, None) if device.type == "cuda" and pipeline is not None else None
    return None if normalize is None else normalize.to(device)


def memory_format(spatial_dims: int) -> torch.memory_format:
    """The inference memory format of a network (and its inputs) with this many spatial axes:
    channels_last for images, channels_last_3d for volumes (about 2× faster 3-D convolutions on
    the CPU than contiguous; the 4-D format is refused on 5-D tensors)."""
    return torch.channels_last if spatial_dims == 2 else torch.channels_last_3d


def stitch_device(device: torch.device, num_classes: int, size: Sequence[int]) -> torch.device:
    """Where a sliding-window result of K×H×W (a volume's K×D×H×W: `size` is its spatial size) is
    summed: on the GPU when the sum and its weights (K + 1 float32 planes) take at most a quarter
    of its free memory (one copy per window instead of a host transfer), else on the CPU, so that
    device memory stays bounded by one batch of windows however large the image."""
    if device.type != "cuda":
        return torch.device("cpu")
    needed = (num_classes + 1) * math.prod(size) * 4
    free, _ = torch.cuda.mem_get_info(device)
    return device if needed <= free // 4 else torch.device("cpu")
