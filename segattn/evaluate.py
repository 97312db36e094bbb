"""Evaluating a Segmenter on a data set: scores, per-class table, report files.

The scores are SegMetrics' (see `segattn.metrics`) over label maps predicted at each image's own
size from raw data-set items, through the checkpoint's evaluation transform: the same numbers as
the validation inside `fit` for the same checkpoint and split.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from segattn.atomic import write_text
from segattn.boundary import BoundaryMetrics
from segattn.case_metrics import CaseTable, case_metrics, join_cases, nan_to_null, write_case_csv, write_case_summary
from segattn.data.base import SegDataset
from segattn.data.io import write_image
from segattn.data.pipeline_checks import check_pixel_depth
from segattn.data.volume_io import Volume
from segattn.data.volumes import VolumeDataset
from segattn.errors import InputError, check_count
from segattn.inference import Segmenter
from segattn.metrics import PER_CLASS, Absent, Averaging, SegMetrics, confusion_matrix, scores
from segattn.viz import plot_confusion, side_by_side


@dataclass
class Evaluation:
    """What `evaluate_dataset` measured: scores (per-class values keyed by class name), the
    summed confusion matrix (int64 K×K, rows = truth) and each image's own mIoU."""

    scores: dict[str, Any]
    confmat: np.ndarray
    image_miou: list[tuple[int, str, float]]  # (index in the data set, name, mIoU)
    classes: list[str]
    cases: CaseTable | None = None  # volumes: Dice, IoU, HD95 and ASSD (mm) per class per case


def evaluate_dataset(
    segmenter: Segmenter,
    dataset: SegDataset,
    batch_size: int = 8,
    averaging: Averaging = "dataset",
    absent: Absent = "nan",
    include_background: bool = True,
    boundary: bool = False,
    **predict_options: Any,
) -> Evaluation:
    """Scores the segmenter on every item of the data set (classes must be the checkpoint's).

    boundary=True adds HD95 and ASSD (see `segattn.boundary`; CPU, slower). predict_options go
    to `Segmenter.predict` (tta, scales, slide, blending). A volume data set also gets the
    per-case table (`Evaluation.cases`: the Decathlon convention, distances in mm from each
    case's spacing), whatever `boundary` says; its scores hold no pixel-unit HD95/ASSD."""
    check_count("batch_size", batch_size)
    if list(dataset.classes) != segmenter.classes:
        raise InputError(f"data classes {dataset.classes} differ from the checkpoint's {segmenter.classes}")
    k = len(segmenter.classes)
    metric = SegMetrics(k, averaging=averaging, absent=absent, include_background=include_background)
    volumes = isinstance(dataset, VolumeDataset)
    distances = BoundaryMetrics(k) if boundary and not volumes else None  # volumes: in mm, per case
    image_miou, cases = [], []
    for start in range(0, len(dataset), batch_size):
        indices = range(start, min(start + batch_size, len(dataset)))
        items = [dataset.load(i) for i in indices]
        for index, item in zip(indices, items, strict=True):  # named by file: predict sees arrays
            if not volumes:
                check_pixel_depth(segmenter.transform, item["image"], source_name(dataset, index, item))
        inputs = [scan(dataset, i, item) if volumes else item["image"] for i, item in zip(indices, items, strict=True)]
        predictions = segmenter.predict(inputs, batch_size=batch_size, **predict_options)
        for index, item, pred in zip(indices, items, predictions, strict=True):
            pred_t, target_t = torch.from_numpy(pred).long()[None], torch.from_numpy(item["mask"])[None]
            cm = confusion_matrix(pred_t, target_t, k, per_image=True)  # 1×K×K
            metric.update_confusion(cm)
            if distances is not None:
                distances.update(pred_t, target_t)
            own = scores(cm[0], absent, include_background)["mIoU"]
            image_miou.append((index, item["name"], float(own)))
            if volumes:  # one case at a time: a large CT's labels are not all held at once
                case = (item["name"], pred, item["mask"], item["spacing"])
                cases.append(
                    case_metrics([case], segmenter.classes, include_background=include_background, absent=absent)
                )
    result = to_plain(metric.compute(), segmenter.classes)
    if distances is not None:
        result |= to_plain(distances.compute(), segmenter.classes)
    table = join_cases(cases) if volumes else None
    return Evaluation(result, metric.confmat.cpu().numpy(), image_miou, list(segmenter.classes), table)


