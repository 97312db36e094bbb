"""Volumes: reading (NIfTI, NRRD, MHA), affines across conventions, label reading and writing."""

from __future__ import annotations

import gzip
import locale
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from segattn.data import read_label_volume, read_volume, write_label_volume
from segattn.data.volume_io import image_array, kept_locale, read_itk
from segattn.errors import InputError, MissingPathError


def oblique_affine(spacing=(0.7, 1.3, 3.0), origin=(12.5, -30.0, 8.25)) -> np.ndarray:
    """A rotated (about two axes), anisotropic voxel → RAS affine."""
    a, b = np.deg2rad(20), np.deg2rad(-35)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    affine = np.eye(4)
    affine[:3, :3] = rz @ rx @ np.diag(spacing)
    affine[:3, 3] = origin
    return affine


def save_nifti(path: Path, array: np.ndarray, affine: np.ndarray, qform_code: int = 1, sform_code: int = 2) -> Path:
    image = nib.Nifti1Image(array, affine)
    image.set_qform(affine, code=qform_code)
    image.set_sform(affine, code=sform_code)
    nib.save(image, path)
    return path


def save_itk(path: Path, array: np.ndarray, spacing, direction_ras: np.ndarray, origin_ras) -> Path:
    """Writes `array` (i, j, k order) with SimpleITK, its geometry converted to LPS here by hand."""
    sitk = pytest.importorskip("SimpleITK")
    flip = np.diag([-1.0, -1.0, 1.0])
    image = sitk.GetImageFromArray(np.ascontiguousarray(array.transpose(2, 1, 0)))
    image.SetSpacing([float(s) for s in spacing])
    image.SetDirection((flip @ direction_ras).ravel().tolist())
    image.SetOrigin((flip @ np.asarray(origin_ras)).tolist())
    sitk.WriteImage(image, str(path))
    return path


@pytest.fixture
def volume_data() -> np.ndarray:
    """A 4×5×6 float32 volume whose every voxel differs (a transposition would show)."""
    return np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6) * 1.5 - 7


def test_nifti_and_nrrd_of_one_volume_read_the_same(tmp_path, volume_data):
    pytest.importorskip("SimpleITK")
    spacing = (0.7, 1.3, 3.0)
    affine = oblique_affine(spacing)
    direction = affine[:3, :3] / np.array(spacing)
    nifti = read_volume(save_nifti(tmp_path / "v.nii.gz", volume_data, affine))
    assert nifti.spacing == pytest.approx(spacing) and nifti.shape == (4, 5, 6)
    for suffix in (".nrrd", ".mha"):
        other = read_volume(save_itk(tmp_path / f"v{suffix}", volume_data, spacing, direction, affine[:3, 3]))
        np.testing.assert_array_equal(other.array, nifti.array)
        np.testing.assert_allclose(other.affine, nifti.affine, atol=1e-5)
        assert other.spacing == pytest.approx(spacing) and other.header is None
    # SimpleITK's own NIfTI reader agrees with nibabel through the LPS → RAS conversion
    itk = read_itk(tmp_path / "v.nii.gz")
    np.testing.assert_array_equal(itk.array, nifti.array)
    np.testing.assert_allclose(itk.affine, nifti.affine, atol=1e-5)


def test_four_d_scan_is_channels_first(tmp_path):
    data = np.random.default_rng(0).random((3, 4, 5, 2)).astype(np.float32)
    volume = read_volume(save_nifti(tmp_path / "two.nii", data, np.eye(4)))
    image = image_array(volume)
    assert image.shape == (2, 3, 4, 5) and image.dtype == np.float32
    np.testing.assert_array_equal(image[1], data[..., 1])
    assert image_array(read_volume(save_nifti(tmp_path / "one.nii", data[..., 0], np.eye(4)))).shape == (1, 3, 4, 5)


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii"])
def test_labels_written_in_an_oblique_anisotropic_grid(tmp_path, suffix):
    affine = oblique_affine()
    reference = read_volume(save_nifti(tmp_path / f"ref{suffix}", np.zeros((6, 5, 4), np.int16), affine, 1, 2))
    labels = np.random.default_rng(1).integers(0, 3, (6, 5, 4))
    out = write_label_volume(labels, reference, tmp_path / f"labels{suffix}")
    written = nib.load(out)
    assert written.get_data_dtype() == np.uint8
    np.testing.assert_array_equal(np.asanyarray(written.dataobj), labels)
    assert (int(written.header["qform_code"]), int(written.header["sform_code"])) == (1, 2)
    np.testing.assert_allclose(written.header.get_sform(), affine, atol=1e-6)
    np.testing.assert_allclose(written.header.get_qform(), affine, atol=1e-5)
    assert nib.aff2axcodes(written.affine) == nib.aff2axcodes(affine)
    assert written.header.get_zooms() == pytest.approx((0.7, 1.3, 3.0))
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary left


