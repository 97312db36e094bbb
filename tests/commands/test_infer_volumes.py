"""`segattn infer` on volumes: <name>.nii.gz label volumes in each input's grid, re-runs that skip,
--overwrite, segattn's own earlier outputs among the inputs, --probs, and one-line refusals."""

import shutil

import nibabel as nib
import numpy as np
import pytest

from segattn import Segmenter
from segattn.data.io import is_own_output, write_image

from ..inference.test_volumes_inference import SHAPE, ckpt, oblique_affine, save_nifti, scan  # noqa: F401


@pytest.fixture
def scans(tmp_path):
    """scans/: an oblique .nii.gz and an axis-aligned .nii of other shapes."""
    folder = tmp_path / "scans"
    folder.mkdir()
    save_nifti(folder / "case_007.nii.gz", scan())
    save_nifti(folder / "case_010.nii", scan((9, 14, 11), seed=1), np.diag([1.0, 1.0, 2.5, 1.0]))
    return folder


def errors(result):
    return [line for line in result.stderr.splitlines() if line.startswith("segattn: error:")]


def test_infer_writes_label_volumes_in_each_inputs_grid(ckpt, scans, tmp_path, segattn):  # noqa: F811
    out = tmp_path / "labels"
    infer = ["infer", "--ckpt", ckpt, "--input", scans, "--output", out, "--workers", 0, "--device", "cpu"]
    first = segattn(*infer)
    assert first.returncode == 0, first.stderr
    assert f"wrote 2 label volumes to {out}" in first.stdout and "volumes/s" in first.stdout
    assert sorted(p.name for p in out.iterdir()) == ["case_007.nii.gz", "case_010.nii.gz", "manifest.jsonl"]
    seg = Segmenter.from_checkpoint(ckpt, device="cpu")
    for name in ["case_007.nii.gz", "case_010.nii"]:
        source, written = nib.load(scans / name), nib.load(out / f"{name.split('.')[0]}.nii.gz")
        assert written.shape == source.shape and written.get_data_dtype() == np.uint8
        np.testing.assert_allclose(written.affine, source.affine, atol=1e-5)
        for code in ("qform_code", "sform_code"):
            assert int(written.header[code]) == int(source.header[code])
        np.testing.assert_array_equal(np.asanyarray(written.dataobj), seg.predict(scans / name)[0])
        assert is_own_output(out / f"{name.split('.')[0]}.nii.gz") and not is_own_output(scans / name)
    stamp = (out / "case_007.nii.gz").stat().st_mtime_ns
    again = segattn(*infer)
    assert "wrote 0 label volumes" in again.stdout and "2 existed and were skipped" in again.stdout
    redone = segattn(*infer, "--overwrite", "--tta", "flip", "--slide", 8, 16, 8)
    assert "wrote 2 label volumes" in redone.stdout and (out / "case_007.nii.gz").stat().st_mtime_ns != stamp
    probs = segattn(*infer, "--probs")  # the label maps exist, the probabilities do not: both written
    assert probs.returncode == 0 and "wrote 2 label volumes" in probs.stdout
    stored = np.load(out / "case_007_probs.npy")
    assert stored.dtype == np.float16 and stored.shape == (3, *SHAPE)
    np.testing.assert_allclose(stored.astype(np.float32).sum(0), 1, atol=5e-3)


def test_its_own_earlier_outputs_among_the_inputs_are_left_out(ckpt, scans, segattn):  # noqa: F811
    (scans / "case_007.nii.gz").unlink()  # scans/ holds case_010.nii; its label volume goes beside it
    infer = ["infer", "--ckpt", ckpt, "--input", scans, "--output", scans, "--workers", 0, "--device", "cpu"]
    assert "wrote 1 label volumes" in segattn(*infer).stdout
    second = segattn(*infer)
    assert second.returncode == 0, second.stderr
    assert "1 existed and were skipped" in second.stdout
    assert "1 input file(s) were segattn's own earlier outputs" in second.stdout


def test_refusals_are_one_line(ckpt, scans, tmp_path, segattn):  # noqa: F811
    infer = ["infer", "--ckpt", ckpt, "--output", tmp_path / "out", "--workers", 0, "--device", "cpu", "--input"]
    images = tmp_path / "images"
    images.mkdir()
    write_image(images / "a.png", np.zeros((8, 8, 3), np.uint8))
    shutil.copy(images / "a.png", scans / "preview.png")
    for args, named in [
        ([scans / "case_007.nii.gz", "--overlay"], "overlays (--overlay) are drawn on images"),
        ([scans], "holds both images (preview.png, ...) and volumes (case_007.nii.gz, ...)"),
        ([images], f"{images / 'a.png'}: the checkpoint's network is 3-D and takes volumes"),
        ([scans / "case_007.nii.gz", "--tta", "flip+scales"], "a volume takes tta='flip'"),
        ([scans / "case_007.nii.gz", "--slide", 8, 8], "--slide 8 8: expected one window side, or three (D H W)"),
    ]:
        result = segattn(*infer, *args)
        assert result.returncode == 2 and len(errors(result)) == 1 and named in errors(result)[0], result.stderr
        assert "Traceback" not in result.stderr
    skipped = segattn(*infer, images, scans / "case_007.nii.gz", "--skip-errors")
    assert skipped.returncode == 1 and "wrote 1 label volumes" in skipped.stdout and "1 failed" in skipped.stdout
