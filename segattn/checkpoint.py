"""The checkpoint record: what `SegmentationTask` writes and `Segmenter` reads.

A Lightning checkpoint of segattn carries, besides Lightning's own keys, a record under
"segattn" with everything inference needs: the model's registry name and keyword arguments,
input channels, class names, palette, and the evaluation transform in Albumentations' serialised
form. The weights are Lightning's "state_dict" under the "model." prefix. Files are loaded with
`weights_only=True`: only tensors and plain containers, no code runs on load.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from segattn.errors import InputError, MissingPathError

RECORD_KEY = "segattn"
FORMAT_VERSION = 1
MODEL_PREFIX = "model."


def make_record(
    model: str,
    model_args: dict[str, Any],
    in_channels: int,
    classes: list[str],
    palette: list[list[int]],
    eval_transform: dict[str, Any],
) -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "model": model,
        "model_args": dict(model_args),
        "in_channels": in_channels,
        "classes": list(classes),
        "palette": [list(map(int, c)) for c in palette],
        "eval_transform": eval_transform,
    }


def save(path: str | os.PathLike, weights: dict[str, torch.Tensor], record: dict[str, Any]) -> None:
    """Writes the smallest file `load` reads: `record` (from `make_record`) and the model's
    state_dict, without Lightning's keys; for a model built without training (benchmarks, tests)."""
    torch.save({RECORD_KEY: record, "state_dict": {MODEL_PREFIX + k: v for k, v in weights.items()}}, path)


def load(path: str | os.PathLike, trust: bool = False) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Reads a checkpoint: (record, model state_dict without the "model." prefix); see `read`."""
    checkpoint = read(path, trust)
    state = {k[len(MODEL_PREFIX) :]: v for k, v in checkpoint["state_dict"].items() if k.startswith(MODEL_PREFIX)}
    return checkpoint[RECORD_KEY], state


def read(path: str | os.PathLike, trust: bool = False) -> dict[str, Any]:
    """The whole checkpoint dict of a file written by SegmentationTask, its record checked; any
    other file is an InputError naming it.

    By default with `torch.load(weights_only=True)`: only tensors and plain containers are
    unpickled, so a file crafted to run code on load is refused before anything runs.
    trust=True (`--trust-checkpoint`) unpickles anything: for legacy files from a trusted source.
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
            f"them could run code ({str(exc).splitlines()[0][:200]}). If you trust where the file came "
            "from, pass --trust-checkpoint (Python: trust_checkpoint=True)."
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
