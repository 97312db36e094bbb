"""`segattn serve` on a volume network: a NIfTI upload comes back as its label volume in its own
grid (what `segattn infer` writes), or as class volumes in JSON; a gzip bomb, an image or a volume
with attention asked for gets its 4xx."""

from __future__ import annotations

import gzip
import json

import nibabel as nib
import numpy as np
import pytest
from serve_page import running_server

from segattn import Segmenter

from ..inference.test_volumes_inference import ckpt as ckpt  # the fixture: a tiny 3-D network
from ..inference.test_volumes_inference import oblique_affine, save_nifti, scan
from .test_serve import png, post

pytest.importorskip("litserve", reason="LitServe is the optional `serve` extra")
pytestmark = pytest.mark.slow
MAX_VOXELS = 20_000


@pytest.fixture(scope="module")
def server(ckpt):
    with running_server(ckpt, "--accelerator", "cpu", "--devices", "1", "--max-pixels", str(MAX_VOXELS)) as url:
        yield url


def test_a_nifti_upload_comes_back_as_its_label_volume_in_its_grid(server, ckpt, tmp_path):
    path = save_nifti(tmp_path / "case.nii.gz", scan())
    status, kind, body = post(server, path.read_bytes(), "case.nii.gz")
    assert status == 200 and kind == "application/gzip", body[:300]
    (tmp_path / "labels.nii.gz").write_bytes(body)
    written = nib.load(tmp_path / "labels.nii.gz")
    np.testing.assert_allclose(written.affine, oblique_affine(), atol=1e-5)
    assert int(written.header["qform_code"]) == 1 and int(written.header["sform_code"]) == 2
    expected = Segmenter.from_checkpoint(ckpt, device="cpu").predict(path)[0]
    np.testing.assert_array_equal(np.asanyarray(written.dataobj), expected)


def test_json_gives_each_classes_voxels_and_millilitres(server, ckpt, tmp_path):
    grid = np.diag([1.0, 1.0, 2.5, 1.0])
    path = save_nifti(tmp_path / "case.nii", scan((9, 14, 11), seed=1), grid)  # uncompressed
    status, _, body = post(server, path.read_bytes(), "case.nii", format="json")
    assert status == 200, body[:300]
    answer = json.loads(body)
    labels = Segmenter.from_checkpoint(ckpt, device="cpu").predict(path)[0]
    counts = np.bincount(labels.ravel(), minlength=3)
    assert answer["shape"] == [9, 14, 11] and answer["spacing"] == [1.0, 1.0, 2.5]
    assert answer["areas"] == dict(zip(answer["classes"], counts.tolist(), strict=True))
    assert answer["millilitres"]["background"] == pytest.approx(counts[0] * 2.5 / 1000, abs=1e-3)


@pytest.mark.parametrize(
    ("make", "fields", "status", "reason"),
    [
        (lambda: gzip.compress(bytes(50 * 2**20), 1), {}, 413, "decompresses past"),
        (lambda: gzip.compress(nib.Nifti1Image(np.zeros((40, 40, 40), np.uint8), np.eye(4)).to_bytes()), {}, 413,
         "64000 voxels; this server takes at most 20000"),
        (lambda: png(np.zeros((8, 8, 3), np.uint8)), {}, 415, "not a NIfTI volume"),
        (lambda: b"\x1f\x8b" + b"garbage" * 10, {}, 400, "cannot decompress"),
        (lambda: gzip.compress(b"\x5c\x01\x00\x00" + bytes(400)), {}, 400, "cannot read the NIfTI file"),
        (lambda: b"", {"format": "json", "attention": "true"}, 400, "attention maps of volumes are not served"),
        (lambda: gzip.compress(nib.Nifti1Image(np.full((6, 7, 5), np.nan, np.float32), np.eye(4)).to_bytes()), {},
         422, "case.nii.gz: holds NaN or infinite voxels"),
    ],
)  # fmt: skip
def test_hostile_volume_uploads_get_a_4xx_and_the_server_goes_on(server, make, fields, status, reason, tmp_path):
    answer = post(server, make(), "case.nii.gz", **fields)
    assert answer[0] == status and reason in json.loads(answer[2])["detail"], answer[2][:300]
    assert post(server, save_nifti(tmp_path / "good.nii.gz", scan()).read_bytes(), "good.nii.gz")[0] == 200
