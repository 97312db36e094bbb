"""Nothing a user wrote is lost, nothing is half-written, nothing is silently wrong: infer,
export, image reading and the numeric options, each through the command or the public API."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from segattn import AttentionUNet, InputError, Segmenter
from segattn.atomic import exited, process_runs, remove_stale_temporaries
from segattn.checkpoint import MODEL_PREFIX, RECORD_KEY, make_record
from segattn.cli import main
from segattn.data import ImageMaskFolder
from segattn.data.io import read_image, read_mask, write_image, write_label_map
from segattn.data.transforms import eval_pipeline, serialize
from segattn.evaluate import evaluate_dataset
from segattn.export import export_onnx
from segattn.infer import run_infer

SEGATTN = [sys.executable, "-m", "segattn.cli"]
CLASSES = ["bg", "fg"]
PALETTE = [[0, 0, 0], [255, 0, 0]]


def picture(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth RGB uint8 picture (compresses like a photo, unlike noise)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    phase = rng.uniform(0, 6, 3)
    return np.stack([127 + 120 * np.sin(x / 9 + y / 13 + p) for p in phase], axis=2).astype(np.uint8)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> str:
    """A self-describing checkpoint of a small untrained network (seeded)."""
    torch.manual_seed(0)
    model = AttentionUNet(widths=(8, 16, 32), num_classes=2)
    path = tmp_path_factory.mktemp("ckpt") / "model.ckpt"
    record = make_record("attention_unet", {"widths": [8, 16, 32]}, 3, CLASSES, PALETTE,
                         serialize(eval_pipeline("imagenet", 3)))  # fmt: skip
    state = {MODEL_PREFIX + k: v for k, v in model.state_dict().items()}
    torch.save({RECORD_KEY: record, "state_dict": state}, path)
    return str(path)


def one_line_error(result) -> str:
    assert result.returncode == 2, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith("segattn: error:")]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    return lines[0]


def test_outputs_never_land_on_inputs_and_a_second_run_beside_them_skips(ckpt, tmp_path, segattn):
    pngs, jpgs = tmp_path / "pngs", tmp_path / "jpgs"
    for folder, suffix in ((pngs, "png"), (jpgs, "jpg")):
        folder.mkdir()
        for i in range(3):
            write_image(folder / f"00000{i}.{suffix}", picture(40, 56, i))
    before = {p.name: p.read_bytes() for p in pngs.iterdir()}
    line = one_line_error(segattn("infer", "--ckpt", ckpt, "--input", pngs, "--output", pngs, "--overwrite"))
    assert "000000.png" in line and "onto an input" in line
    assert {p.name: p.read_bytes() for p in pngs.iterdir()} == before  # the images are untouched

    first = segattn("infer", "--ckpt", ckpt, "--input", jpgs, "--output", jpgs, "--overlay", "--workers", "0")
    assert first.returncode == 0, first.stderr[-2000:]
    assert len(list(jpgs.glob("*.png"))) == 3 and len(list(jpgs.glob("*_overlay.jpg"))) == 3
    second = segattn("infer", "--ckpt", ckpt, "--input", jpgs, "--output", jpgs, "--overlay", "--workers", "0")
    assert second.returncode == 0, second.stderr[-2000:]
    assert "wrote 0 label maps" in second.stdout and "3 existed" in second.stdout and "nan" not in second.stdout
    assert "6 input file(s) were segattn's own earlier outputs" in second.stdout
    again = segattn("infer", "--ckpt", ckpt, "--input", jpgs, "--output", jpgs, "--overlay", "--overwrite")
    assert again.returncode == 0 and "wrote 3 label maps" in again.stdout, again.stderr[-2000:]
    assert sorted(p.name for p in jpgs.iterdir()) == sorted(
        ["manifest.jsonl", *(f"00000{i}{end}" for i in range(3) for end in (".jpg", ".png", "_overlay.jpg"))]
    )


def test_a_foreign_file_where_an_output_goes_is_never_replaced(ckpt, tmp_path):
    seg = Segmenter.from_checkpoint(ckpt)
    (tmp_path / "in").mkdir(), (tmp_path / "out").mkdir()
    write_image(tmp_path / "in" / "a.jpg", picture(20, 20))
    write_image(tmp_path / "out" / "a.png", picture(20, 20, 1))  # the user's own file
    kept = (tmp_path / "out" / "a.png").read_bytes()
    for overwrite in (False, True):
        with pytest.raises(InputError, match=r"a\.png: exists and was not written by segattn"):
            run_infer(seg, tmp_path / "in", tmp_path / "out", workers=0, overwrite=overwrite)
    assert (tmp_path / "out" / "a.png").read_bytes() == kept


def test_a_run_killed_mid_write_leaves_no_partial_output_and_the_rerun_completes(ckpt, tmp_path, segattn):
    images, out = tmp_path / "in", tmp_path / "out"
    images.mkdir()
    for i in range(16):
        write_image(images / f"{i:03d}.png", picture(256, 320, i))
    args = ["infer", "--ckpt", ckpt, "--input", images, "--output", out, "--overlay", "--probs", "--workers", "0"]
    process = subprocess.Popen([*SEGATTN, *map(str, args)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None and len(list(out.glob("*_probs.npy"))) < 3:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert 0 < check_whole_outputs(out, (256, 320)) < 16, "the kill should land mid-run"
    rerun = segattn(*args)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    seg = Segmenter.from_checkpoint(ckpt)
    for i in range(16):
        np.testing.assert_array_equal(read_mask(out / f"{i:03d}.png"), seg.predict(images / f"{i:03d}.png")[0])
        assert (out / f"{i:03d}_overlay.jpg").is_file() and (out / f"{i:03d}_probs.npy").is_file()
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "temporary files: the killed run's are removed"


def test_the_temporaries_of_a_killed_process_not_yet_reaped_are_stale(tmp_path):
    """A killed writer whose parent has not reaped it (a zombie) writes nothing more: its
    temporaries go, a running process's stay."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 60
    while not exited(dead.pid) and time.monotonic() < deadline:  # exited, not reaped: a zombie
        time.sleep(0.02)
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        for pid in (dead.pid, alive.pid):
            (tmp_path / f".000.png.{pid}-0badc0de.tmp").write_bytes(b"half")
        assert exited(dead.pid) and not process_runs(dead.pid) and process_runs(alive.pid)
        assert remove_stale_temporaries(tmp_path) == 1
        assert [p.name for p in tmp_path.iterdir()] == [f".000.png.{alive.pid}-0badc0de.tmp"]
    finally:
        alive.kill()
        alive.wait()
        dead.wait()


