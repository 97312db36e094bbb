"""`segattn fit` on volumes: configs/hippocampus.yaml, shrunk to a two-step run on the real data."""

from __future__ import annotations

import csv
import json
import re
from types import SimpleNamespace

import pytest
import torch

from segattn import Segmenter, checkpoint
from segattn.data.volume_io import read_label_volume
from segattn.errors import InputError
from segattn.task import SegmentationTask
from segattn.viz import read_metrics_csv

from ..conftest import REPO, needs_config_hippocampus


@needs_config_hippocampus
def test_fit_on_hippocampus_writes_volume_checkpoints_and_logs_dice(segattn, tmp_path):
    model_args = '{"spatial_dims": 3, "widths": [4, 8, 16], "norm": "instance", "deep_supervision": true}'
    result = segattn(
        "fit",
        "--config",
        REPO / "configs/hippocampus.yaml",
        "--trainer.default_root_dir",
        tmp_path,
        "--trainer.max_epochs",
        1,
        "--trainer.limit_train_batches",
        2,
        "--trainer.limit_val_batches",
        2,
        "--data.patch_size",
        "[16, 16, 16]",
        "--data.batch_size",
        2,
        "--data.num_workers",
        0,
        "--model.model_args",
        model_args,
        cwd=REPO,  # the config's data path is relative to the repository root
    )
    assert result.returncode == 0, result.stderr[-2000:]
    (version,) = (tmp_path / "lightning_logs").iterdir()
    assert sorted(p.name for p in (version / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    for name in ("best.ckpt", "last.ckpt"):
        stored = torch.load(version / "checkpoints" / name, map_location="cpu", weights_only=True)
        record = stored[checkpoint.RECORD_KEY]
        assert record["intensity"] == {"zscore": {"foreground": False}} and record["eval_transform"] is None
        assert record["model_args"]["spatial_dims"] == 3 and record["in_channels"] == 1
        assert record["classes"] == ["background", "anterior", "posterior"]
    curves = read_metrics_csv(version / "metrics.csv")
    for key in ("val/mIoU", "val/mDice", "val/IoU/anterior", "train/loss_epoch"):
        assert key in curves and torch.isfinite(torch.as_tensor(curves[key][1])).all()
    assert [p.name for p in (version / "val_images").iterdir()] == ["epoch_000.png"]  # the middle D slice
    # Lightning's validate takes the volume checkpoint and scores it
    data = ["--config", REPO / "configs/hippocampus.yaml", "--trainer.default_root_dir", tmp_path]
    data += ["--trainer.limit_val_batches", 2, "--data.num_workers", 0]
    best = ["--ckpt_path", version / "checkpoints/best.ckpt", "--model.model_args", model_args]
    validated = segattn("validate", *data, *best, cwd=REPO)
    assert validated.returncode == 0 and "val/mDice" in validated.stdout, validated.stderr[-2000:]
    check_evaluate_writes_the_per_case_table(segattn, version / "checkpoints/best.ckpt", tmp_path / "eval")


def check_evaluate_writes_the_per_case_table(segattn, best, out, config="configs/hippocampus.yaml", count=10):
    """`segattn evaluate` on the volume checkpoint: the per-case table (Dice, IoU, HD95/ASSD in mm
    per class per case, then mean, std and count) on `count` val cases, each case's Dice equal to
    numpy's on the file's labels and Segmenter.predict of its scan."""
    split = f'{{"fold": 0, "folds": {200 // count}, "seed": 0, "subset": "val"}}'  # count of the 200 cases
    args = ["--ckpt", best, "--config", REPO / config, "--out", out, "--device", "cpu"]
    result = segattn("evaluate", *args, "--data.val.init_args.split", split, cwd=REPO)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"({count} volumes)" in result.stdout and f"per case, mean ± std over {count} volumes" in result.stdout
    rows = list(csv.DictReader((out / "per_case.csv").open()))
    classes = ["background", "anterior", "posterior"]
    cases = [row for row in rows if row["case"] not in ("mean", "std", "count")]
    assert len(cases) == count * 3 and [row["class"] for row in cases[:3]] == classes
    assert json.loads((out / "case_summary.json").read_text())["classes"] == classes
    name = cases[0]["case"]
    scan = REPO / f"../shared/data/hippocampus/imagesTr/{name}"
    truth, _ = read_label_volume(REPO / f"../shared/data/hippocampus/labelsTr/{name}")
    labels = Segmenter.from_checkpoint(best, device="cpu").predict(scan)[0]
    for row, label in zip(cases[:3], range(3), strict=True):
        pred, true = labels == label, truth == label
        dice = 2 * (pred & true).sum() / (pred.sum() + true.sum())
        assert float(row["Dice"]) == pytest.approx(dice, abs=1e-9)
        assert float(row["HD95_mm"]) >= 0 and float(row["ASSD_mm"]) >= 0


@pytest.mark.parametrize(
    ("model_args", "intensity", "message"),
    [
        ({"widths": [4, 8]}, {"zscore": {"foreground": False}}, "the data are volumes; set it to 3"),
        ({"widths": [4, 8], "spatial_dims": 3}, None, "the data are images; set it to 2 (the default)"),
    ],
)
def test_a_network_of_the_other_dimension_is_a_one_line_error(model_args, intensity, message):
    task = SegmentationTask(["background", "a"], model_args=model_args, in_channels=1)
    task._trainer = SimpleNamespace(datamodule=SimpleNamespace(intensity=intensity))  # what fit attaches
    with pytest.raises(InputError, match=re.escape(f"model.model_args.spatial_dims: {message}")):
        task.on_fit_start()