def test_many_classes_are_written_as_uint16(tmp_path):
    reference = read_volume(save_nifti(tmp_path / "ref.nii.gz", np.zeros((3, 3, 3), np.uint8), np.eye(4)))
    labels = np.arange(27).reshape(3, 3, 3) * 20
    written = nib.load(write_label_volume(labels, reference, tmp_path / "l.nii.gz"))
    assert written.get_data_dtype() == np.uint16
    np.testing.assert_array_equal(np.asanyarray(written.dataobj), labels)


def test_labels_written_as_nrrd_keep_the_grid(tmp_path):
    pytest.importorskip("SimpleITK")
    affine = oblique_affine()
    reference = read_volume(save_nifti(tmp_path / "ref.nii.gz", np.zeros((6, 5, 4), np.int16), affine))
    labels = np.random.default_rng(2).integers(0, 3, (6, 5, 4))
    back = read_volume(write_label_volume(labels, reference, tmp_path / "l.nrrd"))
    np.testing.assert_array_equal(back.array, labels)
    np.testing.assert_allclose(back.affine, affine, atol=1e-5)
    assert back.array.dtype == np.uint8
    # and back to NIfTI with the NRRD as the reference (no NIfTI header: scanner codes)
    written = nib.load(write_label_volume(back.array, back, tmp_path / "again.nii.gz"))
    np.testing.assert_array_equal(np.asanyarray(written.dataobj), labels)
    np.testing.assert_allclose(written.affine, affine, atol=1e-5)
    assert (int(written.header["qform_code"]), int(written.header["sform_code"])) == (1, 1)


def test_label_reading_rules(tmp_path):
    eye = np.eye(4)
    whole = np.array([0, 1, 2, 1], np.float32).reshape(1, 2, 2)
    labels, volume = read_label_volume(save_nifti(tmp_path / "f.nii.gz", whole, eye))
    assert labels.dtype == np.int64 and volume.array.dtype == np.float32
    np.testing.assert_array_equal(labels, whole)
    fraction = save_nifti(tmp_path / "frac.nii.gz", whole + np.array([0, 0, 0, 0.5], np.float32).reshape(1, 2, 2), eye)
    with pytest.raises(InputError, match=r"frac\.nii\.gz.*whole numbers.*1\.5"):
        read_label_volume(fraction)
    big = save_nifti(tmp_path / "big.nii.gz", np.array([0, 300], np.uint16).reshape(1, 1, 2), eye)
    with pytest.raises(InputError, match=r"big\.nii\.gz.*\[300\]"):
        read_label_volume(big)
    mapped, _ = read_label_volume(big, value_map={0: 0, 300: 1})
    np.testing.assert_array_equal(mapped.ravel(), [0, 1])
    with pytest.raises(InputError, match=r"\[2\]"):
        read_label_volume(tmp_path / "f.nii.gz", classes=2)
    negative = save_nifti(tmp_path / "neg.nii.gz", np.array([0, -1], np.int16).reshape(1, 1, 2), eye)
    with pytest.raises(InputError, match=r"neg\.nii\.gz.*0\.\.65535"):
        read_label_volume(negative)


def test_unreadable_files_are_one_line_errors_naming_the_file(tmp_path, volume_data):
    good = save_nifti(tmp_path / "good.nii.gz", volume_data, np.eye(4))
    truncated = tmp_path / "cut.nii.gz"
    truncated.write_bytes(good.read_bytes()[:200])
    not_gz = tmp_path / "plain.nii.gz"
    not_gz.write_bytes(b"not a volume at all" * 30)
    short = tmp_path / "short.nii"
    short.write_bytes(gzip.decompress(good.read_bytes())[:400])
    empty = tmp_path / "empty.nii"
    empty.touch()
    for path in (truncated, not_gz, short, empty):
        with pytest.raises(InputError) as error:
            read_volume(path)
        assert path.name in str(error.value) and "\n" not in str(error.value)
    with pytest.raises(MissingPathError, match=r"absent\.nii"):
        read_volume(tmp_path / "absent.nii")
    (tmp_path / "good.png").write_bytes(good.read_bytes())
    with pytest.raises(InputError, match=r"good\.png: unknown volume format"):
        read_volume(tmp_path / "good.png")


def test_unreadable_itk_files_and_folders(tmp_path):
    pytest.importorskip("SimpleITK")
    bad = tmp_path / "bad.nrrd"
    bad.write_text("NRRD0004\ntype: float\ndimension: 3\nsizes: 4 4 4\nencoding: raw\n\n12")
    with pytest.raises(InputError) as error:
        read_volume(bad)
    assert "bad.nrrd" in str(error.value) and "\n" not in str(error.value)
    (tmp_path / "dicom").mkdir()
    with pytest.raises(InputError, match=r"expected one DICOM series.*found 0"):
        read_volume(tmp_path / "dicom")


