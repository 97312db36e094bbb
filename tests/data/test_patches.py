"""Random volume patches: size, padding, foreground oversampling, reproducibility by key."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from segattn.data import Decathlon
from segattn.data.patches import VolumePatches, crop
from segattn.errors import InputError


class Volumes:
    """A stand-in VolumeDataset holding arrays."""

    in_channels = 1

    def __init__(self, items: list[tuple[np.ndarray, np.ndarray]]) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def load(self, index: int) -> dict:
        image, mask = self.items[index]
        return {"image": image, "mask": mask, "name": f"v{index}", "spacing": (1.0, 1.0, 1.0)}


def sparse_volume(shape=(30, 30, 30)) -> tuple[np.ndarray, np.ndarray]:
    """A volume whose only labelled voxels are one class-1 voxel and one class-2 voxel."""
    image = np.arange(np.prod(shape), dtype=np.float32).reshape(1, *shape)
    mask = np.zeros(shape, np.int64)
    mask[2, 3, 27], mask[28, 15, 1] = 1, 2
    mask[10:12] = 255
    return image, mask


def test_patches_are_reproducible_by_key():
    patches = VolumePatches(Volumes([sparse_volume()]), (8, 8, 8), foreground=0.5, seed=7)
    first = patches[(3, 0)]
    assert first["image"].shape == (1, 8, 8, 8) and first["image"].dtype == torch.float32
    assert first["mask"].shape == (8, 8, 8) and first["mask"].dtype == torch.int64
    again = VolumePatches(Volumes([sparse_volume()]), (8, 8, 8), foreground=0.5, seed=7)[(3, 0)]
    assert torch.equal(first["image"], again["image"]) and first["start"] == again["start"]
    starts = {patches[(epoch, 0)]["start"] for epoch in range(20)}
    assert len(starts) > 10
    assert patches[0]["start"] == patches[(0, 0)]["start"]


def test_foreground_share():
    volumes = Volumes([sparse_volume()])
    always = VolumePatches(volumes, (6, 6, 6), foreground=1.0, seed=0)
    classes = set()
    for epoch in range(40):
        mask = always[(epoch, 0)]["mask"]
        present = set(mask.unique().tolist()) - {0, 255}
        assert present  # every patch holds a labelled voxel
        classes |= present
    assert classes == {1, 2}  # both classes, though each has one voxel
    never = VolumePatches(volumes, (6, 6, 6), foreground=0.0, seed=0)
    hits = sum(bool(set(never[(e, 0)]["mask"].unique().tolist()) - {0, 255}) for e in range(40))
    assert hits < 10


def test_small_volumes_are_padded_with_zero_and_ignore():
    image = np.ones((1, 3, 10, 4), np.float32)
    mask = np.ones((3, 10, 4), np.int64)
    patches = VolumePatches(Volumes([(image, mask)]), (5, 6, 4), foreground=0.5, seed=1)
    for epoch in range(10):
        item = patches[(epoch, 0)]
        assert int((item["mask"] == 1).sum()) == 3 * 6 * 4  # the whole volume's depth and width, 6 rows
        assert torch.equal(item["mask"] == 255, item["image"][0] == 0)
        d = item["start"][0]
        assert -2 <= d <= 0


def test_crop_pads_outside():
    array = np.arange(4, dtype=np.int64).reshape(1, 1, 4)
    np.testing.assert_array_equal(crop(array, (0, 0, -2), (1, 1, 8), 255).ravel(), [255, 255, 0, 1, 2, 3, 255, 255])


def test_options_are_checked():
    volumes = Volumes([sparse_volume()])
    with pytest.raises(InputError, match="patch_size: expected three integers"):
        VolumePatches(volumes, (8, 8), seed=0)
    with pytest.raises(InputError, match="foreground: expected a share between 0 and 1"):
        VolumePatches(volumes, (8, 8, 8), foreground=1.5)
    with pytest.raises(InputError, match=r"intensity\.window"):
        VolumePatches(volumes, (8, 8, 8), intensity={"window": [0]})


def test_real_hippocampus_patches(shared_data):
    root = shared_data / "hippocampus"
    if not root.is_dir():
        pytest.skip(f"MSD Hippocampus not found at {root}")
    dataset = Decathlon(root, split={"files": ["hippocampus_001", "hippocampus_003"]})
    patches = VolumePatches(dataset, (40, 56, 40), foreground=1.0, seed=0, intensity={"zscore": {"foreground": False}})
    for index in range(2):
        item = patches[(0, index)]
        assert item["image"].shape == (1, 40, 56, 40)
        assert set(item["mask"].unique().tolist()) >= {1, 255}  # larger than the volume: padded
        inside = item["mask"] != 255
        assert abs(float(item["image"][0][inside].mean())) < 0.2


def test_several_patches_per_volume_make_a_longer_epoch_each_drawn_apart():
    volumes = Volumes([sparse_volume(), sparse_volume()])
    patches = VolumePatches(volumes, (6, 6, 6), foreground=0.0, seed=3, per_volume=4)
    assert len(patches) == 8
    names = [patches[(0, i)]["name"] for i in range(8)]
    assert names == ["v0", "v1"] * 4  # index i: volume i mod 2
    starts = {patches[(0, i)]["start"] for i in range(0, 8, 2)}  # volume 0's four patches
    assert len(starts) > 1
    one = VolumePatches(volumes, (6, 6, 6), foreground=0.0, seed=3)
    assert len(one) == 2 and one[(0, 1)]["start"] == patches[(0, 1)]["start"]  # the first draws unchanged
    with pytest.raises(InputError, match="per_volume: expected an integer ≥ 1, got 0"):
        VolumePatches(volumes, (6, 6, 6), per_volume=0)
