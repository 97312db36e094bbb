"""SegDataModule on volume data sets: training patches, whole evaluation volumes, and the keys of
each kind of data refused for the other."""

from __future__ import annotations

import re
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch

from segattn.data import SegDataModule, VolumeFolder
from segattn.data.sampling import pad_collate
from segattn.errors import InputError

from .test_data import synthetic
from .test_volume_sets import save

SHAPES = [(6, 12, 10), (10, 9, 12), (12, 12, 12), (9, 11, 8), (11, 10, 9), (8, 12, 11)]  # some under the patch
PATCH = [8, 8, 8]


@pytest.fixture(scope="module")
def volume_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six train and two val volumes (spacing 1×2×3 mm) whose labels are a 2×2×2 block of class 1
    and one of class 2; the image is the labelled region (1) plus noise under 0.001 (so the z-scored
    image is positive exactly where labelled: the mean is over 16 / 12³)."""
    root = tmp_path_factory.mktemp("volumes")
    rng = np.random.default_rng(0)
    for i, shape in enumerate([*SHAPES, (7, 9, 10), (10, 8, 9)]):
        mask = np.zeros(shape, np.uint8)
        mask[1:3, 2:4, 3:5] = 1
        mask[-3:-1, -4:-2, -3:-1] = 2
        image = (mask > 0) + 0.001 * rng.random(shape)
        split = "train" if i < len(SHAPES) else "val"
        save(root / split / "images" / f"case_{i}.nii.gz", image.astype(np.float32))
        save(root / split / "labels" / f"case_{i}.nii.gz", mask)
    return root


def volumes(root: Path, split: str) -> VolumeFolder:
    return VolumeFolder(root / split / "images", root / split / "labels", ["background", "a", "b"])


def datamodule(root: Path, num_workers: int = 0, **kwargs) -> SegDataModule:
    kwargs = {"patch_size": PATCH, "batch_size": 3, **kwargs}
    return SegDataModule(volumes(root, "train"), volumes(root, "val"), num_workers=num_workers, **kwargs)


def train_batches(dm: SegDataModule, epochs: int = 2) -> list[dict]:
    loader, out = dm.train_dataloader(), []
    for epoch in range(epochs):
        loader.sampler.set_epoch(epoch)  # as Lightning does before each epoch
        out += list(loader)
    return out


def test_train_batches_are_padded_patches_aligned_with_their_labels(volume_root):
    L.seed_everything(1)
    batches = train_batches(datamodule(volume_root))
    assert len(batches) == 4  # 6 volumes, batch 3, 2 epochs
    for batch in batches:
        assert batch["image"].shape == (3, 1, *PATCH) and batch["image"].dtype == torch.float32
        assert batch["mask"].shape == (3, *PATCH) and batch["mask"].dtype == torch.int64
        assert batch["spacing"] == [(1.0, 2.0, 3.0)] * 3
        for name, image, mask in zip(batch["name"], batch["image"], batch["mask"], strict=True):
            if name == "case_0.nii.gz":  # 6 voxels deep: 2 of the patch's 8 planes lie outside
                assert (mask == 255).flatten(1).all(1).sum() == 2
            # after a z-score and any flips, the image is still positive exactly where labelled,
            # negative on background, and 0 on padding (labels 255)
            assert torch.equal(image[0] > 0, (mask == 1) | (mask == 2))
            assert torch.equal(image[0] < 0, mask == 0) and (image[0][mask == 255] == 0).all()


def test_train_batches_follow_the_seed_not_the_workers(volume_root):
    L.seed_everything(3)
    first = train_batches(datamodule(volume_root))
    L.seed_everything(3)
    in_workers = train_batches(datamodule(volume_root, num_workers=2))
    L.seed_everything(4)
    other = train_batches(datamodule(volume_root))
    for a, b in zip(first, in_workers, strict=True):
        assert a["name"] == b["name"] and torch.equal(a["image"], b["image"]) and torch.equal(a["mask"], b["mask"])
    assert not torch.equal(first[0]["image"], other[0]["image"])
    assert not torch.equal(first[0]["image"], first[2]["image"])  # each epoch its own order and patches


def test_flips_mirror_patches_and_none_leaves_them(volume_root):
    """The same keys with and without augment_3d: the flipped patches are mirrors of the plain ones."""
    flipped = datamodule(volume_root).train_dataloader().dataset
    plain = datamodule(volume_root, augment_3d="none").train_dataloader().dataset
    mirrored = 0
    for epoch in range(4):
        a, b = flipped[(epoch, 2)]["mask"], plain[(epoch, 2)]["mask"]  # case_2: 12³, no padding
        axes = [dims for dims in ([], [0], [1], [2], [0, 1], [0, 2], [1, 2], [0, 1, 2]) if torch.equal(a.flip(dims), b)]
        assert axes
        mirrored += [] not in axes
    assert mirrored > 0


def test_foreground_share_is_kept_on_average(volume_root):
    """Share of patches holding a labelled voxel: f + (1 − f) · (that share of uniform patches)."""

    def hit_rate(share: float) -> float:
        patches = (
            datamodule(volume_root, patch_size=[4, 4, 4], foreground_share=share, augment_3d="none")
            .train_dataloader()
            .dataset
        )
        hits = [bool(((patches[(e, i)]["mask"] % 255) > 0).any()) for e in range(40) for i in range(len(patches))]
        return float(np.mean(hits))

    uniform = hit_rate(0.0)
    assert uniform < 0.95 and hit_rate(1.0) == 1.0
    assert hit_rate(0.33) == pytest.approx(0.33 + 0.67 * uniform, abs=0.07)


def test_evaluation_batches_are_whole_volumes(volume_root):
    dm = datamodule(volume_root)
    assert dm.val_batch_size == 1
    batches = list(dm.val_dataloader())
    assert [tuple(b["mask"].shape[1:]) for b in batches] == [(7, 9, 10), (10, 8, 9)]
    item = volumes(volume_root, "val").load(0)
    np.testing.assert_array_equal(batches[0]["mask"][0].numpy(), item["mask"])
    image = batches[0]["image"][0, 0]
    assert abs(float(image.mean())) < 1e-5 and float(image.std(unbiased=False)) == pytest.approx(1, abs=1e-4)
    assert batches[0]["spacing"] == [(1.0, 2.0, 3.0)] and batches[0]["size"] == [(7, 9, 10)]
    (both,) = list(datamodule(volume_root, val_batch_size=2).val_dataloader())  # padded: labels 255
    assert both["image"].shape == (2, 1, 10, 9, 10) and (both["mask"][0, 7:] == 255).all()


def test_pad_collate_pads_volumes_on_every_axis():
    items = [
        {"image": torch.ones(1, 2, 3, 4), "mask": torch.zeros(2, 3, 4, dtype=torch.int64), "name": "a"},
        {"image": torch.ones(1, 3, 2, 4), "mask": torch.ones(3, 2, 4, dtype=torch.int64), "name": "b"},
    ]
    batch = pad_collate(items)
    assert batch["image"].shape == (2, 1, 3, 3, 4) and batch["size"] == [(2, 3, 4), (3, 2, 4)]
    assert (batch["mask"][0, 2] == 255).all() and (batch["mask"][1, :, 2] == 255).all()
    assert (batch["image"][1, :, :, 2] == 0).all() and "spacing" not in batch


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"crop_size": 64}, "data.crop_size: applies to image data sets only, and these are volumes"),
        ({"normalize": "zscore"}, "data.normalize: applies to image data sets only"),
        ({"patch_size": None}, "data.patch_size: required for volume data sets"),
        ({"patch_size": [8, 8]}, "data.patch_size: expected three integers"),
        ({"foreground_share": 1.5}, "data.foreground_share: expected a share between 0 and 1"),
        ({"intensity": {"zscore": {}}}, "data.intensity.zscore: expected {'foreground'"),
        ({"augment_3d": "rotate"}, "data.augment_3d: expected 'flips', 'nnunet' or 'none'"),
        ({"patches_per_volume": 0}, "data.patches_per_volume: expected an integer ≥ 1, got 0"),
    ],
)
def test_volume_settings_are_checked(volume_root, kwargs, message):
    with pytest.raises(InputError, match=re.escape(message)) as error:
        datamodule(volume_root, **kwargs)
    assert "\n" not in str(error.value)


def test_volume_keys_are_refused_for_images_and_kinds_do_not_mix(volume_root, synthetic_root):
    train, images = synthetic(synthetic_root), synthetic(synthetic_root, "val")
    with pytest.raises(
        InputError, match=re.escape("data.patch_size: applies to volume data sets only, and these are images")
    ):
        SegDataModule(train, images, patch_size=PATCH)
    with pytest.raises(InputError, match=re.escape("data.intensity: applies to volume data sets only")):
        SegDataModule(train, images, intensity={"zscore": {"foreground": False}})
    with pytest.raises(InputError, match=re.escape("data.patches_per_volume: applies to volume data sets only")):
        SegDataModule(train, images, patches_per_volume=4)
    with pytest.raises(InputError, match=re.escape("data.train holds volumes but data.val images")):
        SegDataModule(volumes(volume_root, "train"), images, patch_size=PATCH)


def test_patches_per_volume_lengthens_the_training_epoch(volume_root):
    one, three = datamodule(volume_root), datamodule(volume_root, patches_per_volume=3)
    volumes_count = len(volumes(volume_root, "train"))
    assert len(three.train_dataloader().dataset) == 3 * len(one.train_dataloader().dataset) == 3 * volumes_count
    assert len(three.train_dataloader()) == -(-3 * volumes_count // 3)  # batch_size 3