def test_missing_simpleitk_names_the_extra(tmp_path, monkeypatch):
    (tmp_path / "v.nrrd").write_text("NRRD0004\n")
    monkeypatch.setitem(sys.modules, "SimpleITK", None)
    with pytest.raises(InputError, match=r"needs SimpleITK: pip install 'segattn\[medical\]'"):
        read_volume(tmp_path / "v.nrrd")


def test_writing_refuses_another_shape_or_format(tmp_path):
    reference = read_volume(save_nifti(tmp_path / "ref.nii.gz", np.zeros((3, 4, 5), np.uint8), np.eye(4)))
    with pytest.raises(InputError, match=r"\(5, 4, 3\).*ref\.nii\.gz.*\(3, 4, 5\)"):
        write_label_volume(np.zeros((5, 4, 3), np.int64), reference, tmp_path / "out.nii.gz")
    with pytest.raises(InputError, match="cannot write labels in this format"):
        write_label_volume(np.zeros((3, 4, 5), np.int64), reference, tmp_path / "out.png")
    assert not (tmp_path / "out.nii.gz").exists()


def test_real_hippocampus_labels_round_trip(shared_data, tmp_path):
    root = shared_data / "hippocampus"
    if not root.is_dir():
        pytest.skip(f"MSD Hippocampus not found at {root}")
    for name in ("hippocampus_001.nii.gz", "hippocampus_003.nii.gz"):  # uint8 and float32 label files
        labels, _ = read_label_volume(root / "labelsTr" / name)
        image = read_volume(root / "imagesTr" / name)
        out = write_label_volume(labels, image, tmp_path / name)
        written, source = nib.load(out), nib.load(root / "imagesTr" / name)
        np.testing.assert_array_equal(np.asanyarray(written.dataobj), labels)
        np.testing.assert_array_equal(written.affine, source.affine)
        for code in ("qform_code", "sform_code"):
            assert written.header[code] == source.header[code]
        assert written.shape == source.shape and written.get_data_dtype() == np.uint8
        np.testing.assert_array_equal(read_label_volume(out)[0], labels)


def test_dicom_series_reads_as_its_nifti_twin(tmp_path):
    """A DICOM series written slice by slice (SimpleITK's DicomSeriesFromArray recipe) reads to the
    same array and affine as the same volume saved as NIfTI."""
    sitk = pytest.importorskip("SimpleITK")
    spacing = (0.8, 0.9, 2.5)
    affine = oblique_affine(spacing)
    data = (np.arange(3 * 4 * 5, dtype=np.int16).reshape(3, 4, 5) * 7 - 100).astype(np.int16)
    twin = read_volume(save_nifti(tmp_path / "twin.nii.gz", data, affine))
    flip = np.diag([-1.0, -1.0, 1.0])
    image = sitk.GetImageFromArray(np.ascontiguousarray(data.transpose(2, 1, 0)))
    image.SetSpacing(spacing)
    direction = flip @ affine[:3, :3] / np.array(spacing)
    image.SetDirection(direction.ravel().tolist())
    image.SetOrigin((flip @ affine[:3, 3]).tolist())
    folder = tmp_path / "series"
    folder.mkdir()
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    orientation = "\\".join(f"{v:.10f}" for v in (*direction[:, 0], *direction[:, 1]))
    for k in range(data.shape[2]):
        plane = image[:, :, k]
        tags = {
            "0008|0060": "MR",
            "0020|000e": "1.2.826.0.1.3680043.2.1125.1.1",
            "0020|000d": "1.2.826.0.1.3680043.2.1125.1.2",
            "0020|0037": orientation,
            "0020|0032": "\\".join(f"{v:.10f}" for v in image.TransformIndexToPhysicalPoint((0, 0, k))),
            "0020|0013": str(k + 1),
            "0028|0030": f"{spacing[1]:.10f}\\{spacing[0]:.10f}",  # row spacing \ column spacing
            "0018|0050": f"{spacing[2]:.10f}",
        }
        for tag, value in tags.items():
            plane.SetMetaData(tag, value)
        writer.SetFileName(str(folder / f"{k:03d}.dcm"))
        with kept_locale():  # GDCM's writer leaves the process locale at "C"
            writer.Execute(plane)
    encoding = locale.getencoding()
    series = read_volume(folder)
    assert locale.getencoding() == encoding
    np.testing.assert_array_equal(series.array, data)
    np.testing.assert_allclose(series.affine, twin.affine, atol=1e-4)
    assert series.spacing == pytest.approx(spacing, abs=1e-4)
