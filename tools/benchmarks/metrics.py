"""The `metrics` benchmark: SegMetrics update+compute against torchmetrics' MulticlassJaccardIndex
and smp.metrics on 16 × 512×512 label maps, 19 classes, on the CPU (and the GPU if any)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import segmentation_models_pytorch as smp
import torch
from torchmetrics.classification import MulticlassJaccardIndex

from segattn.metrics import SegMetrics

from .harness import median_seconds, synchronized, timing_notes
from .machine import load_average
from .records import Result, table

OURS = "segattn SegMetrics"


def metrics(repeats: int, device: str) -> Result:
    """Milliseconds per update+compute of each evaluator on 16 × 512×512 int64 label maps, 19
    classes, 5 % of targets 255 (ignore), on `device`."""
    k, generator = 19, torch.Generator().manual_seed(0)
    target = torch.randint(0, k, (16, 512, 512), generator=generator)
    target[torch.rand(target.shape, generator=generator) < 0.05] = 255
    preds = torch.randint(0, k, (16, 512, 512), generator=generator)
    preds, target = preds.to(device), target.to(device)
    ours = SegMetrics(k).to(device)
    tm = MulticlassJaccardIndex(k, average=None, ignore_index=255).to(device)
    tm_fast = MulticlassJaccardIndex(k, average=None, ignore_index=255, validate_args=False).to(device)
    results: dict[str, torch.Tensor] = {}

    def run(name: str, metric: Any) -> Callable[[], None]:
        def call() -> None:
            metric.reset()
            metric.update(preds, target)
            value = metric.compute()
            results[name] = value["IoU"] if isinstance(value, dict) else value

        return call

    def smp_call() -> None:
        stats = smp.metrics.get_stats(preds, target, mode="multiclass", num_classes=k, ignore_index=255)
        results["smp"] = smp.metrics.iou_score(*stats, reduction="none").mean(dim=0)  # not the same definition

    candidates: dict[Any, Callable[[], object]] = {
        OURS: run(OURS, ours),
        "torchmetrics MulticlassJaccardIndex (defaults)": run("tm", tm),
        "torchmetrics MulticlassJaccardIndex (validate_args=False)": run("tm fast", tm_fast),
        "smp get_stats + iou_score": smp_call,
    }
    if device == "cuda":
        candidates = {name: synchronized(call) for name, call in candidates.items()}
    load_before = load_average()
    seconds = median_seconds(candidates, repeats)
    load_after = load_average()
    base = seconds[OURS]
    rows = [[str(name), f"{1000 * t:.1f}", f"{t / base:.2f}×"] for name, t in seconds.items()]
    agree = (results[OURS].float().cpu() - results["tm"].float().cpu()).abs().max()
    notes = [
        f"16 label maps of 512×512 (preds and targets int64, 5 % of targets 255 = ignore), 19 classes, on {device}.",
        f"Per-class IoU of segattn and torchmetrics agree to {float(agree):.1e} (max abs); smp's per-image "
        "stats are a different definition, timed for its cost only.",
        "torchmetrics' default validate_args=True checks the inputs with torch.unique; segattn checks predictions "
        "with one aminmax and counts with one bincount, in which ignored and out-of-range targets land in "
        "checked, dropped bins.",
        *timing_notes(repeats, load_before, load_after),
    ]
    series = title = f"Metrics: update+compute, 16 × 512², 19 classes, {device}"
    columns = ["evaluator", "ms per update+compute", "segattn is faster by"]
    settings = {"repeats": repeats, "device": device}
    return Result(series, title, [table(columns, rows)], notes, settings, (load_before, load_after))


def run(args: argparse.Namespace) -> list[Result]:
    """One run per device: the CPU, and the GPU if any."""
    return [metrics(args.repeats, device) for device in ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]]
