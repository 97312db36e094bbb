"""End to end through the `segattn` command, as a user runs it."""

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from segattn import Segmenter
from segattn.data.io import read_image, write_image

from ..conftest import REPO

pytestmark = pytest.mark.slow
SEGATTN = [sys.executable, "-m", "segattn.cli"]


def run(*args, check=True, cwd=REPO):
    # A deadlocked run (DDP ranks waiting on each other) fails after 10 minutes instead of hanging CI.
    result = subprocess.run([*SEGATTN, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(f"segattn {' '.join(map(str, args))} failed:\n{result.stdout}\n{result.stderr}")
    return result


def small_fit_args(run_dir: Path, data_dir: Path, epochs: int = 2) -> list[str]:
    args = [
        "fit",
        "--config",
        REPO / "configs/demo.yaml",
        "--trainer.default_root_dir",
        run_dir,
        "--trainer.max_epochs",
        epochs,
        "--data.crop_size",
        64,
        "--data.batch_size",
        8,
        "--model.model_args",
        '{"widths": [8, 16, 32]}',
    ]
    for split in ("train", "val"):
        args += [
            f"--data.{split}.init_args.root",
            data_dir,
            f"--data.{split}.init_args.n_train",
            16,
            f"--data.{split}.init_args.n_val",
            6,
            f"--data.{split}.init_args.size",
            64,
        ]
    return args


def data_config(tmp_path: Path, data_dir: Path) -> Path:
    """A config with only a data section: the fitted run's synthetic set."""
    init = {"root": str(data_dir), "n_train": 16, "n_val": 6, "size": 64}
    data = {split: {"class_path": "segattn.data.SyntheticShapes", "init_args": init | {"split": split}}
            for split in ("train", "val")}  # fmt: skip
    config = tmp_path / "data.yaml"
    config.write_text(json.dumps({"data": data | {"crop_size": 64}}))
    return config


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """A 2-epoch fit (2 steps each, every step logged) through the CLI: (run folder, data folder)."""
    root = tmp_path_factory.mktemp("fit")
    run(*small_fit_args(root / "run", root / "data"), "--trainer.log_every_n_steps", 1)
    return root / "run", root / "data"


def test_fit_writes_best_and_last_checkpoints(fitted):
    run_dir, _ = fitted
    names = sorted(p.name for p in run_dir.rglob("*.ckpt"))
    assert names == ["best.ckpt", "last.ckpt"]


def test_fit_logs_curves_and_val_images_to_csv_and_tensorboard(fitted, tmp_path):
    """One version folder: metrics.csv, TensorBoard events, and per epoch a PNG of 4 val images as
    image | truth | prediction | the gate's α (widths [8, 16, 32] with gate_finest false: 1 gate)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from segattn.viz import plot_curves, read_metrics_csv

    (version,) = (fitted[0] / "lightning_logs").iterdir()
    pictures = sorted((version / "val_images").iterdir())
    assert [p.name for p in pictures] == ["epoch_000.png", "epoch_001.png"]
    picture = read_image(pictures[-1])
    assert picture.shape == (4 * 64, 4 * 64 + 3 * 4, 3)
    curves = read_metrics_csv(version / "metrics.csv")
    assert len(curves["val/mIoU"][1]) == 2 and 0 <= curves["val/mIoU"][1].min() <= 1
    alphas = {key: values for key, (_, values) in curves.items() if key.startswith("train/alpha/")}
    assert list(alphas) == ["train/alpha/gate1"]  # the one gate, its mean α at each of the 4 steps
    alpha = alphas["train/alpha/gate1"]
    assert len(alpha) == 4 and ((alpha > 0) & (alpha < 1)).all()
    plot_curves(version / "metrics.csv", out=tmp_path / "curves.png")
    assert read_image(tmp_path / "curves.png").shape[1:] == (3 * 5 * 120, 3)  # loss | score | gate α panels
    events = EventAccumulator(str(version), size_guidance={"images": 0}).Reload()
    assert len(events.Images("val/predictions")) == 2
    assert [e.step for e in events.Scalars("val/mIoU")] == curves["val/mIoU"][0].tolist()


def test_segmenter_needs_nothing_but_the_checkpoint(fitted, tmp_path):
    run_dir, data_dir = fitted
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(next(run_dir.rglob("best.ckpt")), alone / "model.ckpt")
    image = np.random.default_rng(0).integers(0, 256, (50, 70, 3), dtype=np.uint8)
    write_image(tmp_path / "odd.png", image)
    script = (
        "import sys, numpy as np; from segattn import Segmenter\n"
        "seg = Segmenter.from_checkpoint(sys.argv[1], device='cpu')\n"
        "masks = seg.predict([sys.argv[2], np.zeros((33, 20, 3), np.uint8), np.zeros((33, 20), np.uint8)])\n"
        "print([m.shape for m in masks], [m.dtype.name for m in masks], seg.classes)\n"
    )
    # A fresh process in an empty folder: no config, no data set, no run folder to lean on.
    out = subprocess.run(
        [sys.executable, "-c", script, alone / "model.ckpt", tmp_path / "odd.png"],
        cwd=alone,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "[(50, 70), (33, 20), (33, 20)]" in out
    assert "['uint8', 'uint8', 'uint8']" in out
    assert "['background', 'circle', 'square', 'triangle']" in out
    segmenter = Segmenter.from_checkpoint(alone / "model.ckpt", device="cpu")
    folder = segmenter.predict(data_dir / "val")
    assert len(folder) == 6 and all(m.shape == (64, 64) for m in folder)
    assert max(int(m.max()) for m in folder) < 4


def test_evaluate_equals_the_val_miou_logged_by_fit(fitted, tmp_path):
    run_dir, data_dir = fitted
    best = next(run_dir.rglob("best.ckpt"))
    with open(next(run_dir.rglob("metrics.csv"))) as f:
        logged = max(float(row["val/mIoU"]) for row in csv.DictReader(f) if row["val/mIoU"])
    config = data_config(tmp_path, data_dir)
    result = run("evaluate", "--ckpt", best, "--config", config, "--out", tmp_path / "eval", "--worst", 3)
    assert "val" in result.stdout and "circle" in result.stdout
    scores = json.loads((tmp_path / "eval/metrics.json").read_text())
    assert scores["mIoU"] == pytest.approx(logged, abs=1e-6)
    per_class = list(csv.DictReader(open(tmp_path / "eval/per_class.csv")))
    assert [row["class"] for row in per_class] == ["background", "circle", "square", "triangle"]
    assert float(per_class[1]["IoU"]) == pytest.approx(scores["IoU"]["circle"])
    assert (tmp_path / "eval/confusion.png").stat().st_size > 1000
    assert len(list((tmp_path / "eval/worst").glob("*.png"))) == 3


def test_evaluate_takes_data_overrides_as_fit_does(fitted, tmp_path):
    run_dir, data_dir = fitted
    evaluate = ["evaluate", "--ckpt", next(run_dir.rglob("best.ckpt")), "--config", data_config(tmp_path, data_dir)]
    other = {"root": tmp_path / "other", "n_train": 2, "n_val": 3}  # another (synthetic) copy of the data
    overrides = [arg for key, value in other.items() for arg in (f"--data.val.init_args.{key}", value)]
    printed = run(*evaluate, *overrides, "--worst", 0).stdout
    assert "(3 images)" in " ".join(printed.split())  # the table's title wraps with a long tmp path
    result = run(*evaluate, "--trainer.max_epochs", 1, check=False)
    assert result.returncode == 2 and "unrecognized arguments: --trainer.max_epochs 1" in result.stderr


def test_evaluate_options_image_averaging_and_boundary(fitted, tmp_path):
    run_dir, data_dir = fitted
    config = data_config(tmp_path, data_dir)
    result = run("evaluate", "--ckpt", next(run_dir.rglob("best.ckpt")), "--config", config, "--averaging", "image",
                 "--boundary", "--exclude-background", "--worst", "0", "--out", tmp_path / "eval")  # fmt: skip
    assert "HD95" in result.stdout and "ASSD" in result.stdout
    scores = json.loads((tmp_path / "eval/metrics.json").read_text())
    assert scores["mHD95"] is None or scores["mHD95"] >= 0
    assert not (tmp_path / "eval/worst").exists()


@pytest.mark.parametrize("subcommand", ["validate", "test"])
def test_lightning_subcommands_run_on_the_checkpoint(fitted, subcommand):
    run_dir, data_dir = fitted
    args = small_fit_args(data_dir.parent / "again", data_dir)[1:]
    if subcommand == "test":  # a test set of its own: splits must be disjoint
        test_set = {"root": str(data_dir.parent / "test_set"), "split": "val", "n_train": 1, "n_val": 4, "size": 64}
        args += ["--data.test", json.dumps({"class_path": "segattn.data.SyntheticShapes", "init_args": test_set})]
    best = next(run_dir.rglob("best.ckpt"))
    result = run(subcommand, *args, "--ckpt_path", best)
    assert f"{'val' if subcommand == 'validate' else 'test'}/mIoU" in result.stdout


def test_checkpoints_that_do_not_fit_fail_with_one_line(fitted, tmp_path, segattn):
    run_dir, data_dir = fitted
    best = next(run_dir.rglob("best.ckpt"))
    args = small_fit_args(data_dir.parent / "never", data_dir)
    (tmp_path / "text.ckpt").write_text("not a checkpoint")
    coco = {
        split: {
            "class_path": "segattn.data.CocoSegmentation",
            "init_args": {"images_dir": str(data_dir / split), "classes": ["circle"],
                          "ann_file": str(data_dir / f"annotations/instances_{split}.json")},
        }
        for split in ("train", "val")
    }  # fmt: skip
    cases = [
        ([*args, "--model.model_args", '{"widths": [8, 16, 32, 64]}', "--ckpt_path", best],
         r"would be ignored: model.model_args {'widths': [8, 16, 32, 64]} (the checkpoint's: {'widths': [8, 16, 32]})"),
        ([*args, "--ckpt_path", tmp_path / "nope.ckpt"], "nope.ckpt: checkpoint file not found"),
        ([*args, "--ckpt_path", tmp_path / "text.ckpt"], "text.ckpt: not a readable segattn checkpoint"),
        (["validate", "--data", json.dumps(coco), "--ckpt_path", best],
         "trained for classes ['background', 'circle', 'square', 'triangle'] on 3-channel images; "
         "the data has ['background', 'circle']"),
    ]  # fmt: skip
    for command, named in cases:
        result = segattn(*command, cwd=REPO)
        errors = [line for line in result.stderr.splitlines() if line.startswith("segattn: error:")]
        assert result.returncode == 2 and len(errors) == 1 and named in errors[0], result.stderr[-3000:]
        assert "Traceback" not in result.stderr


def test_two_process_ddp_validation_equals_one_process(fitted):
    """Lightning's DDP on the CPU (gloo): each rank scores half of the val images and the
    confusion matrices are summed, so the scores equal a single process's."""
    run_dir, data_dir = fitted
    args = [*small_fit_args(data_dir.parent / "ddp", data_dir)[1:], "--ckpt_path", next(run_dir.rglob("best.ckpt"))]
    single = run("validate", *args)
    double = run("validate", *args, "--trainer.accelerator", "cpu", "--trainer.devices", 2, "--trainer.strategy", "ddp")

    def scores(output):
        rows = [line.split("│") for line in output.splitlines() if "val/" in line]
        # val/loss is a mean of batch means, which the split into ranks reweights; the scores are sums
        return {row[1].strip(): row[2].strip() for row in rows if "val/loss" not in row[1]}

    assert scores(single.stdout) == scores(double.stdout) and "val/mIoU" in scores(single.stdout)


@pytest.mark.parametrize(
    ("override", "named"),
    [
        (["--data.batch_size", "abc"], "data.batch_size"),
        (["--data.crop_size", "-5"], "crop_size"),
        (["--data.train.init_args.size", "-3"], "size"),
        (["--optimizer", "SGD"], "--optimizer"),  # the recipe's optimiser is SegmentationTask's own
    ],
)
def test_wrong_types_and_negative_sizes_fail_with_one_line(fitted, override, named):
    _, data_dir = fitted
    result = run(*small_fit_args(data_dir.parent / "never", data_dir), *override, check=False)
    errors = [line for line in result.stderr.splitlines() if line.startswith("segattn: error:")]
    assert result.returncode == 2 and len(errors) == 1 and named in errors[0], result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_class_fails_with_one_line_naming_it(fitted, tmp_path):
    _, data_dir = fitted
    coco = {"images_dir": str(data_dir / "val"), "ann_file": str(data_dir / "annotations/instances_val.json")}
    dataset = "segattn.data.CocoSegmentation"
    data = {"train": {"class_path": dataset, "init_args": coco | {"classes": ["circle", "unicorn"]}},
            "val": {"class_path": dataset, "init_args": coco}}  # fmt: skip
    (tmp_path / "c.yaml").write_text(json.dumps({"data": data}))
    result = run("fit", "--config", tmp_path / "c.yaml", check=False)
    errors = [line for line in result.stderr.splitlines() if line.startswith("segattn: error:")]
    assert result.returncode == 2 and len(errors) == 1 and "'unicorn'" in errors[0] and "square" in errors[0]


def test_unknown_config_key_fails_with_one_line_naming_it(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text((REPO / "configs/demo.yaml").read_text().replace("  lr: 0.003", "  lrate: 0.003"))
    result = run("fit", "--config", config, check=False)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("segattn: error:")]
    assert len(errors) == 1 and "lrate" in errors[0], result.stderr
    assert "Traceback" not in result.stderr


def test_misspelt_mapping_key_of_a_data_set_fails_with_one_line_naming_it(tmp_path):
    # jsonargparse's own message for a mapping with number keys under an unknown key names nothing
    config = tmp_path / "bad.yaml"
    config.write_text((REPO / "configs/membrane.yaml").read_text().replace("value_map:", "value_mapp:"))
    result = run("fit", "--config", config, check=False)
    errors = [line for line in result.stderr.splitlines() if line.startswith("segattn: error:")]
    assert result.returncode == 2 and len(errors) == 1, result.stderr
    assert (
        "data.train.init_args of ImageMaskFolder: unknown argument(s) ['value_mapp']; expected some of [" in errors[0]
    )


def test_unknown_model_argument_fails_with_one_line_naming_it(fitted):
    _, data_dir = fitted
    args = small_fit_args(data_dir.parent / "never", data_dir)
    result = run(*args, "--model.model_args", '{"widht": [8, 16]}', check=False)
    assert result.returncode == 2
    assert "segattn: error:" in result.stderr and "widht" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_data_path_fails_with_one_line_naming_it(tmp_path):
    config = tmp_path / "coco.yaml"
    missing = tmp_path / "no" / "instances.json"
    config.write_text(
        json.dumps(
            {
                "data": {
                    split: {
                        "class_path": "segattn.data.CocoSegmentation",
                        "init_args": {"images_dir": str(tmp_path), "ann_file": str(missing)},
                    }
                    for split in ("train", "val")
                }
            }
        )
    )
    result = run("fit", "--config", config, check=False)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("segattn: error:")]
    assert len(errors) == 1 and str(missing) in errors[0], result.stderr
    assert "Traceback" not in result.stderr


def test_demo_quick_prints_scores_and_writes_predictions(tmp_path):
    result = run(
        "demo",
        "--out",
        tmp_path / "demo",
        "--data-dir",
        tmp_path / "data",
        "--epochs",
        1,
        "--n-train",
        16,
        "--n-val",
        4,
    )
    assert "val mIoU" in result.stdout and "triangle" in result.stdout
    predictions = sorted(p.name for p in (tmp_path / "demo/predictions").iterdir())
    assert len(predictions) == 9 and "000001.png" in predictions and "000001_overlay.jpg" in predictions
    assert "manifest.jsonl" in predictions  # infer's record of what it wrote
    assert json.loads((tmp_path / "demo/eval/metrics.json").read_text())["IoU"].keys() >= {"circle", "square"}


def test_infer_and_export_through_the_cli(fitted, tmp_path):
    run_dir, data_dir = fitted
    best = next(run_dir.rglob("best.ckpt"))
    args = ["infer", "--ckpt", best, "--input", data_dir / "val", "--output", tmp_path / "out", "--workers", 0]
    first = run(*args, "--overlay")
    assert "wrote 6 label maps" in first.stdout and "images/s" in first.stdout
    assert len(list((tmp_path / "out").glob("*_overlay.jpg"))) == 6
    assert "wrote 0 label maps" in run(*args, "--tta", "flip").stdout  # all exist: skipped
    result = run("export", "--ckpt", best, "--onnx", tmp_path / "m.onnx", "--dynamic",
                 "--image", data_dir / "val/000001.jpg")  # fmt: skip
    assert result.stdout.count("max abs logit difference") == 2 and (tmp_path / "m.onnx").stat().st_size > 10_000


def test_worker_errors_and_options_without_effect_fail_with_one_line(fitted, tmp_path, segattn):
    run_dir, data_dir = fitted
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(data_dir / "val/000001.jpg", folder)
    (folder / "broken.png").write_bytes(b"not a png")
    infer = ["infer", "--ckpt", next(run_dir.rglob("best.ckpt")), "--input", folder, "--output", tmp_path / "out"]
    for extra, named in [
        (["--workers", 2], f"{folder / 'broken.png'}: cannot decode as an image"),  # raised in a DataLoader worker
        (["--overlap", 0.5], "--overlap 0.5: applies to sliding-window inference only"),
    ]:
        result = segattn(*infer, *extra)
        errors = [line for line in result.stderr.splitlines() if line.startswith("segattn: error:")]
        assert result.returncode == 2 and len(errors) == 1 and named in errors[0], result.stderr
        assert "Traceback" not in result.stderr and "DataLoader worker" not in result.stderr


def test_help_lists_every_command(segattn):
    result = segattn("--help")
    listed = [line.split()[0] for line in result.stdout.splitlines() if line.startswith("  ")]
    assert listed == ["demo", "fit", "validate", "test", "evaluate", "infer", "serve", "export"]
    assert "`segattn <command> --help`" in result.stdout


def test_tools_are_the_same_commands():
    tools = ("train.py", "evaluate.py", "infer.py", "export.py")
    # side by side: each spends seconds importing torch and Lightning before it prints its help
    running = {
        tool: subprocess.Popen([sys.executable, REPO / "tools" / tool, "--help"], stdout=subprocess.PIPE, text=True)
        for tool in tools
    }
    for tool, process in running.items():
        out, _ = process.communicate()
        assert process.returncode == 0 and ("--config" if tool == "train.py" else "--ckpt") in out


def test_export_without_onnxruntime_fails_with_one_line(tmp_path):
    script = (
        "import sys; sys.modules['onnxruntime'] = None  # as if not installed\n"
        "from segattn.cli import main; main(['export', '--ckpt', 'any.ckpt', '--onnx', 'out.onnx'])\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == (
        "segattn: error: export needs onnxruntime, which is not installed: pip install 'segattn[export]'"
    )


def test_figures_command_draws_the_readme_pictures(fitted, tmp_path):
    run_dir, data_dir = fitted
    ckpt = next(run_dir.rglob("best.ckpt"))
    result = subprocess.run(
        [sys.executable, "tools/figures.py", "--ckpt", ckpt, "--images", data_dir / "val", "--out", tmp_path],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert read_image(tmp_path / "overlays.png").shape == (64, 4 * 64 + 3 * 4, 3)
    assert read_image(tmp_path / "attention.png").shape == (4 * 64, 2 * 64 + 4, 3)  # image | the one gate's α
