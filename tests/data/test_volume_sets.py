"""Volume data sets: VolumeFolder and Decathlon on small synthetic folders and on MSD Hippocampus."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from segattn.data import Decathlon, VolumeFolder, normalize_volume
from segattn.errors import InputError, MissingPathError


def save(path: Path, array: np.ndarray, spacing=(1.0, 2.0, 3.0)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(array, np.diag([*spacing, 1.0])), path)
    return path


def make_folder(root: Path, n: int = 5, shape=(4, 5, 6)) -> Path:
    rng = np.random.default_rng(0)
    for i in range(n):
        save(root / "images" / f"case_{i}.nii.gz", rng.random(shape).astype(np.float32))
        save(root / "labels" / f"case_{i}.nii.gz", rng.integers(0, 3, shape).astype(np.uint8))
    return root


def test_volume_folder_item_and_splits(tmp_path):
    root = make_folder(tmp_path)
    ds = VolumeFolder(root / "images", root / "labels", ["bg", "a", "b"])
    assert len(ds) == 5 and ds.keys == [f"case_{i}" for i in range(5)] and ds.in_channels == 1
    item = ds[2]
    assert item["image"].shape == (1, 4, 5, 6) and item["image"].dtype == np.float32
    assert item["mask"].shape == (4, 5, 6) and item["mask"].dtype == np.int64
    assert item["name"] == "case_2.nii.gz" and item["spacing"] == (1.0, 2.0, 3.0)
    spec = {"fold": 1, "folds": 3, "seed": 4}
    train = VolumeFolder(root / "images", root / "labels", ["bg", "a", "b"], split={**spec, "subset": "train"})
    val = VolumeFolder(root / "images", root / "labels", ["bg", "a", "b"], split={**spec, "subset": "val"})
    assert sorted(train.keys + val.keys) == ds.keys and not set(train.keys) & set(val.keys)
    mapped = VolumeFolder(root / "images", root / "labels", ["bg", "fg"], value_map={0: 0, 1: 1, 2: 255})
    assert set(np.unique(mapped.load(0)["mask"])) <= {0, 1, 255}
    with pytest.raises(InputError, match=r"case_0\.nii\.gz: label value\(s\) \[2\] outside the 2 classes"):
        VolumeFolder(root / "images", root / "labels", ["bg", "fg"]).load(0)
    seen = VolumeFolder(root / "images", root / "labels", ["bg", "a", "b"], transform=lambda item: item["name"])
    assert seen[0] == "case_0.nii.gz"


def test_volume_folder_errors_name_the_files(tmp_path):
    root = make_folder(tmp_path, n=2)
    (root / "labels" / "case_1.nii.gz").unlink()
    with pytest.raises(InputError, match=r"image or labels but not both, e\.g\. \['case_1'\]"):
        VolumeFolder(root / "images", root / "labels", ["bg", "a", "b"])
    save(root / "labels" / "case_1.nii.gz", np.zeros((4, 5, 7), np.uint8))
    ds = VolumeFolder(root / "images", root / "labels", ["bg", "a", "b"])
    with pytest.raises(
        InputError, match=r"labels/case_1\.nii\.gz: labels are 4×5×7 but image .*images/case_1\.nii\.gz"
    ):
        ds.load(1)
    shifted = np.diag([1.0, 2.0, 3.0, 1.0])
    shifted[0, 3] = 0.5  # half a millimetre off the image's grid
    nib.save(nib.Nifti1Image(np.zeros((4, 5, 6), np.uint8), shifted), root / "labels" / "case_1.nii.gz")
    with pytest.raises(
        InputError, match=r"case_1\.nii\.gz: labels lie in another grid than image .*differ by up to 0\.5"
    ):
        ds.load(1)
    with pytest.raises(MissingPathError, match="masks_dir"):
        VolumeFolder(root / "images", root / "nowhere", ["bg", "a"])
    with pytest.raises(InputError, match="classes"):
        VolumeFolder(root / "images", root / "labels", ["bg"])
    with pytest.raises(InputError, match="value_map"):
        VolumeFolder(root / "images", root / "labels", ["bg", "a"], value_map={1: 7})


def test_volume_folder_patterns_and_channels(tmp_path):
    rng = np.random.default_rng(1)
    save(tmp_path / "img" / "p01_0000.nii.gz", rng.random((3, 3, 3, 2)).astype(np.float32))
    save(tmp_path / "lab" / "p01.nii.gz", np.ones((3, 3, 3), np.uint8))
    ds = VolumeFolder(tmp_path / "img", tmp_path / "lab", ["bg", "fg"], "{id}_0000.nii.gz", "{id}.nii.gz", channels=2)
    assert ds.keys == ["p01"] and ds.load(0)["image"].shape == (2, 3, 3, 3)
    one = VolumeFolder(tmp_path / "img", tmp_path / "lab", ["bg", "fg"], "{id}_0000.nii.gz", "{id}.nii.gz")
    with pytest.raises(InputError, match=r"p01_0000\.nii\.gz: 2 channel\(s\), expected 1"):
        one.load(0)


def make_decathlon(root: Path, modality=("MRI",), n: int = 3) -> Path:
    training = []
    for i in range(n):
        shape = (3 + i, 4, 5)
        image = np.full((*shape, len(modality)), i, np.float32)
        save(root / "imagesTr" / f"t_{i:03d}.nii.gz", image[..., 0] if len(modality) == 1 else image)
        save(root / "labelsTr" / f"t_{i:03d}.nii.gz", np.ones(shape, np.float32))
        training.append({"image": f"./imagesTr/t_{i:03d}.nii.gz", "label": f"./labelsTr/t_{i:03d}.nii.gz"})
    index = {"labels": {"0": "background", "1": "organ"}, "modality": dict(enumerate(modality)), "training": training}
    (root / "dataset.json").write_text(json.dumps(index))
    return root


def test_decathlon_reads_dataset_json(tmp_path):
    root = make_decathlon(tmp_path / "task", modality=("T1", "T2"))
    ds = Decathlon(root)
    assert ds.classes == ["background", "organ"] and ds.channel_names == ["T1", "T2"] and ds.in_channels == 2
    assert ds.keys == ["t_000", "t_001", "t_002"]
    item = ds.load(2)
    assert item["image"].shape == (2, 5, 4, 5) and item["mask"].shape == (5, 4, 5) and item["mask"].dtype == np.int64
    val = Decathlon(root, split={"files": ["t_001"]})
    assert val.image_paths == [(root / "imagesTr" / "t_001.nii.gz").resolve()]


def test_decathlon_errors(tmp_path):
    root = make_decathlon(tmp_path / "task")
    (root / "labelsTr" / "t_001.nii.gz").unlink()
    with pytest.raises(MissingPathError, match=r"labelsTr/t_001\.nii\.gz: listed in .*dataset\.json"):
        Decathlon(root)
    index = json.loads((root / "dataset.json").read_text())
    (root / "dataset.json").write_text(json.dumps({**index, "labels": {"0": "bg", "2": "x"}}))
    with pytest.raises(InputError, match=r"'labels' must be numbered 0\.\.1"):
        Decathlon(root)
    (root / "dataset.json").write_text("{")
    with pytest.raises(InputError, match=r"dataset\.json: not a readable JSON"):
        Decathlon(root)
    with pytest.raises(MissingPathError, match=r"dataset\.json"):
        Decathlon(tmp_path)


def test_real_hippocampus(shared_data):
    root = shared_data / "hippocampus"
    if not root.is_dir():
        pytest.skip(f"MSD Hippocampus not found at {root}")
    ds = Decathlon(root)
    assert len(ds) == 200 and ds.classes == ["background", "anterior", "posterior"] and ds.channel_names == ["MRI"]
    shapes, peaks = set(), []
    for i in range(len(ds)):
        item = ds.load(i)  # every pair opens; a shape mismatch would raise
        image, mask = item["image"], item["mask"]
        assert image.dtype == np.float32 and image.shape == (1, *mask.shape) and mask.dtype == np.int64
        assert set(np.unique(mask)) <= {0, 1, 2} and item["spacing"] == (1.0, 1.0, 1.0)
        shapes.add(mask.shape)
        peaks.append(float(image.max()))
        if i % 20 == 0:  # per-volume z-score brings every scale to one
            z = normalize_volume(image, {"zscore": {"foreground": True}})[image > 0]
            assert abs(z.mean()) < 1e-3 and z.std() == pytest.approx(1, abs=1e-3)
    assert len(shapes) > 10  # shapes differ per case
    assert max(peaks) / min(peaks) > 1000  # intensities on very different scales
    for key in ("hippocampus_003", "hippocampus_243"):  # the two float32 label files
        mask = ds.load(ds.keys.index(key))["mask"]
        assert set(np.unique(mask)) == {0, 1, 2}
    folds = [Decathlon(root, split={"fold": k, "folds": 5, "subset": "val"}).keys for k in range(5)]
    assert sorted(key for fold in folds for key in fold) == ds.keys
