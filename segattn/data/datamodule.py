"""SegDataModule: data sets + Albumentations pipelines + DataLoaders for Lightning."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import albumentations as A
import lightning as L
import torch
from torch.utils.data import DataLoader, get_worker_info

from segattn.data.base import SegDataset, Transformed, pad_collate
from segattn.data.transforms import IMAGENET_MEAN, IMAGENET_STD, Preset, eval_pipeline, train_pipeline
from segattn.errors import InputError


class SegDataModule(L.LightningDataModule):
    """Feeds `SegmentationTask`: batches {"image": float N×C×H×W, "mask": int64 N×H×W
    (255 = ignore), "name": list[str]}. Evaluation images of different sizes are padded to the
    batch's largest (masks with 255), see `pad_collate`.

    Args:
        train, val, test: data sets (any `SegDataset`, e.g. CocoSegmentation); their `classes`
            must agree. In a YAML config each is a `class_path` with `init_args`.
        crop_size: side of the square training crop.
        augment: training augmentation preset ("natural" or "none").
        mean, std: per-channel normalisation of uint8/255 images (one value per image channel).
        batch_size: training batch; val_batch_size defaults to it.
        num_workers: DataLoader worker processes (0 = load in the main process).
    """

    def __init__(
        self,
        train: SegDataset,
        val: SegDataset,
        test: SegDataset | None = None,
        crop_size: int = 256,
        augment: Preset = "natural",
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        batch_size: int = 8,
        val_batch_size: int | None = None,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        if batch_size < 1 or (val_batch_size is not None and val_batch_size < 1):
            raise InputError(f"batch_size: expected a positive number, got {batch_size}/{val_batch_size}")
        if num_workers < 0:
            raise InputError(f"num_workers: expected 0 or more, got {num_workers}")
        for name, ds in (("val", val), ("test", test)):
            if ds is not None and list(ds.classes) != list(train.classes):
                raise InputError(f"data.{name}: classes {ds.classes} differ from data.train's {train.classes}")
        if len(mean) != train.in_channels or len(std) != train.in_channels:
            raise InputError(
                f"data.mean/std: expected {train.in_channels} values (one per image channel), "
                f"got {len(mean)}/{len(std)}"
            )
        self.datasets = {"train": train, "val": val, "test": test}
        self.train_transform = train_pipeline(crop_size, mean, std, augment)
        self.eval_transform = eval_pipeline(mean, std)
        self.batch_size = batch_size
        self.val_batch_size = val_batch_size or batch_size
        self.num_workers = num_workers

    @property
    def classes(self) -> list[str]:
        """Class names, index = label."""
        return list(self.datasets["train"].classes)

    @property
    def in_channels(self) -> int:
        return self.datasets["train"].in_channels

    def train_dataloader(self) -> DataLoader:
        # Albumentations 2.x keeps its own RNG, which neither seed_everything nor DataLoader
        # worker seeding reaches: seed it from torch (set by seed_everything) here, and per
        # worker in `seed_albumentations`, so runs are reproducible and workers differ.
        self.train_transform.set_random_seed(torch.initial_seed() % 2**32)
        return self.loader(Transformed(self.datasets["train"], self.train_transform), self.batch_size, True)

    def val_dataloader(self) -> DataLoader:
        return self.loader(Transformed(self.datasets["val"], self.eval_transform), self.val_batch_size, False)

    def test_dataloader(self) -> DataLoader:
        if self.datasets["test"] is None:
            raise InputError("data.test: no test data set is configured")
        return self.loader(Transformed(self.datasets["test"], self.eval_transform), self.val_batch_size, False)

    def predict_dataloader(self) -> DataLoader:
        """The test set if one is configured, else the validation set."""
        dataset = self.datasets["test"] or self.datasets["val"]
        return self.loader(Transformed(dataset, self.eval_transform), self.val_batch_size, False)

    def loader(self, dataset: Transformed, batch_size: int, train: bool) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=train,
            drop_last=train and len(dataset) > batch_size,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=torch.cuda.is_available(),
            worker_init_fn=seed_albumentations,
            collate_fn=pad_collate,  # evaluation images may differ in size
        )


def seed_albumentations(worker_id: int) -> None:
    """DataLoader worker init: seeds the worker's copy of the pipeline from the worker's seed."""
    info = get_worker_info()
    transform: Any = info.dataset.transform
    if isinstance(transform, A.Compose):
        transform.set_random_seed(info.seed % 2**32)
