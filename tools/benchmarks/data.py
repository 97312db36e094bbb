"""The `data` benchmark: batches/s of configs/coco.yaml's training pipeline on
../shared/data/coco_tiny: the first epoch (rasterising, filling the label cache), cached epochs,
and no cache."""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import yaml

from segattn.data.config import load_datamodule

from . import REPO
from .records import Result, table


def data(workers: int, epochs: int) -> Result:
    """Batches, seconds and batches/s of each epoch, with the label cache and without."""
    config = yaml.safe_load((REPO / "configs" / "coco.yaml").read_text())
    if not Path(config["data"]["train"]["init_args"]["images_dir"]).is_dir():
        raise SystemExit("data benchmark: ../shared/data/coco_tiny not found (run from the repository root)")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for cache in ("cache", "none"):
            for split in ("train", "val"):
                config["data"][split]["init_args"]["cache_dir"] = str(Path(tmp) / "cache") if cache == "cache" else None
            config["data"]["num_workers"] = workers
            path = Path(tmp) / f"{cache}.yaml"
            path.write_text(yaml.safe_dump(config))
            datamodule = load_datamodule(path)
            for epoch in range(epochs):
                loader = datamodule.train_dataloader()
                start = time.perf_counter()
                batches = sum(1 for _ in loader)
                seconds = time.perf_counter() - start
                label = {("cache", 0): "first epoch (rasterise, write cache)", ("none", 0): "no cache"}.get(
                    (cache, epoch), "cached" if cache == "cache" else "no cache"
                )
                rows.append([f"{label}, epoch {epoch + 1}", str(batches), f"{seconds:.2f}", f"{batches / seconds:.2f}"])
    notes = [
        f"configs/coco.yaml data (coco_tiny train: 80 images, 81 classes, crop 256, batch 8, natural preset), "
        f"{workers} DataLoader workers; each epoch includes starting the workers.",
        "The cache holds each image's rasterised label map as PNG, keyed by the annotation file's hash and settings.",
    ]
    series = title = f"Data: COCO pipeline, {workers} workers"
    columns = ["epoch", "batches", "seconds", "batches/s"]
    return Result(series, title, [table(columns, rows)], notes, {"workers": workers, "epochs": epochs})


def run(args: argparse.Namespace) -> list[Result]:
    """`data`."""
    return [data(args.workers, args.epochs)]
