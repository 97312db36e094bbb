"""Encoders for AttentionUNet: the native U-Net contracting path or any smp encoder.

Both return a list of features, finest first, level i at stride 2**i of the (padded) input,
and come with their channels per level, where 0 marks a level without a skip feature: level 0
of an smp encoder is the input image itself, and mit_b* encoders have an empty stride-2 level.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors.torch import load_file
from segmentation_models_pytorch.encoders import get_encoder, get_encoder_names
from torch import nn

from segattn.errors import InputError
from segattn.models.blocks import NativeEncoder
from segattn.models.options import Downsample, Norm

DEFAULT_WIDTHS = (32, 64, 128, 256, 512)
DEFAULT_SMP_DEPTH = 5


def build_encoder(
    name: str,
    in_channels: int,
    *,
    widths: Sequence[int] | None = None,
    depth: int | None = None,
    weights: str | None = None,
    norm: Norm = "batch",
    downsample: Downsample = "pool",
    spatial_dims: int = 2,
    strides: Sequence | None = None,
    kernel_sizes: Sequence | None = None,
) -> tuple[nn.Module, tuple[int, ...]]:
    """(encoder, channels per level finest first, 0 = no skip at that level).

    name "native": `widths` channels per level (default 32…512); `depth` and `weights` must be
    None. Any other name is an smp encoder (resnet34, efficientnet-b0, mit_b0, tu-…) of
    `depth` levels below the input (1–5, default 5); `weights` is None (random), a name smp
    downloads ("imagenet", …), or a local file (see `load_smp_encoder`). `widths` must be None.
    `spatial_dims` 3, `strides` and `kernel_sizes` (see NativeEncoder) are the native encoder's
    alone: smp encoders are 2-D.
    """
    if name == "native":
        if depth is not None:
            raise InputError("encoder_depth: only for smp encoders; the native encoder has len(widths) - 1 levels")
        if weights is not None:
            raise InputError("encoder_weights: pretrained weights exist only for smp encoders; expected None")
        widths = tuple(int(w) for w in (DEFAULT_WIDTHS if widths is None else widths))
        if len(widths) < 2 or min(widths) < 1:
            raise InputError(f"widths: expected at least 2 positive channel counts, got {list(widths)}")
        encoder = NativeEncoder(
            in_channels,
            widths,
            norm,
            downsample,
            spatial_dims=spatial_dims,
            strides=strides,
            kernel_sizes=kernel_sizes,
        )
        return encoder, widths
    if spatial_dims != 2:
        raise InputError(f"encoder: {name!r} is a 2-D smp encoder; spatial_dims {spatial_dims} needs 'native'")
    for key, value in [("strides", strides), ("kernel_sizes", kernel_sizes)]:
        if value is not None:
            raise InputError(f"{key}: only for encoder='native'; encoder {name!r} has its own")
    if widths is not None:
        raise InputError(f"widths: only for encoder='native'; encoder {name!r} has its own (set decoder_widths)")
    if downsample != "pool":
        raise InputError(f"downsample: only for encoder='native'; encoder {name!r} downsamples its own way")
    depth = DEFAULT_SMP_DEPTH if depth is None else depth
    if depth not in range(1, 6):
        raise InputError(f"encoder_depth: expected 1 to 5, got {depth!r}")
    encoder = load_smp_encoder(name, in_channels, depth, weights)
    if encoder.out_channels[-1] == 0:
        raise InputError(f"encoder_depth: encoder {name!r} has no feature at depth {depth}; expected a larger depth")
    return encoder, (0, *encoder.out_channels[1:])


def load_smp_encoder(name: str, in_channels: int, depth: int, weights: str | None) -> nn.Module:
    """An smp encoder via `get_encoder`. `weights` as a path to an existing file loads that file:
    a state_dict (torch.save or .safetensors) of this encoder built for 3 input channels, the
    format of smp's published weights; other `in_channels` are then adapted as smp adapts
    ImageNet weights (`set_in_channels`). Any other string is a weights name for smp, which
    downloads it on first use.
    """
    path = Path(weights) if weights is not None else None
    from_file = path is not None and path.is_file()
    try:
        encoder = get_encoder(
            name, in_channels=3 if from_file else in_channels, depth=depth, weights=None if from_file else weights
        )
    except KeyError as exc:
        if name in get_encoder_names():
            raise InputError(
                f"encoder_weights: {weights!r} is neither a file nor a pretrained-weights name for {name!r} ({exc})"
            ) from exc
        raise InputError(f"encoder: unknown value {name!r}; expected 'native' or an smp encoder name") from exc
    except RuntimeError as exc:  # timm ("tu-…") names
        raise InputError(f"encoder: {name!r} is not an smp/timm encoder ({exc})") from exc
    if from_file:
        if not hasattr(encoder, "set_in_channels"):
            raise InputError(f"encoder_weights: a local file is supported for smp's own encoders, not {name!r}")
        try:
            encoder.load_state_dict(
                load_file(path) if path.suffix == ".safetensors" else torch.load(path, weights_only=True)
            )
        except Exception as exc:  # torch and safetensors raise several types for foreign or unfitting files
            raise InputError(f"encoder_weights: {path} does not fit encoder {name!r}: {exc}") from exc
        encoder.set_in_channels(in_channels, pretrained=True)
    return encoder
