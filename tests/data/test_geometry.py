"""The training grid of volumes: reorientation against nibabel's own canonical image, the way back,
resampling of images and labels, the data module's settings, and the Segmenter predicting back
into each scan's grid."""

from __future__ import annotations

import re

import nibabel as nib
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from segattn import InputError, Segmenter, checkpoint
from segattn.data import SegDataModule, VolumeFolder
from segattn.data.geometry import check_geometry, restore_axes, to_training_grid
from segattn.data.intensity import normalize_volume
from segattn.data.volume_io import read_volume
from segattn.infer import run_infer

from ..inference.test_volumes_inference import CLASSES, PALETTE, SPEC, oblique_affine, save_nifti, scan, tiny_net

RAS = {"orientation": "RAS", "spacing": None}


def affines() -> list[np.ndarray]:
    """Grids stored in other voxel orders: LPS (DICOM's), axes permuted and flipped, and oblique."""
    lps = np.diag([-0.8, -0.9, 2.5, 1.0])
    permuted = np.array([[0, 0, -1.2, 10], [1.5, 0, 0, -4], [0, -0.7, 0, 3], [0, 0, 0, 1.0]])
    return [lps, permuted, oblique_affine()]


@pytest.mark.parametrize("affine", affines())
def test_reorientation_equals_nibabels_canonical_image_and_goes_back(affine):
    data = np.random.default_rng(0).standard_normal((5, 6, 7)).astype(np.float32)
    canonical = nib.as_closest_canonical(nib.Nifti1Image(data, affine))
    mask = (data > 0).astype(np.int64)
    spacing = tuple(np.linalg.norm(affine[:3, :3], axis=0))
    image, labels, new_spacing, change = to_training_grid(data[None], mask, affine, spacing, RAS)
    np.testing.assert_array_equal(image[0], np.asarray(canonical.dataobj))
    np.testing.assert_array_equal(labels, np.asarray(canonical.dataobj) > 0)
    np.testing.assert_allclose(new_spacing, canonical.header.get_zooms(), rtol=1e-6)
    np.testing.assert_array_equal(restore_axes(labels, change), mask)
    np.testing.assert_array_equal(restore_axes(image, change, channels_first=True), data[None])


def test_resampling_reaches_the_target_spacing_linearly_and_keeps_labels_whole():
    ramp = np.broadcast_to(np.arange(8, dtype=np.float32), (4, 4, 8))[None].copy()
    mask = np.zeros((4, 4, 8), np.int64)
    mask[:, :, 2:5] = 2
    affine = np.diag([1.0, 1.0, 3.0, 1.0])
    image, labels, spacing, change = to_training_grid(
        ramp, mask, affine, (1, 1, 3), {"orientation": None, "spacing": [1, 2, 1.5]}
    )
    assert image.shape == (1, 4, 2, 16) and labels.shape == (4, 2, 16) and spacing == (1.0, 2.0, 1.5) and change is None
    expected = F.interpolate(torch.from_numpy(ramp)[None], size=(4, 2, 16), mode="trilinear", align_corners=False)
    np.testing.assert_allclose(image, expected[0].numpy())
    assert set(np.unique(labels)) == {0, 2} and labels.dtype == np.int64
    assert np.array_equal(labels[0, 0], np.repeat(mask[0, 0], 2))  # nearest: each voxel twice along W


@pytest.mark.parametrize(
    ("orientation", "spacing", "message"),
    [
        (
            "RAX",
            None,
            "data.orientation: expected three axis codes, one of L/R, A/P and S/I each (e.g. 'RAS'), got 'RAX'",
        ),
        ("RRS", None, "data.orientation: expected three axis codes"),
        (None, [1, 1], "data.spacing: expected three voxel sizes > 0 in mm (d, h, w), got [1, 1]"),
        (None, [1, 0, 1], "data.spacing: expected three voxel sizes > 0 in mm"),
    ],
)
def test_geometry_settings_are_checked(orientation, spacing, message):
    with pytest.raises(InputError, match=re.escape(message)):
        check_geometry(orientation, spacing)


def test_no_setting_is_no_training_grid():
    assert check_geometry(None, None) is None
    assert check_geometry("lps", None) == {"orientation": "LPS", "spacing": None}


