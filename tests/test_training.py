"""Training behaviour through the Python API: the learning-rate schedule, and a diverged loss stops the run and
keeps the last good checkpoint."""

import math

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from segattn import SegmentationTask, Segmenter
from segattn.data import SegDataModule, SyntheticShapes
from segattn.errors import InputError, TrainingDiverged
from segattn.last_checkpoint import BestAndLastCheckpoint
from segattn.losses import CEDiceLoss
from segattn.schedule import lr_factor


class LossTurningNaN(CEDiceLoss):
    """The real loss, made NaN from its `after`-th call on: an injected fault."""

    def __init__(self, after: int) -> None:
        super().__init__()
        self.calls, self.after = 0, after

    def forward(self, logits, target):
        self.calls += 1
        loss = super().forward(logits, target)
        return loss * torch.nan if self.calls > self.after and logits.requires_grad else loss


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_last_good_checkpoint(synthetic_root, tmp_path):
    L.seed_everything(0)
    data = [SyntheticShapes(synthetic_root, split, n_train=24, n_val=8, size=64, seed=3) for split in ("train", "val")]
    datamodule = SegDataModule(*data, crop_size=64, batch_size=8)
    task = SegmentationTask(datamodule.classes, model_args={"widths": [8, 16, 32]})
    task.loss = LossTurningNaN(after=4)  # 3 steps per epoch: epoch 0 is clean, epoch 1 diverges
    trainer = L.Trainer(max_epochs=3, default_root_dir=tmp_path, logger=False, enable_progress_bar=False,
                        enable_model_summary=False)  # fmt: skip
    with pytest.raises(TrainingDiverged, match=r"loss is nan at epoch 1.*last\.ckpt.*model\.lr"):
        trainer.fit(task, datamodule)
    kept = list(tmp_path.rglob("last.ckpt"))
    assert len(kept) == 1
    (mask,) = Segmenter.from_checkpoint(kept[0], device="cpu").predict(data[1].load(0)["image"])
    assert mask.shape == (64, 64)


def test_sync_batchnorm_on_the_cpu_is_a_clear_error():
    task = SegmentationTask(["bg", "fg"], model_args={"widths": [8, 16]})
    task.on_fit_start()  # plain BatchNorm: fine
    task.model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(task.model)  # what DDP + sync_batchnorm does
    with pytest.raises(InputError, match=r"sync_batchnorm.*GPUs only.*norm: group"):
        task.on_fit_start()


@pytest.mark.parametrize(
    "model_args, gates",
    [
        ({"widths": [8, 16, 32], "deep_supervision": True, "gates_per_skip": 2}, ["gate1.0", "gate1.1"]),
        ({"widths": [8, 16, 32], "gates": False}, []),
    ],
)
def test_training_forward_returns_what_the_model_does_with_each_gates_alpha(model_args, gates):
    """The training step's one forward: logits, the gates' α (logged as train/alpha/<gate>), the
    per-scale logits when the model has deep supervision."""
    task = SegmentationTask(["bg", "fg"], model_args={**model_args, "gate_finest": False})
    x = torch.randn(2, 3, 32, 32)
    logits, maps, deep = task.forward_train(x)
    assert sorted(maps) == gates and all(a.shape == (2, 1, 16, 16) for a in maps.values())
    if model_args.get("deep_supervision"):
        expected, expected_maps, expected_deep = task.model(x, return_attention=True, return_deep=True)
        assert torch.equal(logits, expected) and len(deep) == len(expected_deep) == 2
        assert all(torch.equal(maps[name], expected_maps[name]) for name in gates)
    else:
        assert deep is None and torch.equal(logits, task.model(x))


def test_a_network_swapped_in_after_construction_trains_without_attention_maps():
    """tools/benchmark.py puts MONAI's network into a task built for segattn's: no gates to log."""
    task = SegmentationTask(["bg", "fg"], model_args={"widths": [8, 16]})
    task.model = torch.nn.Conv2d(3, 2, 3, padding=1)  # forward(x) only
    x = torch.randn(2, 3, 16, 16)
    logits, maps, deep = task.forward_train(x)
    assert maps == {} and deep is None and torch.equal(logits, task.model(x))


def test_lr_factor_warms_up_then_anneals_to_the_floor():
    warmup, floor = 0.05, 0.01
    assert lr_factor(0.0, warmup, floor) == pytest.approx(1e-3)
    assert lr_factor(warmup / 2, warmup, floor) == pytest.approx(1e-3 + (1 - 1e-3) / 2)
    assert lr_factor(warmup, warmup, floor) == pytest.approx(1.0)
    assert lr_factor(warmup + (1 - warmup) / 2, warmup, floor) == pytest.approx((1 + floor) / 2)
    assert lr_factor(1.0, warmup, floor) == lr_factor(1.7, warmup, floor) == pytest.approx(floor)  # clamped
    assert lr_factor(-0.1, warmup, floor) == pytest.approx(1e-3)
    assert lr_factor(0.0, 0.0, floor) == pytest.approx(1.0)  # no warm-up: the cosine from the peak


