"""The networks the benchmarks compare, as one list: segattn's network of a config, the same
without gates, smp's Unet (± scSE) and MONAI's AttentionUnet (when `monai` is importable)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import yaml
from torch import nn

from segattn.models import build_model
from segattn.models.padding import PadToStride

from . import REPO

NUM_CLASSES = 2
MONAI = "monai:AttentionUnet"  # a contender outside segattn's registry, built here
MONAI_MISSING = "MONAI is not installed (pip install -e '.[bench]')"
MONAI_WIDTHS = (32, 64, 128, 256, 512)  # MONAI's channels where segattn's network has no `widths`


def load_config(name: str) -> dict[str, Any]:
    """configs/<name>.yaml."""
    return yaml.safe_load((REPO / "configs" / f"{name}.yaml").read_text())


def config_model_args(name: str) -> dict[str, Any]:
    """The model_args of configs/<name>.yaml."""
    return load_config(name)["model"]["model_args"]


def monai_attention_unet(
    channels: Sequence[int], in_channels: int = 3, num_classes: int = NUM_CLASSES
) -> nn.Module | None:
    """MONAI's 2-D AttentionUnet with `channels`, padded to its stride so that any H×W works
    (None when MONAI is not installed)."""
    try:  # optional: the `bench` extra
        from monai.networks.nets import AttentionUnet
    except ImportError:
        return None
    strides = (2,) * (len(channels) - 1)
    net = AttentionUnet(
        spatial_dims=2, in_channels=in_channels, out_channels=num_classes, channels=channels, strides=strides
    )
    return PadToStride(net, 2 ** len(strides))


class Contender(NamedTuple):
    """A network of the benchmarks: a `build_model` name (or MONAI) and its arguments."""

    name: str
    model: str
    model_args: dict[str, Any]


def monai_widths(own: dict[str, Any]) -> tuple[int, ...]:
    """MONAI's channels for segattn's model section `own`: its encoder widths (32–512 without)."""
    return tuple(own["model_args"].get("widths", MONAI_WIDTHS))


def contenders(own: dict[str, Any]) -> list[Contender]:
    """segattn's network of a config's `model` section, the same without gates, and its peers:
    smp Unet resnet34 from scratch (± scSE) and MONAI's AttentionUnet of segattn's widths."""
    r34 = {"encoder_name": "resnet34", "encoder_weights": None}
    return [
        Contender("segattn", own["model"], own["model_args"]),
        Contender("segattn, gates off", own["model"], {**own["model_args"], "gates": False}),
        Contender("smp Unet r34", "smp:Unet", r34),
        Contender("smp Unet r34 scse", "smp:Unet", {**r34, "decoder_attention_type": "scse"}),
        Contender("MONAI AttentionUnet", MONAI, {"channels": monai_widths(own)}),
    ]


def contender_names() -> list[str]:
    """The contenders' names (the same for every config)."""
    return [c.name for c in contenders(load_config("drive")["model"])]


def peer(own: dict[str, Any], name: str) -> Contender:
    """The contender of that name in the list for segattn's model section `own`."""
    return next(c for c in contenders(own) if c.name == name)


def nearest_smp(own: dict[str, Any]) -> Contender:
    """smp's Unet nearest in width to segattn's `own` network: resnet18 with a 128–16 decoder next to
    widths up to 128, else the list's resnet34 (its default 256–16 decoder)."""
    if max(monai_widths(own)) <= 128:
        args = {"encoder_name": "resnet18", "encoder_weights": None, "decoder_channels": (128, 64, 32, 16, 16)}
        return Contender("smp Unet resnet18 (decoder 128–16)", "smp:Unet", args)
    return peer(own, "smp Unet r34")._replace(name="smp Unet resnet34")


def build_contender(contender: Contender, num_classes: int, in_channels: int) -> nn.Module | None:
    """The contender's network (None when its package is missing)."""
    if contender.model == MONAI:
        return monai_attention_unet(contender.model_args["channels"], in_channels, num_classes)
    return build_model(contender.model, num_classes=num_classes, in_channels=in_channels, **contender.model_args)


def build_all(builders: dict[str, Callable[[], nn.Module | None]]) -> tuple[dict[str, nn.Module], list[str]]:
    """({name: network} of the builders that could build, a note for each that could not)."""
    built, notes = {}, []
    for name, builder in builders.items():
        model = builder()
        if model is None:
            notes.append(f"{name}: skipped, {MONAI_MISSING}.")
        else:
            built[name] = model
    return built, notes
