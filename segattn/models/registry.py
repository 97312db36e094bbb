"""`build_model(name, **kwargs)`: one entry point for segattn's models and smp's baselines."""

from __future__ import annotations

import inspect
from typing import Any

import segmentation_models_pytorch as smp

from segattn.errors import InputError
from segattn.models.attention_unet import AttentionUNet
from segattn.models.base import SegmentationNetwork, deep_supervision
from segattn.models.multiscale import MultiScaleAttention
from segattn.models.padding import PadToStride

MODELS: dict[str, type[SegmentationNetwork]] = {"attention_unet": AttentionUNet}
SMP_PREFIX = "smp:"
# smp architectures whose decoder needs a multiple of more than the encoder's stride: DPT's
# coarsest reassembly halves the ViT's patch grid once more (an odd grid fails to fuse)
SMP_STRIDE_FACTOR = {"DPT": 2}
# PAN's FPA block pools its stride-16 feature three more times: a side under 8 × 16 fails there
SMP_MIN_SIDE_FACTOR = {"PAN": 8}


def available_models() -> list[str]:
    """Names accepted by `build_model`: segattn's own, then "smp:<Arch>" for every smp architecture."""
    smp_archs = sorted(cls.__name__ for cls in smp.MODEL_ARCHITECTURES_MAPPING.values())
    return [*MODELS, *(SMP_PREFIX + a for a in smp_archs)]


def build_model(
    name: str, *, num_classes: int, in_channels: int = 3, multiscale: dict[str, Any] | None = None, **kwargs: Any
) -> SegmentationNetwork:
    """Builds a segmentation network: float N×C×H×W → logits N×K×H×W, for any H×W.

    name: "attention_unet", or "smp:<Arch>" (e.g. "smp:Unet", "smp:UnetPlusPlus") for an smp
    baseline; smp models get `encoder_weights=None` unless asked (no download by default) and
    are wrapped to pad their input to the encoder's stride (PadToStride). kwargs are the model's own keyword
    arguments; an unknown one is an InputError naming it.

    multiscale: None, or MultiScaleAttention's keyword arguments (e.g. {"train_scales": [0.5, 1],
    "infer_scales": [0.5, 1, 2]}; {} for its defaults) to wrap the network in learned attention
    across input scales (Tao et al. 2020). Not with deep_supervision.

    Every network returned declares what it can do (returns_attention, deep_supervision,
    output_stride; see SegmentationNetwork).
    """
    net = build_single_scale(name, num_classes, in_channels, kwargs)
    if multiscale is None:
        return net
    if deep_supervision(net):
        raise InputError("multiscale: cannot be combined with deep_supervision=True")
    if net.spatial_dims != 2:
        raise InputError(f"multiscale: 2-D only (input scales of images); got spatial_dims {net.spatial_dims}")
    if not isinstance(multiscale, dict):
        raise InputError(f"multiscale: expected None or a mapping of MultiScaleAttention arguments, got {multiscale!r}")
    check_kwargs("multiscale", MultiScaleAttention, multiscale, supplied=("net", "num_classes"))
    return MultiScaleAttention(net, num_classes, **multiscale)


def build_single_scale(name: str, num_classes: int, in_channels: int, kwargs: dict[str, Any]) -> SegmentationNetwork:
    if name in MODELS:
        cls = MODELS[name]
        check_kwargs(f"model {name!r}", cls, kwargs)
        return cls(in_channels=in_channels, num_classes=num_classes, **kwargs)
    if name.startswith(SMP_PREFIX):
        arch = name[len(SMP_PREFIX) :]
        archs = {cls.__name__: cls for cls in smp.MODEL_ARCHITECTURES_MAPPING.values()}
        if arch not in archs:
            raise InputError(f"model: unknown smp architecture {arch!r}; expected one of {sorted(archs)}")
        # smp hands **kwargs to timm ("tu-") encoders only and drops them for every other encoder
        encoder = kwargs.get("encoder_name", inspect.signature(archs[arch]).parameters["encoder_name"].default)
        check_kwargs(f"model {name!r}", archs[arch], kwargs, open_kwargs=str(encoder).startswith("tu-"))
        net = archs[arch](in_channels=in_channels, classes=num_classes, **{"encoder_weights": None, **kwargs})
        stride = net.encoder.output_stride
        return PadToStride(net, stride * SMP_STRIDE_FACTOR.get(arch, 1), stride * SMP_MIN_SIDE_FACTOR.get(arch, 0))
    raise InputError(f"model: unknown name {name!r}; expected one of {available_models()}")


def check_kwargs(
    what: str,
    cls: type,
    kwargs: dict[str, Any],
    supplied: tuple[str, ...] = ("in_channels", "num_classes", "classes"),
    open_kwargs: bool = True,
) -> None:
    """Raises an InputError naming any key that `cls.__init__` does not take, or that the caller
    `supplied` itself; one that takes **kwargs takes any key, unless open_kwargs is False (they
    are dropped, not used)."""
    params = inspect.signature(cls.__init__).parameters
    if open_kwargs and any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    skipped = ("self", *supplied)
    accepted = [p for p, param in params.items() if p not in skipped and param.kind is not param.VAR_KEYWORD]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise InputError(f"{what}: unknown argument(s) {unknown}; expected some of {accepted}")
