"""The `data` benchmark: batches/s of configs/coco.yaml's training pipeline on
../shared/data/coco_tiny: the first epoch (rasterising, filling the label cache), cached epochs,
and no cache; and of the volume pipeline on CT-sized scans drawn here, with and without the
prepared-volume cache (`data.cache_dir`)."""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import yaml

from segattn.data import SegDataModule, VolumeFolder
from segattn.data.config import load_datamodule

from . import REPO
from .records import Result, table


def epoch_row(label: str, datamodule: SegDataModule) -> list[str]:
    """A table row of one training epoch of `datamodule`, its workers started within it: label,
    batches, seconds, batches/s."""
    loader = datamodule.train_dataloader()
    start = time.perf_counter()
    batches = sum(1 for _ in loader)
    seconds = time.perf_counter() - start
    return [label, str(batches), f"{seconds:.2f}", f"{batches / seconds:.2f}"]


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
                label = {("cache", 0): "first epoch (rasterise, write cache)", ("none", 0): "no cache"}.get(
                    (cache, epoch), "cached" if cache == "cache" else "no cache"
                )
                rows.append(epoch_row(f"{label}, epoch {epoch + 1}", datamodule))
    notes = [
        f"configs/coco.yaml data (coco_tiny train: 80 images, 81 classes, crop 256, batch 8, natural preset), "
        f"{workers} DataLoader workers; each epoch includes starting the workers.",
        "The cache holds each image's rasterised label map as PNG, keyed by the annotation file's hash and settings.",
    ]
    series = title = f"Data: COCO pipeline, {workers} workers"
    columns = ["epoch", "batches", "seconds", "batches/s"]
    return Result(series, title, [table(columns, rows)], notes, {"workers": workers, "epochs": epochs})


def draw_scans(folder: Path, count: int, shape: tuple[int, int, int], seed: int = 0) -> VolumeFolder:
    """`count` CT-like scans (int16 HU, 0.8×0.8×2.5 mm) with an organ (class 1, an ellipsoid) and a
    lesion (class 2) inside it, as .nii.gz images and labels under `folder`, as a data set."""
    rng = np.random.default_rng(seed)
    grid = np.ogrid[tuple(slice(0, n) for n in shape)]
    affine = np.diag([0.8, 0.8, 2.5, 1.0])
    for i in range(count):
        centre = [n * rng.uniform(0.35, 0.65) for n in shape]
        radius = sum(((g - c) / (n / 5)) ** 2 for g, c, n in zip(grid, centre, shape, strict=True))
        labels = (radius < 1).astype(np.uint8) + (radius < 0.1)
        image = rng.normal(-400, 300, shape).astype(np.int16) + 450 * labels.astype(np.int16)
        for kind, array in (("images", image), ("labels", labels)):
            (folder / kind).mkdir(parents=True, exist_ok=True)
            nib.save(nib.Nifti1Image(array, affine), folder / kind / f"scan_{i}.nii.gz")
    return VolumeFolder(folder / "images", folder / "labels", ["background", "organ", "lesion"])


def volume_data(workers: int, epochs: int, shape: tuple[int, int, int] = (512, 512, 160)) -> Result:
    """Batches/s of SegDataModule's volume training pipeline (128³ patches, batch 2, z-score, flips)
    over scans of `shape`, each epoch 4 patches from each of 4 scans: without a cache, then with."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        train, val = draw_scans(Path(tmp) / "train", 4, shape), draw_scans(Path(tmp) / "val", 1, shape, seed=1)
        for cache in (None, Path(tmp) / "cache"):
            datamodule = SegDataModule(
                train, val, patch_size=[128, 128, 128], batch_size=2, num_workers=workers, patches_per_volume=4,
                cache_dir=None if cache is None else str(cache),
            )  # fmt: skip
            for epoch in range(epochs):
                label = "no cache" if cache is None else "cache: prepare, write" if epoch == 0 else "cached"
                rows.append(epoch_row(f"{label}, epoch {epoch + 1}", datamodule))
    notes = [
        f"4 drawn CT-like scans of {'×'.join(map(str, shape))} int16 voxels (.nii.gz), 128³ patches "
        f"(foreground share 0.33), batch 2, 4 patches per scan per epoch, per-volume z-score, flips; "
        f"{workers} DataLoader workers; each epoch includes starting the workers.",
        "Without a cache every patch reads, decompresses and normalises its whole scan; the cache "
        "(`data.cache_dir`, segattn/data/prepared.py) keeps each prepared scan as .npy files that patches "
        "map into memory.",
    ]
    series = title = f"Data: volume pipeline, CT-sized scans, {workers} workers"
    columns = ["epoch", "batches", "seconds", "batches/s"]
    return Result(series, title, [table(columns, rows)], notes, {"workers": workers, "epochs": epochs, "shape": shape})


def run(args: argparse.Namespace) -> list[Result]:
    """`data`: the chosen pipelines."""
    runs = {"coco": data, "volumes": volume_data}
    return [runs[name](args.workers, args.epochs) for name in args.pipelines]
