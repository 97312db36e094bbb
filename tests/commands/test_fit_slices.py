"""`segattn fit` in 2.5-D: configs/hippocampus_slices.yaml shrunk to a two-step run on the real data
(in a training grid: reoriented to RAS, resampled), then validate and evaluate on whole volumes in
the scans' own grids, and the settings a 2.5-D run refuses."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
import torch

from segattn import checkpoint
from segattn.errors import InputError
from segattn.task import SegmentationTask

from ..conftest import REPO, needs_config_hippocampus
from .test_fit_volumes import check_evaluate_writes_the_per_case_table

CONFIG = REPO / "configs/hippocampus_slices.yaml"


@needs_config_hippocampus
def test_fit_on_slices_scores_whole_volumes_and_records_the_slices(segattn, tmp_path):
    shrink = ["--data.num_workers", 0, "--model.model_args", '{"widths": [4, 8, 16], "norm": "instance"}']
    shrink += ["--data.orientation", "RAS", "--data.spacing", "[1, 1, 1.5]"]  # a training grid, recorded
    result = segattn(
        "fit", "--config", CONFIG, "--trainer.default_root_dir", tmp_path, "--trainer.max_epochs", 1,
        "--trainer.check_val_every_n_epoch", 1, "--trainer.limit_train_batches", 2, "--trainer.limit_val_batches", 2,
        "--data.batch_size", 4, *shrink, cwd=REPO,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    (version,) = (tmp_path / "lightning_logs").iterdir()
    best = version / "checkpoints" / "best.ckpt"
    record = torch.load(best, map_location="cpu", weights_only=True)[checkpoint.RECORD_KEY]
    assert record["slices"] == {"axis": 0, "neighbours": 1} and record["in_channels"] == 3
    assert record["geometry"] == {"orientation": "RAS", "spacing": [1.0, 1.0, 1.5]}
    assert record["intensity"] == {"zscore": {"foreground": False}} and record["eval_transform"] is None
    assert [p.name for p in (version / "val_images").iterdir()] == ["epoch_000.png"]
    validated = segattn(
        "validate", "--config", CONFIG, "--trainer.default_root_dir", tmp_path, "--trainer.limit_val_batches", 2,
        "--ckpt_path", best, *shrink, cwd=REPO,
    )  # fmt: skip
    assert validated.returncode == 0 and "val/mDice" in validated.stdout, validated.stderr[-2000:]
    check_evaluate_writes_the_per_case_table(segattn, best, tmp_path / "eval", "configs/hippocampus_slices.yaml", 2)


@pytest.mark.parametrize(
    ("model_args", "slices", "message"),
    [
        ({"widths": [4, 8], "spatial_dims": 3}, {"axis": 0, "neighbours": 0}, "data.slices feeds 2-D slices; set it"),
        ({"widths": [4, 8]}, None, "the data are volumes; set it to 3, or data.slices for 2.5-D"),
    ],
)
def test_a_slice_run_needs_a_2d_network(model_args, slices, message):
    task = SegmentationTask(["background", "a"], model_args=model_args, in_channels=1)
    datamodule = SimpleNamespace(intensity={"zscore": {"foreground": False}}, slices=slices)
    task._trainer = SimpleNamespace(datamodule=datamodule)  # what fit attaches
    with pytest.raises(InputError, match=re.escape(message)):
        task.on_fit_start()
