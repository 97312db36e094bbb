"""Hostile input: a result or a clear error, never a crash or a hang."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from segattn import AttentionUNet, InputError, Segmenter
from segattn.data import ImageMaskFolder
from segattn.data.io import read_image, write_image
from segattn.data.transforms import eval_pipeline
from segattn.infer import run_infer

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file names and symlinks")


@pytest.fixture
def seg():
    model = AttentionUNet(widths=(8, 16, 32))
    return Segmenter(model, ["bg", "fg"], eval_pipeline("imagenet", 3), [[0] * 3, [255] * 3], 3, "cpu")


def test_images_of_zero_and_one_pixel(seg):
    assert seg.predict(np.zeros((1, 1, 3), np.uint8))[0].shape == (1, 1)
    assert seg.predict(np.zeros((1, 7), np.uint8))[0].shape == (1, 7)
    with pytest.raises(InputError, match="no pixels"):
        seg.predict(np.zeros((0, 5, 3), np.uint8))


def test_file_names_that_are_not_utf8(seg, tmp_path):
    name = os.fsdecode(str(tmp_path).encode() + b"/caf\xe9.png")  # Latin-1 bytes: not UTF-8
    image = np.random.default_rng(0).integers(0, 256, (9, 11, 3), dtype=np.uint8)
    write_image(name, image)
    np.testing.assert_array_equal(read_image(name), image)
    assert seg.predict(tmp_path)[0].shape == (9, 11)
    stats = run_infer(seg, tmp_path, tmp_path / "out", workers=0)
    written = sorted(os.listdir(os.fsencode(tmp_path / "out")))
    assert stats.written == 1 and written == [b"caf\xe9.png", b"manifest.jsonl"]
    masks = tmp_path / "masks"
    masks.mkdir()
    Image.fromarray(np.zeros((9, 11), np.uint8)).save(os.fsdecode(os.fsencode(masks) + b"/caf\xe9.png"))
    folder = ImageMaskFolder(tmp_path, masks, ["bg", "fg"])
    assert folder.load(0)["mask"].shape == (9, 11)


def test_symlink_loops_in_an_input_folder_are_passed_over(seg, tmp_path):
    write_image(tmp_path / "real.png", np.zeros((6, 6, 3), np.uint8))
    os.symlink(tmp_path, tmp_path / "loop")  # a folder link back to itself: not followed
    os.symlink(tmp_path / "self.png", tmp_path / "self.png")  # a link to itself: not a file
    assert [m.shape for m in seg.predict(tmp_path)] == [(6, 6)]


@pytest.mark.slow
def test_a_very_large_image_is_tiled_in_bounded_memory():
    """A 4000×4000 image with slide=(512, 0.25): windows are batched and the result stitched on
    the CPU, so memory grows by about 25 bytes per pixel (the image and the K×H×W sums): 0.5 GB
    here over the 0.85 GB that torch and the image hold before predict. A whole-image forward of
    this network takes about 290 bytes per pixel, 4.6 GB more at this size. The growth, not the
    absolute peak, is asserted: torch's own footprint differs between machines (CI once read
    2.6 GB where this one reads 1.3 GB)."""
    script = (
        "import json, resource, numpy as np\n"
        "from segattn import AttentionUNet, Segmenter\n"
        "from segattn.data.transforms import eval_pipeline\n"
        "seg = Segmenter(AttentionUNet(widths=(8, 16, 32)), ['bg', 'fg'], eval_pipeline('imagenet', 3),\n"
        "                [[0] * 3, [255] * 3], 3, 'cpu')\n"
        "image = np.random.default_rng(0).integers(0, 256, (4000, 4000, 3), dtype=np.uint8)\n"
        "before_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024\n"
        "(mask,) = seg.predict(image, batch_size=4, slide=(512, 0.25))\n"
        "peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024\n"
        "print(json.dumps([list(mask.shape), np.unique(mask).tolist(), before_mb, peak_mb]))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    shape, labels, before_mb, peak_mb = json.loads(out.stdout.splitlines()[-1])
    assert shape == [4000, 4000] and set(labels) <= {0, 1}
    assert peak_mb - before_mb < 2000, f"predict grew peak RSS from {before_mb} to {peak_mb} MB"