def scan(dataset: VolumeDataset, index: int, item: dict[str, Any]) -> Volume:
    """An evaluation volume as the Segmenter takes it: its voxels with their affine and spacing (a
    training grid needs them), named by its file."""
    return Volume(np.moveaxis(item["image"], 0, -1), item["affine"], item["spacing"], None, dataset.image_paths[index])


def source_name(dataset: SegDataset, index: int, item: dict[str, Any]) -> str:
    """The item's image file where the data set knows it, else its name."""
    paths = getattr(dataset, "image_paths", None)
    return str(paths[index]) if paths is not None and index < len(paths) else str(item["name"])


def to_plain(values: dict[str, torch.Tensor], classes: list[str]) -> dict[str, Any]:
    """Tensors → floats (NaN kept); per-class tensors → {class name: float}."""
    plain: dict[str, Any] = {}
    for key, value in values.items():
        if value.ndim == 0:
            plain[key] = float(value)
        else:
            plain[key] = {name: float(v) for name, v in zip(classes, value.tolist(), strict=True)}
    return plain


def print_scores(result: dict[str, Any], title: str, console: Console | None = None) -> None:
    """A per-class table (IoU, Dice, Precision, Recall in %, HD95/ASSD in pixels when present)
    and the summary scores."""
    columns = [c for c in ("IoU", "Dice", "Precision", "Recall", "HD95", "ASSD") if c in result]
    table = Table(title=title)
    table.add_column("class")
    for column in columns:
        table.add_column(column, justify="right")
    for name in result["IoU"]:
        table.add_row(name, *(cell(column, result[column][name]) for column in columns))
    table.add_section()
    table.add_row("mean", *(cell(column, result[f"m{column}"]) for column in columns))
    console = console or Console()
    console.print(table)
    console.print(f"aAcc {cell('aAcc', result['aAcc'])}   fwIoU {cell('fwIoU', result['fwIoU'])}")


def cell(column: str, value: float) -> str:
    if math.isnan(value):
        return "n/a"
    return f"{value:.2f}" if column in ("HD95", "ASSD") else f"{100 * value:.2f}"


def write_report(
    evaluation: Evaluation,
    out: str | os.PathLike,
    segmenter: Segmenter | None = None,
    dataset: SegDataset | None = None,
    worst: int = 8,
) -> dict[str, Path]:
    """Writes metrics.json (NaN as null), per_class.csv, confusion.png and, given the segmenter
    and data set, worst/NN_<name>.png: image | truth | prediction for the `worst` images with
    the lowest own mIoU (images only); for volumes, per_case.csv and case_summary.json (see
    `segattn.case_metrics`). Returns {what: path}."""
    if not isinstance(worst, int) or worst < 0:
        raise InputError(f"worst: expected 0 or more images for the gallery, got {worst!r}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"metrics": out / "metrics.json", "per_class": out / "per_class.csv", "confusion": out / "confusion.png"}
    write_text(paths["metrics"], json.dumps(nan_to_null(evaluation.scores), indent=2))
    columns = [c for c in (*PER_CLASS, "HD95", "ASSD") if c in evaluation.scores]
    table = io.StringIO()
    writer = csv.writer(table)
    writer.writerow(["class", *columns])
    for name in evaluation.classes:
        writer.writerow([name, *(evaluation.scores[c][name] for c in columns)])
    write_text(paths["per_class"], table.getvalue())
    plot_confusion(evaluation.confmat, evaluation.classes, paths["confusion"])
    if evaluation.cases is not None:
        paths |= {"per_case": out / "per_case.csv", "cases": out / "case_summary.json"}
        write_case_csv(evaluation.cases, paths["per_case"])
        write_case_summary(evaluation.cases, paths["cases"])
    elif segmenter is not None and dataset is not None and worst > 0:
        folder = out / "worst"
        folder.mkdir(exist_ok=True)
        ranked = sorted((m if not math.isnan(m) else math.inf, i, n) for i, n, m in evaluation.image_miou)
        chosen = ranked[:worst]
        items = [dataset.load(i) for _, i, _ in chosen]
        predictions = segmenter.predict([item["image"] for item in items])
        for rank, (item, pred) in enumerate(zip(items, predictions, strict=True)):
            strip = side_by_side(item["image"], item["mask"], pred, segmenter.palette)
            write_image(folder / f"{rank:02d}_{Path(item['name']).stem}.png", strip)
        paths["worst"] = folder
    return paths