def check_whole_outputs(out: Path, shape: tuple[int, int]) -> int:
    """Asserts that every label map, probability file and overlay under an output name in `out` is
    complete (of the images' H×W `shape`); returns how many label maps there are."""
    written = sorted(out.glob("[0-9][0-9][0-9].png"))
    for path in written:
        assert read_mask(path).shape == shape
    for path in out.glob("*_probs.npy"):
        assert np.load(path).shape == (2, *shape)
    for path in out.glob("*_overlay.jpg"):
        assert read_image(path).shape == (*shape, 3)
    return len(written)


def test_an_unreadable_image_fails_the_run_or_is_skipped_and_reported(ckpt, tmp_path, segattn):
    images, out = tmp_path / "in", tmp_path / "out"
    images.mkdir()
    for i in range(3):
        write_image(images / f"{i}.png", picture(24, 24, i))
    (images / "1b.png").write_bytes(b"")  # zero bytes
    line = one_line_error(segattn("infer", "--ckpt", ckpt, "--input", images, "--output", out, "--workers", "0"))
    assert "1b.png: the file is empty (0 bytes)" in line
    skipping = segattn("infer", "--ckpt", ckpt, "--input", images, "--output", out, "--skip-errors", "--workers", "0")
    assert skipping.returncode == 1 and "Traceback" not in skipping.stderr
    assert "1 image(s) failed" in skipping.stderr and "1b.png: the file is empty" in skipping.stderr
    assert sorted(p.name for p in out.glob("*.png")) == ["0.png", "1.png", "2.png"]


