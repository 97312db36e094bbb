"""BestAndLastCheckpoint: best.ckpt by val/mIoU, and last.ckpt rewritten at every epoch's end."""

from __future__ import annotations

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint


class BestAndLastCheckpoint(ModelCheckpoint):
    """ModelCheckpoint(monitor="val/mIoU", mode="max", save_last=True) keeping best.ckpt (top-1)
    and last.ckpt, which it rewrites at every epoch's end (after validation, or after the training
    epoch when there is none). Lightning's own rewrites last.ckpt only in an epoch where it saved a
    top-k checkpoint: after the best epoch last.ckpt would stay there, and `fit --ckpt_path last`
    would lose every epoch since. Written on Lightning's private hooks (_should_skip_saving_checkpoint:
    sanity checks, fast_dev_run and a step already saved; _save_last_checkpoint) because no option
    does this; `trainer.checkpoint_callback.last_model_path` stays the last file, as usual."""

    def __init__(self) -> None:
        super().__init__(monitor="val/mIoU", mode="max", filename="best", save_last=True, auto_insert_metric_name=False)

    @property
    def state_key(self) -> str:
        """ModelCheckpoint's key: a run saved before this class resumes with its best score."""
        return super().state_key.replace(type(self).__qualname__, ModelCheckpoint.__qualname__, 1)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if self._should_save_on_train_epoch_end(trainer):
            self.save_last_now(trainer)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        if not self._should_save_on_train_epoch_end(trainer):
            self.save_last_now(trainer)

    def save_last_now(self, trainer: L.Trainer) -> None:
        """Writes last.ckpt unless this step is saved already (or is not one to save)."""
        if not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
