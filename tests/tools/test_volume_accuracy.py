"""tools/benchmark.py volume-accuracy: the contenders it knows, its scoring against plain numpy, the
goal read from its table, and one tiny real run on MSD Hippocampus (a few seconds per network)."""

import math
from importlib.util import find_spec

import benchmark
import numpy as np
import pytest
import torch
from benchmarks import volume_accuracy as va
from benchmarks.goals import GOALS, evaluate, goal_rows
from benchmarks.records import read
from torch import nn

from segattn.case_metrics import case_metrics
from segattn.models.padding import PadToStride

from ..conftest import REPO, needs_config_hippocampus

OURS = "segattn 3-D"  # configs/hippocampus.yaml's recipe, the goal's row
needs_monai = pytest.mark.skipif(find_spec("monai") is None, reason="MONAI is not installed (the bench extra)")


@pytest.fixture(autouse=True)
def from_the_repository(monkeypatch):
    """Run from the repository root (configs/hippocampus.yaml's data path is relative)."""
    monkeypatch.chdir(REPO)


def test_the_contenders_are_the_config_its_variants_monai_and_the_slices():
    names = va.entrant_names()
    assert names[0] == "segattn 3-D" and names[1 : 1 + len(va.VARIANTS)] == list(va.VARIANTS)
    monai = ["MONAI AttentionUnet", "MONAI UNet", "MONAI UNet, batch 9", "MONAI UNet, batch 4"]
    assert names[-5:] == [*monai, "segattn 2.5-D"]
    nnunet = next(e for e in va.entrants(va.load_config("hippocampus")["model"]) if "nnunet" in e.name)
    assert nnunet.data == {"augment_3d": "nnunet"} and nnunet.model_args["spatial_dims"] == 3  # the config's kept
    previous = next(e for e in va.entrants(va.load_config("hippocampus")["model"]) if "batch 9" in e.name)
    assert previous.model_args["widths"] == [16, 32, 64, 128] and previous.model_args["decoder_convs"] == 2


def test_unknown_contenders_are_refused_with_the_known_names():
    with pytest.raises(SystemExit, match=r"unknown \['nope'\]; known: \['segattn 3-D'"):
        benchmark.main(["volume-accuracy", "--contenders", "nope", "--quick"])
    with pytest.raises(SystemExit):  # argparse: folds are 0, 1, 2
        benchmark.main(["volume-accuracy", "--folds", "3"])


def test_each_fold_is_a_third_of_the_volumes_and_the_entrant_overrides_the_data():
    config = va.load_config("hippocampus")
    entrant = va.Entrant("x", "attention_unet", {}, {"batch_size": 2, "augment_3d": "none"})
    data = va.fold_data(config, 2, entrant, 0)
    assert data["train"]["init_args"]["split"] == {"fold": 2, "folds": 3, "seed": 0, "subset": "train"}
    assert data["val"]["init_args"]["split"]["subset"] == "val" and data["num_workers"] == 0
    assert data["batch_size"] == 2 and data["augment_3d"] == "none" and data["patch_size"] == [40, 56, 40]
    assert config["data"]["train"]["init_args"]["split"]["folds"] == 5  # the config itself untouched


def test_a_case_s_dice_is_numpy_s_and_case_metrics_and_an_absent_class_is_left_out():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 3, (4, 5, 6))
    pred = np.where(rng.random(truth.shape) < 0.3, rng.integers(0, 3, truth.shape), truth)
    truth[0, 0, :2] = 255  # ignored
    found = va.case_dice(pred, truth, 4)  # class 3: in neither map
    scored = truth != 255
    for k in (1, 2):
        p, t = (pred == k) & scored, (truth == k) & scored
        assert found[k - 1] == pytest.approx(2 * (p & t).sum() / (p.sum() + t.sum()))
    assert math.isnan(found[2])
    table = case_metrics([("a", pred, truth, None)], 4)
    np.testing.assert_allclose(found, table.values[0, 0], equal_nan=True)
    values = np.array([[0.5, 0.7], [np.nan, 0.2], [np.nan, np.nan]])  # case 3 has neither class anywhere
    mean, per_class = va.summarise(values)
    assert mean == pytest.approx((0.6 + 0.2) / 2) and per_class == pytest.approx([0.5, 0.45])


def test_pad_to_stride_pads_and_crops_every_axis_of_a_volume():
    net = nn.Sequential(nn.MaxPool3d(8), nn.Upsample(scale_factor=8))  # needs sides divisible by 8
    padded = PadToStride(net, 8, spatial_dims=3)
    x = torch.randn(1, 2, 35, 51, 17)
    assert net(x).shape != x.shape and padded(x).shape == x.shape and padded.spatial_dims == 3


@needs_monai
def test_monai_s_networks_take_a_hippocampus_sized_volume():
    """AttentionUnet and UNet, channels 16–128 and strides 2: a 35×51×35 volume padded to 40×56×40, cropped back."""
    found = {e.name: e for e in va.entrants(va.load_config("hippocampus")["model"])}
    for name in ("MONAI AttentionUnet", "MONAI UNet"):
        net = va.network(found[name], 3, 1).eval()
        with torch.inference_mode():
            assert net(torch.randn(1, 1, 35, 51, 35)).shape == (1, 3, 35, 51, 35), name


