"""The prepared-volume cache (`data.cache_dir`): the same patches and evaluation volumes as without it,
later reads that do not touch the scans, a changed scan prepared again, and its folder checked."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from segattn.data import SegDataModule, VolumeFolder, VolumePatches
from segattn.data.prepared import class_locations
from segattn.data.volume_batches import WholeVolumes
from segattn.errors import InputError

from .test_data import synthetic
from .test_volume_datamodule import volume_root, volumes  # noqa: F401  (volume_root: a fixture)
from .test_volume_sets import save

INTENSITY = {"zscore": {"foreground": False}}
KEYS = [(epoch, index) for epoch in range(3) for index in range(6)]


def folder(root: Path) -> VolumeFolder:
    return volumes(root, "train")


def patches(root: Path, cache: Path | None) -> VolumePatches:
    return VolumePatches(folder(root), (8, 8, 8), foreground=0.5, seed=4, intensity=INTENSITY, cache_dir=cache)


def refuse_reads(dataset: VolumePatches | WholeVolumes) -> None:
    def load(index: int):
        raise AssertionError(f"volume {index} was read again")

    dataset.volumes.dataset.load = load


def test_cached_patches_are_the_uncached_ones_and_later_reads_skip_the_scans(volume_root, tmp_path):  # noqa: F811
    root = tmp_path / "data"
    shutil.copytree(volume_root, root)
    expected = [patches(root, None)[key] for key in KEYS]
    first = [patches(root, tmp_path / "cache")[key] for key in KEYS]  # prepares each volume once
    cached = patches(root, tmp_path / "cache")
    refuse_reads(cached)
    for want, *got in zip(expected, first, [cached[key] for key in KEYS], strict=True):
        for sample in got:
            assert torch.equal(sample["image"], want["image"]) and torch.equal(sample["mask"], want["mask"])
            assert sample["mask"].dtype == torch.int64 and sample["start"] == want["start"]
            assert (sample["name"], sample["spacing"]) == (want["name"], want["spacing"])
    assert len(list((tmp_path / "cache").glob("*.json"))) == 6  # one entry per volume


def test_whole_volumes_from_the_cache_equal_the_scans_and_can_be_written(volume_root, tmp_path):  # noqa: F811
    plain = WholeVolumes(folder(volume_root), INTENSITY)
    WholeVolumes(folder(volume_root), INTENSITY, cache_dir=tmp_path)[0]  # prepares it
    cached = WholeVolumes(folder(volume_root), INTENSITY, cache_dir=tmp_path)
    refuse_reads(cached)
    sample = cached[0]
    assert torch.equal(sample["image"], plain[0]["image"]) and torch.equal(sample["mask"], plain[0]["mask"])
    sample["image"] += 1  # its own copy: the memory-mapped entry is read-only


def test_a_changed_scan_or_setting_is_prepared_again(volume_root, tmp_path):  # noqa: F811
    root = tmp_path / "data"
    shutil.copytree(volume_root, root)
    cache = tmp_path / "cache"
    before = WholeVolumes(folder(root), INTENSITY, cache_dir=cache)[0]["image"]
    image = root / "train" / "images" / "case_0.nii.gz"
    shape = tuple(before.shape[1:])
    save(image, np.random.default_rng(1).random(shape).astype(np.float32) * 50)
    os.utime(image, ns=(1, 1))  # another modification time even where the clock is coarse
    after = WholeVolumes(folder(root), INTENSITY, cache_dir=cache)[0]["image"]
    expected = WholeVolumes(folder(root), INTENSITY)[0]["image"]
    assert torch.equal(after, expected) and not torch.equal(after, before)
    WholeVolumes(folder(root), {"window": [0.5, 1]}, cache_dir=cache)[0]
    assert len(list(cache.glob("case_0.*.json"))) == 3  # old entries stay, named apart


def test_class_locations_list_each_labelled_class_in_c_order():
    mask = np.zeros((3, 4, 5), np.uint8)
    mask[0, 1, 2] = mask[2, 3, 4] = 2
    mask[1, 0, 0] = 255
    locations = class_locations(mask)
    assert list(locations) == [2]
    assert [tuple(int(a) for a in np.unravel_index(i, mask.shape)) for i in locations[2]] == [(0, 1, 2), (2, 3, 4)]


def test_the_cache_folder_is_checked_and_is_a_volume_setting(volume_root, synthetic_root, tmp_path):  # noqa: F811
    blocker = tmp_path / "a file"
    blocker.write_text("")
    train, val = volumes(volume_root, "train"), volumes(volume_root, "val")
    with pytest.raises(InputError, match=r"^data\.cache_dir: cannot create the folder"):
        SegDataModule(train, val, patch_size=[8, 8, 8], cache_dir=str(blocker / "cache"))
    images = synthetic(synthetic_root), synthetic(synthetic_root, "val")
    with pytest.raises(InputError, match=re.escape("data.cache_dir: applies to volume data sets only")):
        SegDataModule(*images, cache_dir=str(tmp_path / "cache"))
