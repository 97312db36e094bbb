"""Bad volumes met through the command line: `segattn infer` and `segattn evaluate` print one
line naming the file and what was expected, and no traceback."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from ..inference.test_volumes_inference import CLASSES, ckpt, save_nifti, scan  # noqa: F401

EXPECTED = [("cut", "expected a whole, uncorrupted NIfTI volume"), ("nan", "holds NaN or infinite voxels")]


def errors(result) -> list[str]:
    assert "Traceback" not in result.stderr, result.stderr
    return [line for line in result.stderr.splitlines() if line.startswith("segattn: error:")]


@pytest.fixture
def scans(tmp_path):
    """scans/: a good scan, a truncated .nii.gz and one with a NaN voxel."""
    folder = tmp_path / "scans"
    folder.mkdir()
    good = save_nifti(folder / "good.nii.gz", scan((8, 9, 7)))
    data = good.read_bytes()
    (folder / "cut.nii.gz").write_bytes(data[: len(data) // 2])
    bad = scan((8, 9, 7), seed=1).astype(np.float32)
    bad[1, 2, 3] = np.nan
    save_nifti(folder / "nan.nii.gz", bad)
    return folder


def test_infer_names_a_corrupt_or_nan_scan(ckpt, scans, tmp_path, segattn):  # noqa: F811
    infer = ["infer", "--ckpt", ckpt, "--output", tmp_path / "out", "--workers", 0, "--device", "cpu", "--input"]
    for name, expected in EXPECTED:
        result = segattn(*infer, scans / f"{name}.nii.gz")
        lines = errors(result)
        assert result.returncode == 2 and len(lines) == 1, result.stderr
        assert str(scans / f"{name}.nii.gz") in lines[0] and expected in lines[0]
    skipped = segattn(*infer, scans, "--skip-errors")
    assert skipped.returncode == 1 and "wrote 1 label volumes" in skipped.stdout and "2 failed" in skipped.stdout
    assert "2 image(s) failed" in skipped.stderr and "Traceback" not in skipped.stderr
    for name, expected in EXPECTED:
        assert any(f"{name}.nii.gz" in line and expected in line for line in skipped.stderr.splitlines())


def test_evaluate_names_a_bad_case(ckpt, tmp_path, segattn):  # noqa: F811
    root, train = tmp_path / "val", tmp_path / "train"
    for folder in (root, train):
        for sub in ("images", "labels"):
            (folder / sub).mkdir(parents=True)
        save_nifti(folder / "images" / "a.nii.gz", scan((8, 9, 7)))
    save_nifti(train / "labels" / "a.nii.gz", np.zeros((8, 9, 7), np.uint8))
    labels = np.zeros((8, 9, 7), np.uint8)
    labels[2, 2, 2] = 3
    save_nifti(root / "labels" / "a.nii.gz", labels)
    val, train_set = (
        {
            "class_path": "segattn.data.VolumeFolder",
            "init_args": {"classes": CLASSES, "images_dir": str(f / "images"), "masks_dir": str(f / "labels")},
        }
        for f in (root, train)
    )
    config = tmp_path / "config.yaml"
    data = {"train": train_set, "val": val, "patch_size": [8, 8, 8], "num_workers": 0}
    config.write_text(yaml.safe_dump({"data": data}))
    evaluate = ["evaluate", "--ckpt", ckpt, "--config", config, "--out", tmp_path / "eval", "--device", "cpu"]
    result = segattn(*evaluate)
    lines = errors(result)
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert str(root / "labels" / "a.nii.gz") in lines[0] and "label value(s) [3] outside the 3 classes" in lines[0]
    bad = scan((8, 9, 7)).astype(np.float32)
    bad[0, 0, 0] = np.inf
    save_nifti(root / "images" / "a.nii.gz", bad)
    save_nifti(root / "labels" / "a.nii.gz", np.zeros((8, 9, 7), np.uint8))
    lines = errors(segattn(*evaluate))
    assert len(lines) == 1 and str(root / "images" / "a.nii.gz") in lines[0] and "NaN or infinite" in lines[0]


def test_fit_names_a_nan_training_scan(tmp_path, segattn):
    folders = {}
    for split in ("train", "val"):
        for sub in ("images", "labels"):
            (tmp_path / split / sub).mkdir(parents=True)
        save_nifti(tmp_path / split / "labels" / "a.nii.gz", np.zeros((8, 9, 7), np.uint8))
        folders[split] = {
            "class_path": "segattn.data.VolumeFolder",
            "init_args": {"classes": CLASSES, "images_dir": str(tmp_path / split / "images")}
            | {"masks_dir": str(tmp_path / split / "labels")},
        }
    bad = scan((8, 9, 7)).astype(np.float32)
    bad[4, 4, 4] = np.nan
    image = save_nifti(tmp_path / "train" / "images" / "a.nii.gz", bad)
    save_nifti(tmp_path / "val" / "images" / "a.nii.gz", scan((8, 9, 7)))
    config = tmp_path / "config.yaml"
    data = {**folders, "patch_size": [8, 8, 8], "num_workers": 0, "batch_size": 1}
    model = {"model_args": {"spatial_dims": 3, "widths": [4, 8]}}
    trainer = {"max_steps": 1, "accelerator": "cpu", "default_root_dir": str(tmp_path / "runs")}
    config.write_text(yaml.safe_dump({"data": data, "model": model, "trainer": trainer}))
    result = segattn("fit", "--config", config)
    lines = errors(result)
    assert result.returncode == 2 and len(lines) == 1, result.stderr[-2000:]
    assert str(image) in lines[0] and "holds NaN or infinite voxels; expected finite intensities" in lines[0]
