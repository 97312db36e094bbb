"""Per-case scores for volumes (or images): Dice, IoU, HD95 and ASSD per class per case, summary
rows, and the CSV and JSON files that hold them.

A case is (name, prediction, reference, spacing): integer label maps of one shape, D×H×W or H×W,
reference elements equal to `ignore_index` not scored, and the size of an element along each axis
(e.g. (3.0, 0.8, 0.8) mm for D, H, W; None = 1 per axis). Per class and case:

- Dice and IoU from the case's own confusion matrix, as SegMetrics defines them
  (`segattn.metrics.scores`): a class in neither map is 0/0, NaN with absent="nan" (the default),
  1 or 0 with absent="one" / "zero".
- HD95 and ASSD in the spacing's unit (mm), as `segattn.boundary` defines them: NaN where the
  class is in neither map, the grid's diagonal where it is in only one.

Summary per class and column (the Medical Segmentation Decathlon's convention): `mean` over the
cases where the value is not NaN, `std` the sample standard deviation (ddof = 1) over the same
cases (NaN under two), and `count` the number of those cases. Background (class 0) is left out
unless include_background=True.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from segattn.atomic import write_text
from segattn.boundary import case_distances, check_spacing
from segattn.errors import InputError
from segattn.labels import IGNORE_INDEX
from segattn.metrics import Absent, confusion_matrix, scores

METRICS = ("Dice", "IoU", "HD95", "ASSD")
HEADER = ("Dice", "IoU", "HD95_mm", "ASSD_mm")  # the CSV's names of METRICS
SUMMARY = ("mean", "std", "count")
Case = tuple[str, Any, Any, Sequence[float] | None]  # (name, prediction, reference, spacing)


@dataclass
class CaseTable:
    """Per-case scores: `values[i, m, j]` is METRICS[m] of class `classes[j]` (label
    `labels[j]`) in case `names[i]`; float64, NaN where not defined."""

    names: list[str]
    classes: list[str]
    labels: list[int]
    values: np.ndarray  # cases × METRICS × classes

    def summary(self) -> dict[str, dict[str, dict[str, float]]]:
        """{metric: {class: {"mean", "std", "count"}}} over the cases where the value is not NaN."""
        counts = (~np.isnan(self.values)).sum(axis=0)
        total = np.nansum(self.values, axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = total / counts  # 0/0 → NaN: no case scored
            squares = np.nansum((self.values - mean) ** 2, axis=0)
            std = np.where(counts > 1, np.sqrt(squares / (counts - 1)), np.nan)
        return {
            metric: {
                name: {"mean": float(mean[m, j]), "std": float(std[m, j]), "count": int(counts[m, j])}
                for j, name in enumerate(self.classes)
            }
            for m, metric in enumerate(METRICS)
        }

    def rows(self) -> list[list[Any]]:
        """The CSV's rows under ("case", "class", *HEADER): one per case and class, then one per
        summary statistic and class (case = "mean", "std", "count")."""
        rows = [
            [case, name, *self.values[i, :, j].tolist()]
            for i, case in enumerate(self.names)
            for j, name in enumerate(self.classes)
        ]
        summary = self.summary()
        for statistic in SUMMARY:
            rows += [[statistic, name, *(summary[m][name][statistic] for m in METRICS)] for name in self.classes]
        return rows


def case_metrics(
    cases: Iterable[Case],
    classes: int | Sequence[str],
    ignore_index: int | None = IGNORE_INDEX,
    include_background: bool = False,
    absent: Absent = "nan",
) -> CaseTable:
    """Scores every case (see the module docstring). `classes`: the class names, or their count
    K (names "0" … "K−1"). Predictions and references: numpy arrays or CPU tensors."""
    names_of = [str(c) for c in range(classes)] if isinstance(classes, int) else [str(c) for c in classes]
    k = len(names_of)
    if k < 2:
        raise InputError(f"classes: expected at least 2, got {k}")
    labels = list(range(0 if include_background else 1, k))
    names, values = [], []
    for case in cases:
        name, pred, truth, spacing = case
        name = str(name)
        if name in SUMMARY or name in names:
            raise InputError(f"case {name!r}: case names must be unique and not one of {SUMMARY}")
        try:
            values.append(score_case(np.asarray(pred), np.asarray(truth), k, spacing, ignore_index, absent)[:, labels])
        except InputError as exc:
            raise InputError(f"case {name!r}: {exc}") from exc
        names.append(name)
    table = np.stack(values) if values else np.empty((0, len(METRICS), len(labels)))
    return CaseTable(names, [names_of[c] for c in labels], labels, table)


def score_case(
    pred: np.ndarray,
    truth: np.ndarray,
    num_classes: int,
    spacing: Sequence[float] | None,
    ignore_index: int | None,
    absent: Absent,
) -> np.ndarray:
    """METRICS × K float64 for one case's label maps (D×H×W or H×W)."""
    if pred.shape != truth.shape or pred.ndim not in (2, 3):
        raise InputError(f"prediction {pred.shape} and reference {truth.shape}: expected one shape, D×H×W or H×W")
    spacing = check_spacing(spacing, pred.ndim)
    for role, array in (("prediction", pred), ("reference", truth)):
        if not np.issubdtype(array.dtype, np.integer):
            raise InputError(f"{role}: expected integer labels, got {array.dtype}")
    pred_t, truth_t = torch.from_numpy(pred.astype(np.int64)), torch.from_numpy(truth.astype(np.int64))
    overlap = scores(confusion_matrix(pred_t[None], truth_t[None], num_classes, ignore_index), absent)
    hd95, assd = case_distances(pred, truth, num_classes, spacing, ignore_index)
    return np.stack([overlap["Dice"].numpy(), overlap["IoU"].numpy(), hd95, assd])