def quiet_trainer(steps: int, root, *callbacks: L.Callback) -> L.Trainer:
    return L.Trainer(max_steps=steps, limit_val_batches=0, logger=False, enable_progress_bar=False,
                     enable_model_summary=False, default_root_dir=root, callbacks=list(callbacks))  # fmt: skip


class LearningRates(L.Callback):
    def __init__(self) -> None:
        self.seen: list[float] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.seen.append(trainer.optimizers[0].param_groups[0]["lr"])


def test_the_step_schedule_ramps_over_the_warm_up_share_and_ends_at_the_floor(synthetic_root, tmp_path):
    """10 steps, warm-up 0.2: steps 0–1 ramp from lr/1000, step 2 is the peak, then a cosine over the
    other 8 steps towards lr · min_lr_ratio."""
    data = [SyntheticShapes(synthetic_root, split, n_train=24, n_val=8, size=64, seed=3) for split in ("train", "val")]
    datamodule, lr, floor = SegDataModule(*data, crop_size=32, batch_size=2), 0.01, 0.1
    task = SegmentationTask(datamodule.classes, model_args={"widths": [4, 8]}, lr=lr,
                            warmup_ratio=0.2, min_lr_ratio=floor)  # fmt: skip
    rates = LearningRates()
    quiet_trainer(10, tmp_path, rates).fit(task, datamodule)
    cosine = [floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * s / 8)) for s in range(8)]
    assert rates.seen == pytest.approx([lr * f for f in [1e-3, 1e-3 + (1 - 1e-3) / 2, *cosine]])


def test_a_run_saved_with_torch_s_warm_up_and_cosine_schedulers_resumes_on_its_step(synthetic_root, tmp_path):
    """Checkpoints written before the schedule was one LambdaLR hold SequentialLR(LinearLR,
    CosineAnnealingLR) states; `fit --ckpt_path` on one goes on from its step."""
    data = [SyntheticShapes(synthetic_root, split, n_train=24, n_val=8, size=64, seed=3) for split in ("train", "val")]
    datamodule = SegDataModule(*data, crop_size=32, batch_size=2)
    task = SegmentationTask(datamodule.classes, model_args={"widths": [4, 8]}, lr=0.01, warmup_ratio=0.2)
    first = quiet_trainer(4, tmp_path)
    first.fit(task, datamodule)
    optimizer = torch.optim.AdamW(task.parameters(), lr=0.01)
    ramp = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=1e-3, total_iters=2)
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=2, eta_min=0.01 * 0.01)
    old = torch.optim.lr_scheduler.SequentialLR(optimizer, [ramp, cosine], milestones=[2])
    for _ in range(4):
        optimizer.step()
        old.step()
    ckpt = first._checkpoint_connector.dump_checkpoint()
    ckpt["lr_schedulers"] = [old.state_dict()]
    torch.save(ckpt, tmp_path / "old.ckpt")
    rates = LearningRates()
    quiet_trainer(10, tmp_path / "resumed", rates).fit(task, datamodule, ckpt_path=tmp_path / "old.ckpt")
    assert rates.seen[1:] == pytest.approx([0.01 * lr_factor(s / 10, 0.2, 0.01) for s in range(5, 10)])


def test_last_ckpt_is_rewritten_at_every_epoch_even_when_the_best_does_not_improve(synthetic_root, tmp_path):
    """lr 0 and instance norm (no running statistics): val/mIoU stays that of epoch 0, so best.ckpt
    stays at epoch 0; last.ckpt follows the run."""
    data = [SyntheticShapes(synthetic_root, split, n_train=24, n_val=8, size=64, seed=3) for split in ("train", "val")]
    datamodule = SegDataModule(*data, crop_size=32, batch_size=8)
    task = SegmentationTask(datamodule.classes, model_args={"widths": [4, 8], "norm": "instance"}, lr=0.0)
    trainer = L.Trainer(max_epochs=3, default_root_dir=tmp_path, logger=False, enable_progress_bar=False,
                        enable_model_summary=False)  # fmt: skip
    trainer.fit(task, datamodule)
    saved = {p.name: torch.load(p, weights_only=True) for p in tmp_path.rglob("*.ckpt")}
    assert sorted(saved) == ["best.ckpt", "last.ckpt"]
    assert (saved["best.ckpt"]["epoch"], saved["last.ckpt"]["epoch"]) == (0, 2)
    assert saved["last.ckpt"]["global_step"] == trainer.global_step == 9
    assert trainer.checkpoint_callback.last_model_path.endswith("last.ckpt")


def test_the_checkpoint_callback_keeps_model_checkpoint_s_state_key():
    """Runs saved with a plain ModelCheckpoint resume with their best score (Lightning matches
    callback states by this key)."""
    plain = ModelCheckpoint(monitor="val/mIoU", mode="max", filename="best", save_last=True)
    assert BestAndLastCheckpoint().state_key == plain.state_key
