"""Sample order and augmentation that depend only on (seed, epoch, index), never on RNG state;
and batching items of different sizes.

Why by hand: Lightning's checkpoints hold no RNG state, and Albumentations 2.x keeps its own RNG,
which neither `seed_everything` nor DataLoader worker seeding reaches. With the order drawn from
(seed, epoch) and each sample's augmentation seeded from (seed, epoch, index), an epoch's batches
are the same whatever ran before it: a run resumed from a checkpoint trains on exactly the batches
the uninterrupted run would have, and the number of DataLoader workers changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import Dataset, DistributedSampler

from segattn.data.base import Sample, SegDataset, to_tensors
from segattn.errors import InputError
from segattn.labels import IGNORE_INDEX


def sample_seed(seed: int, epoch: int, index: int, stream: int = 0) -> int:
    """A 32-bit seed for sample `index` in `epoch` of a run seeded with `seed`; `stream` ≥ 1 gives
    further independent seeds for the same sample (stream 0 is the seed as it always was)."""
    return int(np.random.SeedSequence([seed, epoch, index, *([stream] if stream else [])]).generate_state(1)[0])


class Transformed(Dataset):
    """A SegDataset seen through an Albumentations pipeline: items as `to_tensors` returns them.

    Items are read by index, or by an (epoch, index) key as `EpochSampler` yields them (a bare
    index is epoch 0). With a `seed`, the pipeline (an `A.Compose`) is reseeded before each item
    from (seed, epoch, index) by `sample_seed`: an item's augmentation then depends on
    nothing else.
    """

    def __init__(self, dataset: SegDataset, transform: Callable[..., dict], seed: int | None = None) -> None:
        self.dataset = dataset
        self.transform = transform
        self.seed = seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: int | tuple[int, int]) -> Sample:
        epoch, index = key if isinstance(key, tuple) else (0, key)
        if self.seed is not None:
            self.transform.set_random_seed(sample_seed(self.seed, epoch, index))
        return to_tensors(self.transform, self.dataset.load(index))


class EpochSampler(DistributedSampler):
    """Training order: a permutation drawn from (seed, epoch), dealt round-robin to
    `num_replicas` processes. The tail that would not fill every process equally (at most
    num_replicas − 1 samples, a different one each epoch) is left out, so no sample is seen twice
    in an epoch across processes. With one process the order is the permutation itself, so a
    1-process batch of size k·b holds exactly the samples of the k processes' batches of size b.

    It yields (epoch, index) keys, not bare indices: each sample's augmentation seed follows from
    its key (see `Transformed`), so DataLoader workers need no epoch of their own and may persist
    across epochs. `set_epoch` (Lightning calls it before each epoch) picks the epoch. A
    DistributedSampler, so Lightning's DDP keeps it rather than replacing it.
    """

    def __init__(self, dataset: Transformed, seed: int, num_replicas: int = 1, rank: int = 0) -> None:
        check_enough(dataset, "train", num_replicas)
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed, drop_last=True)

    def __iter__(self) -> Iterator[tuple[int, int]]:  # type: ignore[override]
        epoch = self.epoch
        return ((epoch, index) for index in super().__iter__())


def evaluation_sampler(dataset: Transformed, split: str, num_replicas: int, rank: int) -> DistributedSampler:
    """Evaluation order for `num_replicas` processes: every sample exactly once (ranks may differ
    by one sample), where PyTorch's DistributedSampler would repeat samples to even out the ranks
    and so count them twice in the metrics."""
    check_enough(dataset, split, num_replicas)
    return UnrepeatedDistributedSampler(dataset, num_replicas=num_replicas, rank=rank, shuffle=False)


def check_enough(dataset: Transformed, split: str, num_replicas: int) -> None:
    """Raises an InputError when some process would get no image of the split."""
    if len(dataset) < num_replicas:
        raise InputError(f"data.{split}: {len(dataset)} images cannot feed {num_replicas} processes")


def pad_collate(items: list[Sample]) -> Sample:
    """Batches transformed items of different sizes: images (C×H×W, or C×D×H×W volumes) are
    zero-padded (the mean colour after normalisation) and masks padded with 255 (ignore) at the
    end of each spatial axis to the batch's largest size, so padding is never scored. "size"
    lists each item's own (H, W) or (D, H, W); "spacing" each volume's voxel size, where items
    have one."""
    sizes = [tuple(item["image"].shape[1:]) for item in items]
    shape = tuple(max(axis) for axis in zip(*sizes, strict=True))
    images = torch.zeros(len(items), items[0]["image"].shape[0], *shape)
    masks = torch.full((len(items), *shape), IGNORE_INDEX, dtype=torch.int64)
    for i, (item, size) in enumerate(zip(items, sizes, strict=True)):
        region = tuple(slice(0, n) for n in size)
        images[(i, slice(None), *region)] = item["image"]
        masks[(i, *region)] = item["mask"]
    batch = {"image": images, "mask": masks, "name": [item["name"] for item in items], "size": sizes}
    if "spacing" in items[0]:
        batch["spacing"] = [tuple(float(s) for s in item["spacing"]) for item in items]
    return batch