def test_the_data_module_trains_and_validates_in_the_training_grid(tmp_path):
    lps = np.diag([-1.0, -1.0, 2.0, 1.0])
    for split in ("train", "val"):
        mask = np.zeros((6, 7, 5), np.uint8)
        mask[1:3, 2:4, 1:3] = 1
        for folder in ("images", "labels"):
            (tmp_path / split / folder).mkdir(parents=True)
        save_nifti(tmp_path / split / "images" / "a.nii.gz", scan((6, 7, 5)), lps)
        save_nifti(tmp_path / split / "labels" / "a.nii.gz", mask, lps)
    sets = [VolumeFolder(tmp_path / s / "images", tmp_path / s / "labels", ["bg", "a"]) for s in ("train", "val")]
    dm = SegDataModule(*sets, patch_size=[4, 4, 4], batch_size=1, orientation="RAS", spacing=[1, 1, 1])
    assert dm.geometry == {"orientation": "RAS", "spacing": [1.0, 1.0, 1.0]}
    whole = next(iter(dm.val_dataloader()))
    assert whole["image"].shape == (1, 1, 6, 7, 10) and whole["mask"].shape == (1, 6, 7, 10)
    assert whole["mask"].sum() == 2 * 2 * 4  # flipped on two axes, doubled along the 2-mm one
    assert next(iter(dm.train_dataloader()))["image"].shape == (1, 1, 4, 4, 4)


@pytest.fixture(scope="module")
def grid_ckpt(tmp_path_factory):
    net = tiny_net()
    geometry = {"orientation": "RAS", "spacing": [1.5, 1.5, 1.5]}
    args = {"widths": [4, 8, 16], "spatial_dims": 3}
    record = checkpoint.make_record(
        "attention_unet", args, 1, CLASSES, PALETTE, None, intensity=SPEC, geometry=geometry
    )
    path = tmp_path_factory.mktemp("ckpt") / "grid.ckpt"
    checkpoint.save(path, net.state_dict(), record)
    return path, net, geometry


def test_a_grid_checkpoint_predicts_back_into_each_scans_grid(grid_ckpt, tmp_path):
    path, net, geometry = grid_ckpt
    data = scan((12, 15, 9))
    file = save_nifti(tmp_path / "case.nii.gz", data)  # oblique, 0.7 × 1.3 × 3.0 mm
    volume = read_volume(file)
    image, _, _, change = to_training_grid(data[None].astype(np.float32), None, volume.affine, volume.spacing, geometry)
    with torch.no_grad():
        probs = net(torch.from_numpy(normalize_volume(image, SPEC))[None]).softmax(1)
    size = tuple(int(n) for n in nib.as_closest_canonical(nib.load(file)).shape)  # the reoriented scan's
    back = F.interpolate(probs, size=size, mode="trilinear", align_corners=False)[0].numpy()
    expected_probs = restore_axes(back, change, channels_first=True)  # K × the scan's own D×H×W
    seg = Segmenter.from_checkpoint(path, device="cpu")
    np.testing.assert_allclose(seg.predict(file, return_probs=True)[0], expected_probs, atol=1e-4)
    labels, expected = seg.predict(file)[0], expected_probs.argmax(0)
    top = np.sort(expected_probs, axis=0)
    clear = top[-1] - top[-2] > 1e-3  # interpolated probabilities can tie where classes meet
    assert labels.shape == data.shape and len(np.unique(expected)) > 1 and clear.mean() > 0.9
    assert np.array_equal(labels[clear], expected[clear])
    mask, alphas = seg.attention(volume)
    assert np.array_equal(mask, labels) and all(a.shape == data.shape for a in alphas.values())
    stats = run_infer(seg, [file], tmp_path / "out")
    written = nib.load(tmp_path / "out" / "case.nii.gz")
    assert stats.written == 1 and np.array_equal(np.asarray(written.dataobj), labels)
    np.testing.assert_allclose(written.affine, volume.affine, atol=1e-5)
    with pytest.raises(InputError, match=r"needs the scan's affine and spacing; pass its file or a segattn Volume"):
        seg.predict(data)
