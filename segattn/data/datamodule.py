"""SegDataModule: data sets + Albumentations pipelines + DataLoaders for Lightning."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from segattn.data.base import SegDataset
from segattn.data.geometry import check_geometry
from segattn.data.intensity import IntensitySpec
from segattn.data.patches import VolumePatches
from segattn.data.pipeline_checks import check_normalisations
from segattn.data.sampling import EpochSampler, Transformed, evaluation_sampler, pad_collate
from segattn.data.slices import SlicePatches, check_slices, stack_depth
from segattn.data.transforms import (
    NormalizeSpec,
    Preset,
    deserialize,
    eval_pipeline,
    train_pipeline,
)
from segattn.data.volume_batches import Augment3D, WholeVolumes, check_kind, refuse_keys, volume_settings
from segattn.errors import InputError


class SegDataModule(L.LightningDataModule):
    """Feeds `SegmentationTask`: batches {"image": float N×C×H×W, "mask": int64 N×H×W
    (255 = ignore), "name": list[str]}. Evaluation images of different sizes are padded to the
    batch's largest (masks with 255), see `pad_collate`. Volume data sets give N×C×D×H×W and
    N×D×H×W, and "spacing": each volume's voxel size in mm.

    Args:
        train, val, test: data sets (any `SegDataset`, e.g. CocoSegmentation, or all of them
            `VolumeDataset`s, e.g. Decathlon); their `classes` must agree. In a YAML config each
            is a `class_path` with `init_args`. No image may be in two of them.

    For images:
        crop_size: side of the square training crop (default 256).
        augment: training augmentation preset: "natural" (default), "medical" or "none".
        normalize: "imagenet" (default), "zscore", {mean, std[, max_pixel_value]}, {percentile:
            [lo, hi]} or {window: [center, width]} (see `segattn.data.transforms.normalization`).
            A setting that a given train_transform (crop_size, augment) or both transforms
            (normalize) make unused is an InputError.
        train_transform, eval_transform: a whole pipeline in Albumentations' serialised form
            (`A.to_dict`), used instead of the preset / the normalisation. The training one must
            normalise (Normalize, ToFloat, Window, PercentileClip) exactly as the evaluation one
            does, and give a fixed crop size.

    For volumes (each of the image settings above is then an InputError, and these for images):
        patch_size: [d, h, w] of the training patches (required; three integers ≥ 1); see
            `VolumePatches`. Along an axis where a volume is smaller, its patch is padded (image 0,
            labels 255 = ignore, never scored), not resampled.
        foreground_share: share of patches placed around a labelled voxel (default 0.33, nnU-Net's).
        intensity: the normalisation spec of `segattn.data.intensity` (default
            {"zscore": {"foreground": false}}, for MR), of training patches and evaluation volumes.
        augment_3d: "flips" (default: mirror each axis with probability 1/2), "nnunet" (flips, then
            nnU-Net's rotation, scaling and intensity augmentation) or "none".
        slices: 2.5-D, {axis: 0 | 1 | 2, neighbours: n} (`segattn.data.slices`): training samples
            are 2-D slices along that axis with n neighbours on each side as channels, for a 2-D
            network ((2n + 1)·C input channels, `in_channels`); patch_size is then the slice's
            (h, w). Evaluation still sees whole volumes, which the task runs slice by slice.
        patches_per_volume: training patches (2.5-D: slices) drawn from each volume per epoch
            (default 1): an epoch is then volumes × this, so a small set of volumes makes epochs
            long enough to train between validations.
        orientation, spacing: the training grid (`segattn.data.geometry`; default: each scan's
            own): reorient every volume to axis codes such as "RAS", resample to [d, h, w] mm
            (in the reoriented order). Predictions go back to each scan's own grid.
        cache_dir: a folder where each volume is kept prepared (in the training grid, normalised)
            after its first read, memory-mapped by later ones (`segattn.data.prepared`; default
            none: every patch reads its scan again). Shared safely by workers, ranks and runs;
            an entry is renewed when its files or these settings change.

    For both:
        batch_size: training batch; val_batch_size defaults to it (volumes: to 1).
        num_workers: DataLoader worker processes (0 = load in the main process).

    Evaluation sees whole volumes (the network pads them to its strides), one per batch unless
    val_batch_size says otherwise (then zero-padded, labels 255): a whole volume can be large, and
    alone its scores do not depend on which volumes share its batch.

    The training order and each sample's augmentation depend only on (seed, epoch, index), see
    `segattn.data.sampling`: a resumed run, or one with another number of workers, sees the same
    batches. Under DDP each training sample is seen at most once per epoch across processes, and
    each evaluation sample exactly once.
    """

    def __init__(
        self,
        train: SegDataset,
        val: SegDataset,
        test: SegDataset | None = None,
        crop_size: int | None = None,
        augment: Preset | None = None,
        normalize: NormalizeSpec | None = None,
        train_transform: dict[str, Any] | None = None,
        eval_transform: dict[str, Any] | None = None,
        batch_size: int = 8,
        val_batch_size: int | None = None,
        num_workers: int = 0,
        patch_size: list[int] | None = None,
        foreground_share: float | None = None,
        intensity: IntensitySpec | None = None,
        augment_3d: Augment3D | None = None,
        slices: dict[str, int] | None = None,
        orientation: str | None = None,
        spacing: list[float] | None = None,
        patches_per_volume: int | None = None,
        cache_dir: str | None = None,
    ) -> None:
        super().__init__()
        if batch_size < 1 or (val_batch_size is not None and val_batch_size < 1):
            raise InputError(f"batch_size: expected a positive number, got {batch_size}/{val_batch_size}")
        if num_workers < 0:
            raise InputError(f"num_workers: expected 0 or more, got {num_workers}")
        self.volumes = check_kind({"train": train, "val": val, "test": test})
        for name, ds in (("val", val), ("test", test)):
            if ds is not None and list(ds.classes) != list(train.classes):
                raise InputError(f"data.{name}: classes {ds.classes} differ from data.train's {train.classes}")
        check_disjoint({"train": train, "val": val, "test": test})
        self.datasets = {"train": train, "val": val, "test": test}
        refuse_keys(
            {"crop_size": crop_size, "augment": augment, "normalize": normalize, "train_transform": train_transform,
             "eval_transform": eval_transform, "patch_size": patch_size, "foreground_share": foreground_share,
             "intensity": intensity, "augment_3d": augment_3d, "slices": slices, "orientation": orientation,
             "spacing": spacing, "patches_per_volume": patches_per_volume, "cache_dir": cache_dir},
            self.volumes,
        )  # fmt: skip
        self.batch_size = batch_size
        self.val_batch_size = val_batch_size or (1 if self.volumes else batch_size)
        self.num_workers = num_workers
        self.intensity: IntensitySpec | None = None  # a volume run's normalisation, for the checkpoint
        self.slices = None if slices is None else check_slices(slices)  # 2.5-D, for the task and checkpoint
        self.geometry = check_geometry(orientation, spacing)  # the training grid, for the checkpoint
        if self.volumes:
            self.patches = volume_settings(
                train, patch_size, foreground_share, intensity, augment_3d, self.slices, self.geometry,
                patches_per_volume, cache_dir,
            )  # fmt: skip
            self.intensity = self.patches["intensity"]
            self.train_transform, self.eval_transform = self.patches["transform"], None
            return
        channels = train.in_channels
        whole = "data.train_transform"
        unused = [("crop_size", crop_size), ("augment", augment)] if train_transform is not None else []
        if train_transform is not None and eval_transform is not None:
            whole, unused = "data.train_transform and eval_transform", [*unused, ("normalize", normalize)]
        for key, value in unused:
            if value is not None:
                raise InputError(f"data.{key} {value!r}: unused, since {whole} give the whole pipeline; leave it out")
        normalize = "imagenet" if normalize is None else normalize
        self.train_transform = (
            deserialize(train_transform, "data.train_transform")
            if train_transform is not None
            else train_pipeline(256 if crop_size is None else crop_size, normalize, channels, augment or "natural")
        )
        self.eval_transform = (
            deserialize(eval_transform, "data.eval_transform")
            if eval_transform is not None
            else eval_pipeline(normalize, channels)
        )
        if train_transform is not None or eval_transform is not None:
            given = " and ".join(
                f"data.{key}"
                for key, value in (("train_transform", train_transform), ("eval_transform", eval_transform))
                if value is not None
            )
            check_normalisations(
                self.train_transform, self.eval_transform, f"{given} (else data.normalize {normalize!r})"
            )

    @property
    def classes(self) -> list[str]:
        """Class names, index = label."""
        return list(self.datasets["train"].classes)

    @property
    def in_channels(self) -> int:
        """The network's input channels: the images' (2.5-D: the volumes' times each stack's slices)."""
        channels = self.datasets["train"].in_channels
        return channels if self.slices is None else channels * stack_depth(self.slices)

    def train_dataloader(self) -> DataLoader:
        seed = self.shared_seed()
        world_size, rank = self.processes()
        train = self.datasets["train"]
        if self.volumes:
            dataset = VolumePatches(train, seed=seed, **self.patches)
            dataset = dataset if self.slices is None else SlicePatches(dataset, self.slices)
        else:
            dataset = Transformed(train, self.train_transform, seed=seed)
        sampler = EpochSampler(dataset, seed, world_size, rank)
        drop_last = len(sampler) > self.batch_size
        return self.loader(dataset, self.batch_size, sampler, drop_last)

    def val_dataloader(self) -> DataLoader:
        return self.evaluation_loader("val")

    def test_dataloader(self) -> DataLoader:
        if self.datasets["test"] is None:
            raise InputError("data.test: no test data set is configured")
        return self.evaluation_loader("test")

    def evaluation_loader(self, split: str) -> DataLoader:
        if self.volumes:
            dataset = WholeVolumes(self.datasets[split], self.intensity, self.geometry, self.patches["cache_dir"])
        else:
            dataset = Transformed(self.datasets[split], self.eval_transform)
        world_size, rank = self.processes()
        sampler = evaluation_sampler(dataset, split, world_size, rank) if world_size > 1 else None
        return self.loader(dataset, self.val_batch_size, sampler)

    def loader(
        self,
        dataset: Dataset,
        batch_size: int,
        sampler: Sampler | None,
        drop_last: bool = False,
    ) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            drop_last=drop_last,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,  # training too: EpochSampler's keys carry the epoch
            pin_memory=torch.cuda.is_available(),
            collate_fn=pad_collate,  # evaluation images may differ in size
        )

    def processes(self) -> tuple[int, int]:
        """(world size, this process's rank) of the attached Trainer; (1, 0) without one."""
        trainer = self.trainer
        return (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)

    def shared_seed(self) -> int:
        """The run's seed (torch's, as set by seed_everything), the same on every process: rank
        0's is broadcast, since processes started without a seed would each draw their own."""
        seed = torch.initial_seed() % 2**32
        return int(self.trainer.strategy.broadcast(seed)) if self.trainer is not None else seed


def check_disjoint(datasets: dict[str, SegDataset | None]) -> None:
    """Raises an InputError naming an image that two splits share."""
    seen: dict[Path, str] = {}
    for split, dataset in datasets.items():
        for path in getattr(dataset, "image_paths", []) if dataset is not None else []:
            resolved = Path(path).resolve()
            if resolved in seen:
                raise InputError(f"data.{split} and data.{seen[resolved]} both hold {path}; splits must be disjoint")
            seen[resolved] = split
