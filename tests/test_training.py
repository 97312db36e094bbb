"""Training behaviour through the Python API: a diverged loss stops the run and keeps the last good checkpoint."""

import lightning as L
import pytest
import torch

from segattn import SegmentationTask, Segmenter
from segattn.data import SegDataModule, SyntheticShapes
from segattn.errors import InputError, TrainingDiverged
from segattn.losses import CEDiceLoss


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
