"""The "nnunet" 3-D augmentation: rotation and scaling keep labels aligned with the image, fill
outside with 0 / 255, are the identity at zero angle and scale 1, repeat by key, and run through
SegDataModule; intensity changes only the image, finitely."""

from __future__ import annotations

import re

import albumentations as A
import numpy as np
import pytest
from scipy.ndimage import binary_erosion

from segattn.data.augment3d import IntensityAugment3D, RandomRotateScale3D, rotation_matrix
from segattn.data.volume_batches import volume_augmentation
from segattn.errors import InputError

from .test_volume_datamodule import PATCH, datamodule, volume_root  # noqa: F401 (fixture)


def blocks(shape=(24, 24, 24), size=8, classes=3) -> np.ndarray:
    """A label map of size³ blocks, classes cycling."""
    index = np.indices(shape) // size
    return ((index[0] + 2 * index[1] + index[2]) % classes).astype(np.uint8)


def always(**kwargs) -> A.Compose:
    return A.Compose([RandomRotateScale3D(p_rotate=1, p_scale=1, **kwargs)], seed=7)


def test_rotation_and_scale_keep_labels_aligned_and_fill_outside():
    labels = blocks()
    image = labels[..., None].astype(np.float32)  # the image equals its label map
    for seed in range(4):
        transform = always()
        transform.set_random_seed(seed)
        out = transform(volume=image, mask3d=labels)
        volume, mask = out["volume"][..., 0], out["mask3d"]
        assert out["volume"].shape == image.shape and volume.dtype == np.float32 and mask.dtype == np.uint8
        assert set(np.unique(mask)) <= {0, 1, 2, 255}
        assert not np.array_equal(mask, labels)  # it did move
        # away from block boundaries (and the fill), trilinear interpolation is exact
        interior = np.zeros_like(mask, bool)
        for k in range(3):
            interior |= binary_erosion(mask == k, iterations=2)
        assert interior.sum() > 200
        np.testing.assert_allclose(volume[interior], mask[interior], atol=1e-5)
        # outside the rotated / shrunken volume: image 0 and labels 255, together
        outside = binary_erosion(mask == 255, iterations=2)
        assert (volume[outside] == 0).all()


def test_fill_is_255_where_the_input_is_left():
    labels = blocks()
    angles, factor = np.deg2rad([0, 0, 45]), 1.25  # corners of a 45° turn lie outside the input
    transform = RandomRotateScale3D()
    out = transform.apply_to_mask3d(labels, matrix=rotation_matrix(angles) * factor)
    assert out[0, 0, 0] == 255 and out[-1, -1, -1] == 255 and out[12, 12, 12] != 255


def test_zero_rotation_and_scale_one_is_the_identity():
    labels = blocks((9, 10, 11), size=3)
    image = np.random.default_rng(0).normal(size=(9, 10, 11, 2)).astype(np.float32)
    out = always(max_angle=0, scale=(1, 1))(volume=image, mask3d=labels)
    np.testing.assert_allclose(out["volume"], image, atol=1e-6)
    np.testing.assert_array_equal(out["mask3d"], labels)
    matrix = RandomRotateScale3D()
    np.testing.assert_array_equal(matrix.apply_to_mask3d(labels, matrix=np.eye(3)), labels)


def test_rotation_matrix_turns_about_each_axis():
    turn = rotation_matrix(np.deg2rad([0, 0, 90]))  # about W: D and H swap
    np.testing.assert_allclose(np.abs(turn), [[0, 1, 0], [1, 0, 0], [0, 0, 1]], atol=1e-12)
    turn = rotation_matrix(np.deg2rad([10, -15, 15]))  # a rotation: orthogonal, determinant 1
    np.testing.assert_allclose(turn @ turn.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(turn) == pytest.approx(1)


def test_intensity_changes_the_image_only_and_stays_finite():
    rng = np.random.default_rng(1)
    image = rng.normal(size=(8, 8, 8, 1)).astype(np.float32)  # z-scored: negative values too
    labels = blocks((8, 8, 8), size=4)
    transform = A.Compose([IntensityAugment3D()])
    changed = 0
    for seed in range(40):
        transform.set_random_seed(seed)
        out = transform(volume=image, mask3d=labels)
        assert out["volume"].dtype == np.float32 and np.isfinite(out["volume"]).all()
        np.testing.assert_array_equal(out["mask3d"], labels)
        changed += not np.array_equal(out["volume"], image)
    assert 10 < changed < 40  # applied at random, often (nnU-Net's probabilities)
    # every part at once: noise, brightness, contrast, gamma keep a finite float32 volume
    out = IntensityAugment3D().apply_to_volume(image, noise=0.3, noise_seed=0, brightness=1.2, contrast=0.8, gamma=1.4)
    assert out.dtype == np.float32 and np.isfinite(out).all() and not np.allclose(out, image)


def test_nnunet_pipeline_repeats_by_seed():
    labels = blocks((16, 16, 16), size=4)
    image = np.random.default_rng(2).normal(size=(16, 16, 16, 1)).astype(np.float32)
    runs = []
    for _ in range(2):
        pipeline = volume_augmentation("nnunet")
        outs = []
        for seed in range(12):
            pipeline.set_random_seed(seed)
            outs.append(pipeline(volume=image, mask3d=labels))
        runs.append(outs)
    for a, b in zip(*runs, strict=True):
        np.testing.assert_array_equal(a["volume"], b["volume"])
        np.testing.assert_array_equal(a["mask3d"], b["mask3d"])
    assert any((out["mask3d"] == 255).any() for out in runs[0])  # some rotated or scaled


def test_nnunet_through_the_data_module_repeats_by_key(volume_root):  # noqa: F811
    dm = datamodule(volume_root, augment_3d="nnunet")
    patches = dm.train_dataloader().dataset
    for key in [(0, 0), (1, 2), (3, 5)]:
        a, b = patches[key], patches[key]
        np.testing.assert_array_equal(a["image"].numpy(), b["image"].numpy())
        np.testing.assert_array_equal(a["mask"].numpy(), b["mask"].numpy())
    flipped = datamodule(volume_root, augment_3d="flips").train_dataloader().dataset
    keys = [(epoch, index) for epoch in range(4) for index in range(len(patches))]
    differ = sum(not np.array_equal(patches[k]["image"].numpy(), flipped[k]["image"].numpy()) for k in keys)
    assert differ > 0  # rotated, scaled or intensity-varied patches
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (3, 1, *PATCH) and batch["mask"].shape == (3, *PATCH)
    assert set(np.unique(batch["mask"].numpy())) <= {0, 1, 2, 255}
    assert np.isfinite(batch["image"].numpy()).all()


def test_flips_stay_the_default_pipeline():
    names = [type(t).__name__ for t in volume_augmentation("flips").transforms]
    assert names == ["DepthFlip", "VerticalFlip", "HorizontalFlip"]
    assert volume_augmentation("none") is None


def test_unknown_augment_3d_is_a_one_line_error():
    with pytest.raises(InputError, match=re.escape("data.augment_3d: expected 'flips', 'nnunet' or 'none'")) as error:
        volume_augmentation("rotate")
    assert "\n" not in str(error.value) and "'rotate'" in str(error.value)