def test_export_writes_nothing_when_parity_fails_and_names_an_unwritable_folder(ckpt, tmp_path, segattn):
    pytest.importorskip("onnxruntime")
    target = tmp_path / "model.onnx"
    diffs = export_onnx(ckpt, target, dynamic=False, tolerance=-1.0)  # no difference can pass
    assert diffs and not target.exists() and not list(tmp_path.glob(".*"))
    (tmp_path / "file").write_text("")
    line = one_line_error(segattn("export", "--ckpt", ckpt, "--onnx", tmp_path / "file" / "model.onnx"))
    assert "cannot create its folder" in line
    nested = tmp_path / "new" / "folder" / "model.onnx"
    assert max(export_onnx(ckpt, nested, dynamic=False).values()) < 1e-3 and nested.is_file()


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".webp", ".tif"])
def test_exif_orientation_is_applied_as_viewers_show_it(tmp_path, suffix):
    stored = picture(24, 40)
    for orientation in range(1, 9):
        exif = Image.Exif()
        exif[0x0112] = orientation
        path = tmp_path / f"o{orientation}{suffix}"
        options = {"quality": 100} if suffix == ".jpg" else {"lossless": True} if suffix == ".webp" else {}
        Image.fromarray(stored).save(path, exif=exif.tobytes(), **options)
        with Image.open(path) as image:
            shown = np.array(ImageOps.exif_transpose(image).convert("RGB"))
        np.testing.assert_array_equal(read_image(path), shown)
        mask = tmp_path / f"m{orientation}.png"
        Image.fromarray((stored[..., 0] > 127).astype(np.uint8)).save(mask, exif=exif.tobytes())
        with Image.open(mask) as image:
            np.testing.assert_array_equal(read_mask(mask), np.array(ImageOps.exif_transpose(image)))


def test_a_mask_drawn_on_the_displayed_photo_pairs_with_it_in_training_and_prediction(ckpt, tmp_path):
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir(), masks.mkdir()
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 30×50, shown 50×30 (rotated 90° clockwise)
    Image.fromarray(picture(30, 50)).save(images / "phone.jpg", exif=exif.tobytes(), quality=95)
    shown = np.zeros((50, 30), np.uint8)
    shown[:10] = 1  # drawn on the top of the displayed photo
    Image.fromarray(shown).save(masks / "phone.png")
    item = ImageMaskFolder(images, masks, CLASSES).load(0)
    assert item["image"].shape == (50, 30, 3)
    np.testing.assert_array_equal(item["mask"], shown)
    seg = Segmenter.from_checkpoint(ckpt)
    assert seg.predict(images / "phone.jpg")[0].shape == (50, 30)
    run_infer(seg, images, tmp_path / "out", workers=0, overlay_images=True)
    assert read_mask(tmp_path / "out" / "phone.png").shape == (50, 30)
    assert read_image(tmp_path / "out" / "phone_overlay.jpg").shape == (50, 30, 3)


