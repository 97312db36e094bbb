"""DDP training and crash recovery through the `segattn` command."""

import csv
import json

import pytest
import torch

from .test_cli import run, small_fit_args

pytestmark = pytest.mark.slow


def fit_args(root, data_dir, epochs, batch_size, n_train, log_folder, kill=None):
    """The small CLI fit of test_cli on `n_train` images and 5 val images, with group norm and CE
    only: both are per-sample, so batches split over processes train exactly like one batch."""
    args = small_fit_args(root, data_dir, epochs)
    for split in ("train", "val"):
        args[args.index(f"--data.{split}.init_args.n_train") + 1] = n_train
        args[args.index(f"--data.{split}.init_args.n_val") + 1] = 5
    args[args.index("--data.batch_size") + 1] = batch_size
    args[args.index("--model.model_args") + 1] = '{"widths": [8, 16, 32], "norm": "group"}'
    callback = {"class_path": "tests.callbacks.SampleLog", "init_args": {"folder": str(log_folder)}}
    if kill:
        callback["init_args"] |= {"kill_epoch": kill[0], "kill_batch": kill[1]}
    return [*args, "--model.dice_weight", 0, "--trainer.callbacks", json.dumps([callback])]


def seen(log_folder, rank=0):
    """[(epoch, batch, names)] in the order trained."""
    lines = (log_folder / f"rank{rank}.jsonl").read_text().splitlines()
    return [(d["epoch"], d["batch"], d["names"]) for d in map(json.loads, lines)]


def val_metrics(root):
    """{epoch: (val/mIoU, val/loss)} from the metrics.csv files of every run under root."""
    scores = {}
    for path in sorted(root.rglob("metrics.csv")):
        for row in csv.DictReader(path.open()):
            if row.get("val/mIoU"):
                scores[int(row["epoch"])] = (float(row["val/mIoU"]), float(row["val/loss"]))
    return scores


def test_two_process_ddp_fit_equals_one_process_and_sees_each_sample_once(tmp_path):
    """2 CPU processes (gloo) × batch 4 against 1 process × batch 8 on the same 32 images, and
    5 val images (3 + 2 across the processes). No augmentation: its borders are ignore pixels,
    and DDP averages each process's mean loss, which weighs two halves with unequal numbers of
    scored pixels differently from one batch."""
    data = tmp_path / "data"
    run(*fit_args(tmp_path / "one", data, 2, 8, 32, tmp_path / "seen_one"), "--data.augment", "none")
    ddp = ["--trainer.accelerator", "cpu", "--trainer.devices", 2, "--trainer.strategy", "ddp"]
    run(*fit_args(tmp_path / "two", data, 2, 4, 32, tmp_path / "seen_two"), "--data.augment", "none", *ddp)
    one, ranks = seen(tmp_path / "seen_one"), [seen(tmp_path / "seen_two", r) for r in (0, 1)]
    assert len(ranks[0]) == len(ranks[1]) == len(one) == 8  # 4 steps × 2 epochs
    for epoch in (0, 1):
        names = [n for rank in ranks for e, _, batch in rank if e == epoch for n in batch]
        assert len(names) == len(set(names)) == 32, "a sample was seen twice, or missed, in an epoch"
    for (epoch, step, batch), a, b in zip(one, *ranks, strict=True):
        assert (a[0], a[1]) == (b[0], b[1]) == (epoch, step)
        assert sorted(a[2] + b[2]) == sorted(batch)
    single, double = val_metrics(tmp_path / "one"), val_metrics(tmp_path / "two")
    assert single.keys() == double.keys() == {0, 1}
    for epoch in single:  # equal but for float rounding, which Adam carries on: 1e-4 measured
        assert single[epoch][0] == pytest.approx(double[epoch][0], abs=1e-3), (epoch, single, double)
        assert single[epoch][1] == pytest.approx(double[epoch][1], rel=1e-4), (epoch, single, double)


def test_sigkill_mid_epoch_then_resume_last_ends_like_an_uninterrupted_run(tmp_path):
    """A run killed (SIGKILL) in the middle of epoch 1 of 3, resumed with --ckpt_path last from
    the last.ckpt of epoch 0, ends with the uninterrupted run's metrics and weights."""
    data = tmp_path / "data"
    run(*fit_args(tmp_path / "whole", data, 3, 4, 32, tmp_path / "seen_whole"))
    crashed = run(*fit_args(tmp_path / "crash", data, 3, 4, 32, tmp_path / "seen_crash", kill=(1, 3)), check=False)
    assert crashed.returncode == -9, crashed.stderr[-2000:]
    assert max(epoch for epoch, _, _ in seen(tmp_path / "seen_crash")) == 1
    assert list(val_metrics(tmp_path / "crash")) == [0]
    run(*fit_args(tmp_path / "crash", data, 3, 4, 32, tmp_path / "seen_resume"), "--ckpt_path", "last")

    whole, resumed = seen(tmp_path / "seen_whole"), seen(tmp_path / "seen_resume")
    assert resumed == [step for step in whole if step[0] >= 1], "the resumed run trained on other batches"
    assert val_metrics(tmp_path / "crash") == val_metrics(tmp_path / "whole")
    # the resumed run logs on in its own folder, so best.ckpt is the best of all its epochs
    assert [p.name for p in (tmp_path / "crash/lightning_logs").iterdir()] == ["version_0"]
    best = [
        torch.load(next(root.rglob("best.ckpt")), weights_only=True)["epoch"]
        for root in (tmp_path / "whole", tmp_path / "crash")
    ]
    assert best[0] == best[1]
    weights = [
        torch.load(max(root.rglob("last.ckpt"), key=lambda p: p.stat().st_mtime), weights_only=True)["state_dict"]
        for root in (tmp_path / "whole", tmp_path / "crash")
    ]
    for name, value in weights[0].items():
        torch.testing.assert_close(weights[1][name], value, rtol=0, atol=1e-6, msg=name)
