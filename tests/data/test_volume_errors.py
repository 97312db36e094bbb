"""Bad volume inputs in data sets and Segmenter.predict: each a one-line InputError naming the
file and what was expected; nothing silently resampled, dropped or guessed."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from segattn import Segmenter
from segattn.data import Decathlon, ImageMaskFolder, SegDataModule, VolumeFolder
from segattn.data.io import write_image
from segattn.data.volume_io import kept_locale, read_volume
from segattn.errors import InputError

from ..inference.test_volumes_inference import ckpt  # noqa: F401

CLASSES = ["bg", "a", "b"]
SHAPE = (12, 14, 16)


def save(path: Path, array: np.ndarray, affine: np.ndarray | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(array, np.eye(4) if affine is None else affine), path)
    return path


def one_line(error: pytest.ExceptionInfo, *named: object) -> None:
    message = str(error.value)
    assert "\n" not in message, message
    for part in named:
        assert str(part) in message, message


@pytest.fixture
def folder(tmp_path) -> Path:
    """images/ and labels/ of one case, a.nii.gz, in the identity grid."""
    rng = np.random.default_rng(0)
    save(tmp_path / "images" / "a.nii.gz", rng.random(SHAPE).astype(np.float32))
    save(tmp_path / "labels" / "a.nii.gz", rng.integers(0, 3, SHAPE).astype(np.uint8))
    return tmp_path


def load(root: Path) -> dict:
    return VolumeFolder(root / "images", root / "labels", CLASSES).load(0)


def decathlon(root: Path) -> Decathlon:
    spec = {
        "labels": {"0": "bg", "1": "a", "2": "b"},
        "modality": {"0": "MRI"},
        "training": [{"image": "./images/a.nii.gz", "label": "./labels/a.nii.gz"}],
    }
    (root / "dataset.json").write_text(json.dumps(spec))
    return Decathlon(root)


def test_labels_in_another_shape_or_grid(folder):
    label = folder / "labels" / "a.nii.gz"
    save(label, np.zeros((12, 14, 15), np.uint8))
    for dataset in (VolumeFolder(folder / "images", folder / "labels", CLASSES), decathlon(folder)):
        with pytest.raises(InputError) as error:
            dataset.load(0)
        one_line(error, label.resolve() if isinstance(dataset, Decathlon) else label, "labels are 12×14×15")
    shifted = np.eye(4)
    shifted[0, 3] = 0.5
    save(label, np.zeros(SHAPE, np.uint8), shifted)
    for dataset in (VolumeFolder(folder / "images", folder / "labels", CLASSES), decathlon(folder)):
        with pytest.raises(InputError) as error:
            dataset.load(0)
        one_line(error, "labels lie in another grid", "differ by up to 0.5", "expected the image's own grid")


def test_a_label_value_outside_the_classes(folder):
    labels = np.zeros(SHAPE, np.uint8)
    labels[3, 4, 5] = 3
    label = save(folder / "labels" / "a.nii.gz", labels)
    with pytest.raises(InputError) as error:  # at read, before any loss sees it
        load(folder)
    one_line(error, label, "label value(s) [3] outside the 3 classes (0 bg, 1 a, 2 b); expected class indices 0..2")


def test_corrupt_truncated_and_empty_scans(folder, ckpt):  # noqa: F811
    image = folder / "images" / "a.nii.gz"
    whole = image.read_bytes()
    seg = Segmenter.from_checkpoint(ckpt, device="cpu")
    for data, expected in [
        (whole[: len(whole) // 2], "cannot read the NIfTI file (EOFError: Compressed file ended before"),
        (b"\x13garbage" * 40, "is not a gzip file); expected a whole, uncorrupted NIfTI volume"),
        (b"", "the file is empty (0 bytes); expected a volume"),
    ]:
        image.write_bytes(data)
        with pytest.raises(InputError) as error:
            load(folder)
        one_line(error, image, expected)
        with pytest.raises(InputError) as error:
            seg.predict(image)
        one_line(error, image, expected)


def test_a_two_d_file_where_a_volume_is_expected_and_the_reverse(folder, tmp_path):
    image = save(folder / "images" / "a.nii.gz", np.zeros((12, 14), np.float32))
    with pytest.raises(InputError) as error:
        load(folder)
    one_line(error, image, "expected a 3-D volume (or 3-D × channels), got shape (12, 14)")
    png = folder / "labels" / "b.png"
    write_image(png, np.zeros((8, 8), np.uint8))
    with pytest.raises(InputError) as error:
        VolumeFolder(folder / "images", folder / "labels", CLASSES)
    one_line(error, png, "an image file in a folder of volumes; expected volume files only (.nii, .nii.gz")
    pictures = tmp_path / "pictures"
    for sub in ("images", "masks"):
        (pictures / sub).mkdir(parents=True)
    write_image(pictures / "images" / "c.png", np.zeros((8, 8, 3), np.uint8))
    write_image(pictures / "masks" / "c.png", np.zeros((8, 8), np.uint8))
    scan = save(pictures / "images" / "d.nii.gz", np.zeros(SHAPE, np.float32))
    with pytest.raises(InputError) as error:
        ImageMaskFolder(pictures / "images", pictures / "masks", CLASSES)
    one_line(error, scan, "a volume file in a folder of images; expected image files only (.png")


def write_series(folder: Path, uid: str, slices: int) -> None:
    """A small DICOM series (SimpleITK's DicomSeriesFromArray recipe), `uid` its series UID."""
    sitk = pytest.importorskip("SimpleITK")
    image = sitk.GetImageFromArray(np.zeros((slices, 4, 5), np.int16))
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for k in range(slices):
        plane = image[:, :, k]
        for tag, value in {
            "0008|0060": "MR",
            "0020|000e": uid,
            "0020|000d": "1.2.826.0.1.3680043.2.1125.1.2",
            "0020|0037": "1\\0\\0\\0\\1\\0",
            "0020|0032": f"0\\0\\{k}",
            "0020|0013": str(k + 1),
        }.items():
            plane.SetMetaData(tag, value)
        writer.SetFileName(str(folder / f"{uid[-1]}_{k:03d}.dcm"))
        with kept_locale():
            writer.Execute(plane)


def test_a_dicom_folder_of_two_series_lists_them(tmp_path):
    folder = tmp_path / "dicom"
    folder.mkdir()
    first, second = "1.2.826.0.1.3680043.2.1125.1.7", "1.2.826.0.1.3680043.2.1125.1.8"
    write_series(folder, first, 2)
    write_series(folder, second, 3)
    with pytest.raises(InputError) as error:
        read_volume(folder)
    one_line(error, folder, "expected one DICOM series in the folder, found 2", first, second, "split the folder")


def test_nan_or_infinite_voxels(folder, ckpt):  # noqa: F811
    seg = Segmenter.from_checkpoint(ckpt, device="cpu")
    for bad in (np.nan, np.inf):
        scan = np.ones(SHAPE, np.float32)
        scan[2, 3, 4] = bad
        image = save(folder / "images" / "a.nii.gz", scan)
        with pytest.raises(InputError) as error:  # training patches and evaluation volumes load it
            load(folder)
        one_line(error, image, "holds NaN or infinite voxels; expected finite intensities")
        with pytest.raises(InputError) as error:
            seg.predict(image)
        one_line(error, image, "holds NaN or infinite voxels")


def module(root: Path, **settings) -> SegDataModule:
    """A data module of the folder's case, validated on a copy of it."""
    for sub in ("images", "labels"):
        (root / "val" / sub).mkdir(parents=True, exist_ok=True)
        (root / "val" / sub / "a.nii.gz").write_bytes((root / sub / "a.nii.gz").read_bytes())
    val = VolumeFolder(root / "val" / "images", root / "val" / "labels", CLASSES)
    return SegDataModule(VolumeFolder(root / "images", root / "labels", CLASSES), val, **settings)


@pytest.mark.parametrize("patch_size", [[0, 8, 8], [-2, 8, 8], [8, 8], [8, 8, 8, 8], [8.5, 8, 8], "8"])
def test_a_bad_patch_size_names_data_patch_size(folder, patch_size):
    with pytest.raises(InputError) as error:
        module(folder, patch_size=patch_size)
    one_line(error, "data.patch_size: expected three integers ≥ 1 (d, h, w)", repr(patch_size))


def test_a_patch_larger_than_the_volume_is_padded_with_ignore(folder):
    data = module(folder, patch_size=[16, 16, 16], batch_size=1)
    data.setup("fit")
    item = next(iter(data.train_dataloader()))
    assert item["mask"].shape[1:] == (16, 16, 16)
    padded = (item["mask"] == 255).sum().item()
    assert padded == 16**3 - np.prod(SHAPE)