def test_label_maps_of_any_class_count_round_trip(ckpt, tmp_path):
    labels = np.arange(70 * 11).reshape(70, 11) % 300  # 300 classes: past uint8
    write_label_map(tmp_path / "many.png", labels, [[0, 0, 0]] * 300)
    np.testing.assert_array_equal(read_mask(tmp_path / "many.png"), labels)
    write_label_map(tmp_path / "few.png", labels % 7, PALETTE)
    np.testing.assert_array_equal(read_mask(tmp_path / "few.png"), labels % 7)
    with pytest.raises(InputError, match=r"holds integer labels 0\.\.65535"):
        write_label_map(tmp_path / "bad.png", labels - 1, PALETTE)
    torch.manual_seed(0)
    network = AttentionUNet(widths=(8, 16), num_classes=300)
    head = [m for m in network.modules() if isinstance(m, torch.nn.Conv2d) and m.out_channels == 300][-1]
    with torch.no_grad():
        head.bias[280] += 5.0  # class 280 wins
    classes = [f"c{i}" for i in range(300)]
    seg = Segmenter(network, classes, eval_pipeline("imagenet", 3), [[i % 256] * 3 for i in range(300)], 3, "cpu")
    (tmp_path / "in").mkdir()
    write_image(tmp_path / "in" / "x.png", picture(33, 47))
    run_infer(seg, tmp_path / "in", tmp_path / "out", workers=0, probs=True)
    predicted = seg.predict(tmp_path / "in" / "x.png")[0]
    assert predicted.max() == 280
    np.testing.assert_array_equal(read_mask(tmp_path / "out" / "x.png"), predicted)
    probs = seg.predict(tmp_path / "in" / "x.png", return_probs=True)[0]
    np.testing.assert_array_equal(np.load(tmp_path / "out" / "x_probs.npy"), probs.astype(np.float16))


def test_a_16bit_image_in_an_evaluation_split_is_named_by_its_file(ckpt, tmp_path):
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir(), masks.mkdir()
    write_image(images / "deep.png", (picture(16, 16).astype(np.uint16) * 257))
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(masks / "deep.png")
    with pytest.raises(InputError, match=r"images/deep\.png: 16-bit pixels"):
        evaluate_dataset(Segmenter.from_checkpoint(ckpt), ImageMaskFolder(images, masks, CLASSES))


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["infer", "--batch-size", "0"], "infer: argument --batch-size: expected an integer ≥ 1, got '0'"),
        (["infer", "--workers", "-1"], "infer: argument --workers: expected an integer ≥ 0, got '-1'"),
        (["infer", "--slide", "-3"], "argument --slide: expected an integer ≥ 1"),
        (["infer", "--slide", "64", "--overlap", "nan"], "argument --overlap: expected a finite number, got 'nan'"),
        (["infer", "--tta", "flip+scales", "--scales", "0"], "argument --scales: expected a positive scale factor"),
        (["infer", "--tta", "flip+scales", "--scales", "inf"], "argument --scales: expected a finite number"),
        (["evaluate", "--config", "c.yaml", "--batch-size", "0"], "evaluate: argument --batch-size: expected an"),
        (["evaluate", "--config", "c.yaml", "--worst", "-1"], "evaluate: argument --worst: expected an integer ≥ 0"),
        (["evaluate", "--config", "c.yaml", "--slide", "1.5"], "argument --slide: expected an integer, got '1.5'"),
        (["export", "--onnx", "m.onnx", "--opset", "0"], "export: argument --opset: expected an integer ≥ 1"),
        (["demo", "--epochs", "0"], "demo: argument --epochs: expected an integer ≥ 1, got '0'"),
        (["demo", "--n-val", "-2"], "demo: argument --n-val: expected an integer ≥ 1"),
    ],
)
def test_numeric_options_are_checked_up_front_with_one_line(ckpt, tmp_path, capsys, args, named):
    extra = [] if args[0] == "demo" else ["--ckpt", str(tmp_path / "not-read.ckpt")]
    extra += ["--input", "none", "--output", str(tmp_path)] if args[0] == "infer" else []
    with pytest.raises(SystemExit) as exit_:
        main([*args, *extra])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("segattn: error: ") and named in err and len(err.strip().splitlines()) == 1, err


def test_a_scale_that_shrinks_an_image_to_nothing_is_named(ckpt, tmp_path):
    write_image(tmp_path / "small.png", picture(40, 60))
    with pytest.raises(InputError, match=r"small\.png: scale 0\.01 shrinks its 40-pixel side to nothing"):
        Segmenter.from_checkpoint(ckpt).predict(tmp_path / "small.png", tta="flip+scales", scales=(0.01, 1.0))
    with pytest.raises(InputError, match="scales: expected positive finite factors"):
        Segmenter.from_checkpoint(ckpt).predict(tmp_path / "small.png", tta="flip+scales", scales=(float("nan"),))
