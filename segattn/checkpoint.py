"""The checkpoint record: what `SegmentationTask` writes and `Segmenter` reads.

A Lightning checkpoint of segattn carries, besides Lightning's own keys, a record under
"segattn" with everything inference needs: the model's registry name and keyword arguments,
input channels, class names, palette, and the evaluation transform in Albumentations' serialised
form (images), or the intensity normalisation spec of segattn.data.intensity (volumes: a network
built with `spatial_dims: 3` in its model arguments, or a 2-D one trained on volumes' slices,
whose record also has "slices"; "eval_transform" is then None). The
weights are Lightning's "state_dict" under the "model." prefix. Files are loaded with
`weights_only=True`: only tensors and plain containers, no code runs on load. Weights that cannot
give a finite prediction (NaN or infinite values, a negative batch-norm variance, a network whose
output on a probe image is not finite) are refused at load.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from segattn.errors import InputError, MissingPathError

RECORD_KEY = "segattn"
FORMAT_VERSION = 1
MODEL_PREFIX = "model."
TRUST_HINT = "pass --trust-checkpoint (Python: trust_checkpoint=True)"
PROBE_SIZE = 128  # smp:PAN takes 128 and up
PROBE_SIZE_3D = 32  # a volume's side: 32³ voxels cost what 181² pixels do
DAMAGED = "the checkpoint is damaged or its training diverged"


def make_record(
    model: str,
    model_args: dict[str, Any],
    in_channels: int,
    classes: list[str],
    palette: list[list[int]],
    eval_transform: dict[str, Any] | None,
    intensity: Any = None,
    slices: dict[str, int] | None = None,
    geometry: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The record of a checkpoint: `eval_transform` for images, `intensity` for volumes (and
    `slices`, the spec of `segattn.data.slices`, for a 2-D network run over volumes' slices, and
    `geometry`, the training grid of `segattn.data.geometry`, where one was set)."""
    return {
        "format_version": FORMAT_VERSION,
        "model": model,
        "model_args": dict(model_args),
        "in_channels": in_channels,
        "classes": list(classes),
        "palette": [list(map(int, c)) for c in palette],
        "eval_transform": eval_transform,
        "intensity": intensity,
        "slices": slices,
        "geometry": geometry,
    }


def save(path: str | os.PathLike, weights: dict[str, torch.Tensor], record: dict[str, Any]) -> None:
    """Writes the smallest file `load` reads: `record` (from `make_record`) and the model's
    state_dict, without Lightning's keys; for a model built without training (benchmarks, tests)."""
    torch.save({RECORD_KEY: record, "state_dict": {MODEL_PREFIX + k: v for k, v in weights.items()}}, path)


def load(path: str | os.PathLike, trust: bool = False) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Reads a checkpoint: (record, model state_dict without the "model." prefix); see `read`.
    Weights that no finite prediction can come from are an InputError (`check_weights`)."""
    checkpoint = read(path, trust)
    state = model_state(checkpoint)
    check_weights(path, state)
    return checkpoint[RECORD_KEY], state


def model_state(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """The network's weights of a checkpoint dict, without the "model." prefix."""
    return {k[len(MODEL_PREFIX) :]: v for k, v in checkpoint["state_dict"].items() if k.startswith(MODEL_PREFIX)}


def check_weights(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """Raises an InputError naming the file, the first bad tensor and how many of its values are
    bad: a NaN or infinite value in a floating tensor, or a negative batch-norm running_var."""
    for name, value in state.items():
        if not isinstance(value, torch.Tensor) or not value.is_floating_point():
            continue
        if not torch.isfinite(value).all():
            bad, what = ~torch.isfinite(value), "NaN or infinite"
        elif name.endswith("running_var") and (value < 0).any():
            bad, what = value < 0, "negative (a batch-norm variance)"
        else:
            continue
        raise InputError(
            f"{path}: tensor {MODEL_PREFIX}{name}: {int(bad.sum())} of its {value.numel()} values are {what}; {DAMAGED}"
        )


def check_output(path: str | os.PathLike, model: nn.Module, in_channels: int) -> None:
    """Raises an InputError naming the file unless the output of `model` (fp32 on the CPU, as
    `build_model` makes it; left in eval mode) on a probe image ramping from −1 to 1, 1×C×128×128
    (a volume network, `spatial_dims` 3: 1×C×32×32×32), is finite: finite weights can still
    overflow. A network that cannot take that size (a ViT encoder of a fixed input size) is not
    probed."""
    dims = getattr(model, "spatial_dims", 2)
    side = PROBE_SIZE if dims == 2 else PROBE_SIZE_3D
    ramp = torch.linspace(-1, 1, side**dims).view(1, 1, *[side] * dims)
    try:
        with torch.inference_mode():
            output = model.eval()(ramp.expand(1, in_channels, *[-1] * dims))
    except (RuntimeError, AssertionError):  # a size it cannot take (timm asserts a ViT's): not probed
        return
    if not torch.isfinite(output).all():
        raise InputError(f"{path}: the network's output on a probe image is not finite; {DAMAGED}")


def read(path: str | os.PathLike, trust: bool = False, trust_hint: str | None = TRUST_HINT) -> dict[str, Any]:
    """The whole checkpoint dict of a file written by SegmentationTask, its record checked; any
    other file is an InputError naming it.

    By default with `torch.load(weights_only=True)`: only tensors and plain containers are
    unpickled, so a file crafted to run code on load is refused before anything runs.
    trust=True (`--trust-checkpoint`) unpickles anything: for legacy files from a trusted source.
    trust_hint: how the caller's user trusts a file, added to that refusal; None where they cannot.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingPathError(f"{path}: checkpoint file not found")
    if not trust and not zipfile.is_zipfile(path):  # torch.save's format since PyTorch 1.6
        raise InputError(f"{path}: not a readable segattn checkpoint (not a file written by torch.save)")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=not trust)
    except pickle.UnpicklingError as exc:
        raise InputError(
            f"{path}: refused to load: it holds objects beyond tensors and plain containers, and unpickling "
            f"them could run code ({str(exc).splitlines()[0][:200]})."
            + (f" If you trust where the file came from, {trust_hint}." if trust_hint else "")
        ) from exc
    except Exception as exc:  # torch raises several types for foreign or damaged files
        raise InputError(f"{path}: not a readable segattn checkpoint ({type(exc).__name__}: {exc})") from exc
    record = checkpoint.get(RECORD_KEY) if isinstance(checkpoint, dict) else None
    if record is None:
        raise InputError(f"{path}: no '{RECORD_KEY}' record; not a checkpoint written by segattn's SegmentationTask")
    if record.get("format_version") != FORMAT_VERSION:
        raise InputError(
            f"{path}: checkpoint format {record.get('format_version')!r}; this segattn reads format {FORMAT_VERSION}"
        )
    return checkpoint