def run(name, dice, seconds, fold=0):
    return va.VolumeRun(fold, name, dice, {"anterior": dice, "posterior": dice}, 1.0, 10, seconds, 1.0)


def test_the_goal_reads_segattn_3d_against_the_best_monai_row_and_its_time():
    goal = next(g for g in GOALS if g.benchmark == "volume_accuracy")
    runs = [run(OURS, d, 180, f) for f, d in enumerate([0.80, 0.82])]
    runs += [run("MONAI UNet", d, 181, f) for f, d in enumerate([0.78, 0.80])]
    runs += [run("MONAI AttentionUnet", 0.5, 170), run("segattn 2.5-D", 0.9, 200)]
    found = va.results_table(runs, ["anterior", "posterior"], "3 min of training wall time", [0, 1])
    assert found["columns"] == [
        "network", "params (M)", "mean Dice", "anterior Dice", "posterior Dice", "steps", "train s", "val s"
    ]  # fmt: skip
    assert found["rows"][0][2] == "81.00 ± 1.41" and "Leads on mean Dice: **segattn 2.5-D** (90.00)" in found["after"]
    assert f"{OURS} (81.00, 180 s), beats the best MONAI contender, MONAI UNet (79.00, 181 s)" in found["after"]
    text, met = evaluate(goal, {"tables": [found]})
    assert met and text.startswith(f"+2.00 points: {OURS} 81.00, MONAI UNet 79.00")


@needs_config_hippocampus
def test_a_tiny_run_scores_in_the_unit_interval_and_renders(tmp_path, monkeypatch, capsys):
    """One fold, a tiny segattn 3-D variant, a tiny 2.5-D one (and MONAI's UNet where installed) for
    2 s each at batch 2; the record renders."""
    monkeypatch.setattr(va, "VARIANTS", {"tiny": ({"widths": [4, 8]}, {"batch_size": 2})})
    monkeypatch.setattr(va, "SLICE_ARGS", {**va.SLICE_ARGS, "widths": [4, 8]})
    monkeypatch.setattr(va, "SLICE_DATA", {**va.SLICE_DATA, "batch_size": 2})
    monkeypatch.setattr(va, "MONAI_ARGS", {"channels": (4, 8), "strides": (2,)})
    monkeypatch.setattr(benchmark, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(benchmark, "DOC", tmp_path / "benchmarks.md")
    names = ["tiny", "segattn 2.5-D", *(["MONAI UNet"] if find_spec("monai") else [])]
    benchmark.main(
        [
            "volume-accuracy",
            "--quick",
            "--minutes",
            "0.03",
            "--workers",
            "0",
            "--val-cases",
            "6",
            "--lr",
            "0.002",
            "--write",
            "--contenders",
            *names,
        ]
    )
    printed = capsys.readouterr().out
    assert "fold 0, tiny: " in printed
    [record] = read(tmp_path / "results" / "volume_accuracy.jsonl")
    [found] = record["tables"]
    assert found["columns"][2:5] == ["mean Dice", "anterior Dice", "posterior Dice"]
    assert [row[0] for row in found["rows"]][:1] == ["tiny"]
    for done in record["settings"]["runs"]:
        assert 0 <= done["dice"] <= 1 and all(0 <= v <= 1 for v in done["classes"].values())
        assert done["steps"] >= 1 and done["train_s"] >= 0.03 * 60  # the budget used to its end
    assert "fold 0, segattn 2.5-D: " in printed
    assert record["title"] in (tmp_path / "benchmarks.md").read_text()
    assert record["settings"]["lr"] == 0.002 and any("AdamW at lr 0.002" in note for note in record["notes"])
    goal = [g for g in GOALS if g.benchmark == "volume_accuracy"]
    assert record["series"] == va.QUICK  # a smoke test: never the goal's figure
    assert goal_rows(goal, {"volume_accuracy": [record]})[0][-1] == "no figure"


def test_the_gpu_goal_reads_the_config_length_series_and_names_its_command():
    goal = next(g for g in GOALS if g.measure == "above" and g.benchmark == "volume_accuracy")
    runs = [run("segattn 3-D", d, 900, f) for f, d in enumerate([0.90, 0.89])]
    found = va.results_table(runs, ["anterior", "posterior"], "configs/hippocampus.yaml's 100 epochs", [0, 1])
    assert evaluate(goal, {"tables": [found]}) == ("89.5 % (segattn 3-D)", True)
    record = {"series": va.LENGTH, "tables": [found], "command": goal.command, "machine": {}, "when": "2026-12-05"}
    assert goal_rows([goal], {"volume_accuracy": [record]})[0][-1] == "**met**"
    (missing,) = goal_rows([goal], {})
    assert missing[-1] == "no figure" and f"`{goal.command} --write`" in missing[1]


def test_the_wall_time_schedule_follows_the_clock():
    """TimedTask's schedule is lr_factor over the share of its budget passed."""
    task = va.TimedTask(["bg", "fg"], model_args={"widths": [4, 8]}, lr=0.01)
    task.budget_s = 60.0
    found = task.configure_optimizers()
    scheduler = found["lr_scheduler"]["scheduler"]
    assert found["lr_scheduler"]["interval"] == "step"
    assert 0.01 * 1e-3 <= scheduler.get_last_lr()[0] < 0.01 * 0.1  # the clock has just started: warming up