def write_case_csv(table: CaseTable, path: str | os.PathLike) -> None:
    """Writes the table (`CaseTable.rows`, NaN as "nan") to a CSV file, atomically."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["case", "class", *HEADER])
    writer.writerows(table.rows())
    write_text(path, text.getvalue())


def write_case_summary(table: CaseTable, path: str | os.PathLike) -> None:
    """Writes {"cases": [names], "classes": [names], "summary": CaseTable.summary()} as JSON
    (NaN as null; distances in the cases' spacing unit, mm), atomically."""
    content = {"cases": table.names, "classes": table.classes, "summary": nan_to_null(table.summary())}
    write_text(path, json.dumps(content, indent=2))


def nan_to_null(value: Any) -> Any:
    """NaN floats, in nested dicts and lists, as None (JSON's null)."""
    if isinstance(value, dict):
        return {k: nan_to_null(v) for k, v in value.items()}
    if isinstance(value, list):
        return [nan_to_null(v) for v in value]
    return None if isinstance(value, float) and math.isnan(value) else value


def join_cases(tables: Sequence[CaseTable]) -> CaseTable:
    """One table of the cases of several (same classes), in order."""
    first = tables[0]
    return CaseTable(
        [name for table in tables for name in table.names],
        first.classes,
        first.labels,
        np.concatenate([table.values for table in tables]),
    )


def print_case_summary(table: CaseTable, title: str, console: Console | None = None) -> None:
    """Per class: Dice and IoU in %, HD95 and ASSD in mm, each as mean ± std over the cases
    where it is defined, and how many those are."""
    summary = table.summary()
    view = Table(title=title)
    for column in ("class", "Dice %", "IoU %", "HD95 mm", "ASSD mm", "cases"):
        view.add_column(column, justify="left" if column == "class" else "right")
    for name in table.classes:
        cells = []
        for metric in METRICS:
            entry, scale = summary[metric][name], 100 if metric in ("Dice", "IoU") else 1
            cells.append("n/a" if entry["count"] == 0 else f"{scale * entry['mean']:.2f} ± {scale * entry['std']:.2f}")
        view.add_row(name, *cells, str(summary["Dice"][name]["count"]))
    (console or Console()).print(view)
