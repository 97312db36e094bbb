"""Scoring a Segmenter on a data set, and printing the scores."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from segattn.data.base import SegDataset
from segattn.errors import InputError
from segattn.inference import Segmenter
from segattn.metrics import SegMetrics


def evaluate_dataset(segmenter: Segmenter, dataset: SegDataset, batch_size: int = 8) -> dict[str, Any]:
    """Dataset-level scores (see `segattn.metrics`) of the segmenter's label maps on raw items,
    at each image's own size. The data set's classes must be the checkpoint's."""
    if list(dataset.classes) != segmenter.classes:
        raise InputError(f"data classes {dataset.classes} differ from the checkpoint's {segmenter.classes}")
    metric = SegMetrics(len(segmenter.classes))
    for start in range(0, len(dataset), batch_size):
        items = [dataset.load(i) for i in range(start, min(start + batch_size, len(dataset)))]
        predictions = segmenter.predict([item["image"] for item in items], batch_size=batch_size)
        for item, pred in zip(items, predictions, strict=True):
            metric.update(torch.from_numpy(pred).long()[None], torch.from_numpy(item["mask"])[None])
    return to_plain(metric.compute(), segmenter.classes)


def to_plain(scores: dict[str, torch.Tensor], classes: list[str]) -> dict[str, Any]:
    """Tensors → floats (NaN kept), per-class scores keyed by class name."""
    plain: dict[str, Any] = {}
    for key, value in scores.items():
        if value.ndim == 0:
            plain[key] = float(value)
        else:
            plain[key] = {name: float(v) for name, v in zip(classes, value.tolist(), strict=True)}
    return plain


def print_scores(scores: dict[str, Any], title: str, console: Console | None = None) -> None:
    """A per-class table (IoU, Dice, Acc in %) and the summary scores."""
    table = Table(title=title)
    table.add_column("class")
    for column in ("IoU", "Dice", "Acc"):
        table.add_column(column, justify="right")
    for name in scores["IoU"]:
        table.add_row(name, *(percent(scores[column][name]) for column in ("IoU", "Dice", "Acc")))
    table.add_section()
    table.add_row("mean", percent(scores["mIoU"]), percent(scores["mDice"]), percent(scores["mAcc"]))
    console = console or Console()
    console.print(table)
    console.print(f"aAcc {percent(scores['aAcc'])}   fwIoU {percent(scores['fwIoU'])}")


def percent(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{100 * value:.2f}"


def write_scores(scores: dict[str, Any], out: str | os.PathLike) -> Path:
    """Writes metrics.json (NaN as null) into `out` and returns its path."""
    path = Path(out) / "metrics.json"
    path.parent.mkdir(parents=True, exist_ok=True)

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        return None if isinstance(value, float) and math.isnan(value) else value

    path.write_text(json.dumps(clean(scores), indent=2))
    return path
