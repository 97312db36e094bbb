"""A checkpoint's network restored from its record and weights, checked: the Segmenter's loading."""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn

from segattn import checkpoint
from segattn.data.transforms import deserialize
from segattn.errors import InputError
from segattn.models import build_model


def restore(
    record: dict[str, Any], state: dict[str, torch.Tensor], path: str | os.PathLike
) -> tuple[nn.Module, Any, dict[str, Any]]:
    """(the network with its weights, the evaluation transform (None for a volume network), the
    volume settings {"intensity", "slices", "geometry"}) of a record and state as
    `checkpoint.load` returns them. Weights that do not fit the record's model, or that cannot
    give a finite output, are an InputError naming `path`."""
    classes, channels = record["classes"], record["in_channels"]
    model = build_model(record["model"], num_classes=len(classes), in_channels=channels, **record["model_args"])
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # a tensor of another shape
        raise InputError(f"{path}: weights do not fit model {record['model']!r} {record['model_args']}: {exc}") from exc
    if missing or unexpected:
        raise InputError(
            f"{path}: weights do not fit model {record['model']!r} {record['model_args']}: "
            f"{len(missing)} missing (e.g. {missing[:3]}), {len(unexpected)} unexpected (e.g. {unexpected[:3]}); "
            "written by another segattn version?"
        )
    checkpoint.check_output(path, model, channels)  # finite weights can still overflow
    spec = record["eval_transform"]  # None for a volume network, whose record has "intensity"
    transform = None if spec is None else deserialize(spec, f"{path}: eval_transform")
    return model, transform, {key: record.get(key) for key in ("intensity", "slices", "geometry")}
