"""SegmentationTask: the LightningModule that trains and validates a segmentation network."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import TensorBoardLogger
from torch import Tensor
from torchmetrics import MeanMetric

from segattn import checkpoint
from segattn.data.io import write_image
from segattn.data.slices import SliceSpec
from segattn.data.transforms import serialize
from segattn.errors import InputError, TrainingDiverged
from segattn.inference.slices import SliceBySlice, slice_attention
from segattn.last_checkpoint import BestAndLastCheckpoint
from segattn.losses import CEDiceLoss, DeepSupervisionLoss
from segattn.metrics import SegMetrics
from segattn.models import build_model
from segattn.models.base import deep_supervision, returns_attention
from segattn.schedule import lr_factor
from segattn.viz import default_palette, validation_row


class SegmentationTask(L.LightningModule):
    """Model + loss + metrics + optimiser for semantic segmentation.

    Args:
        classes: class names, index = label (from the data module when run by the CLI).
        model: a `build_model` name ("attention_unet", "smp:Unet", ...).
        model_args: that model's keyword arguments (e.g. widths, gates).
        in_channels: image channels (from the data module when run by the CLI).
        lr, weight_decay: AdamW.
        warmup_ratio: share of all optimiser steps with a linear warm-up from lr/1000 to lr;
            a cosine decay to lr × min_lr_ratio follows.
        ce_weight, dice_weight: the loss, CE + soft Dice.
        ignore_index: label not scored by the loss or the metrics.
        deep_supervision_weights: for a model built with deep_supervision=True, the training loss
            is DeepSupervisionLoss over its main and per-scale outputs with these weights:
            "halving" (1, 1/2, 1/4, … finest first) or one weight per scale; validation and test
            score the main output only.
        log_images: after each validation epoch, the first this many val images are drawn as
            image | truth | prediction | each gate's attention α, to every logger: a PNG per epoch
            in <log_dir>/val_images/ and an image in TensorBoard ("val/predictions"). 0 = none.

    Logged: train/loss, train/alpha/<gate> (each gate's mean α over the batch, every logged step;
    gates start open at about 0.95), val/loss, val/mIoU, val/mDice, val/aAcc and val/IoU/<class>.
    Checkpoints: the best by val/mIoU ("best.ckpt") and the newest ("last.ckpt", rewritten every
    epoch; BestAndLastCheckpoint), each self-describing for `Segmenter`.

    Volumes (a network with model_args spatial_dims 3, a data module of volume data sets): the
    same on N×C×D×H×W batches; logged images show each volume's middle slice along D, and the
    checkpoint records the data's intensity spec instead of an evaluation transform. 2.5-D (a 2-D
    network, a data module with `slices`): training batches are slices, validation and test run
    the network over each volume's slices (`evaluation_logits`) and score the re-stacked volume,
    and the checkpoint records the slice spec too. A data module's training grid (`geometry`:
    orientation, spacing) is recorded for the Segmenter, which predicts back into each scan's grid.
    """

    def __init__(
        self,
        classes: list[str],
        model: str = "attention_unet",
        model_args: dict[str, Any] | None = None,
        in_channels: int = 3,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        warmup_ratio: float = 0.05,
        min_lr_ratio: float = 0.01,
        ce_weight: float = 1.0,
        dice_weight: float = 1.0,
        ignore_index: int = 255,
        deep_supervision_weights: str | list[float] = "halving",
        log_images: int = 4,
    ) -> None:
        super().__init__()
        if len(classes) < 2:
            raise InputError(f"classes: expected at least 2 (background included), got {classes}")
        if log_images < 0:
            raise InputError(f"log_images: expected 0 or more, got {log_images}")
        if not 0 <= warmup_ratio < 1:
            raise InputError(f"warmup_ratio: expected a value in [0, 1), got {warmup_ratio}")
        self.save_hyperparameters()
        self.classes = list(classes)
        self.model_name = model
        self.model_args = dict(model_args or {})
        self.model = build_model(model, num_classes=len(classes), in_channels=in_channels, **self.model_args)
        self.log_images = log_images
        self.loss = CEDiceLoss(ce_weight, dice_weight, ignore_index)
        self.deep_loss = DeepSupervisionLoss(self.loss, deep_supervision_weights)
        self.val_metrics = SegMetrics(len(classes), ignore_index)
        self.test_metrics = SegMetrics(len(classes), ignore_index)
        # Lightning's own epoch mean of a logged tensor divides the summed batch sizes by the
        # world size in integer arithmetic (wrong when processes hold unequal counts): torchmetrics'
        # MeanMetric syncs float sums instead.
        self.val_loss = MeanMetric()
        self.test_loss = MeanMetric()

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)

    @property
    def returns_attention(self) -> bool:
        """Whether the network declares attention maps (asked each time: the model may be swapped)."""
        return returns_attention(self.model)

    def on_fit_start(self) -> None:
        # `_trainer`: None when called unattached, where `trainer` raises
        volumes = getattr(getattr(self._trainer, "datamodule", None), "intensity", None) is not None
        if volumes != (self.model_args.get("spatial_dims", 2) == 3) and self.slices is None:
            data, needed = ("volumes", "3, or data.slices for 2.5-D") if volumes else ("images", "2 (the default)")
            raise InputError(f"model.model_args.spatial_dims: the data are {data}; set it to {needed}")
        if self.slices is not None and self.model_args.get("spatial_dims", 2) != 2:
            raise InputError("model.model_args.spatial_dims: data.slices feeds 2-D slices; set it to 2 (the default)")
        if volumes and self.slices is None:  # 3-D convolutions run faster channels-last (oneDNN, cuDNN)
            self.model.to(memory_format=torch.channels_last_3d)
        # Lightning converts BatchNorm for trainer.sync_batchnorm under DDP; PyTorch's
        # SyncBatchNorm then fails on the CPU at the first batch with a bare traceback.
        if self.device.type == "cpu" and any(isinstance(m, torch.nn.SyncBatchNorm) for m in self.modules()):
            raise InputError(
                "trainer.sync_batchnorm: PyTorch's SyncBatchNorm runs on GPUs only; on the CPU leave it off, "
                "or use model_args norm: group, which does not depend on the batch"
            )

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        image = batch["image"]
        if image.ndim == 5:  # volumes: as the network's weights (on_fit_start)
            image = image.contiguous(memory_format=torch.channels_last_3d)
        logits, maps, deep = self.forward_train(image)
        if deep is None:
            loss = self.loss(logits, batch["mask"])
        else:
            loss = self.deep_loss(logits, deep, batch["mask"])
        if not torch.isfinite(loss):  # one host sync per step: a diverged run must not go on silently
            self.stop_diverged(loss, batch)
        size = len(batch["image"])
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=size)
        # Whether the gates have left their open start (α ≈ 0.95) is the first thing to read about them.
        for name, alpha in maps.items():
            self.log(f"train/alpha/{name}", alpha.detach().mean(), on_step=True, on_epoch=False, batch_size=size)
        return loss

    def forward_train(self, image: Tensor) -> tuple[Tensor, dict[str, Tensor], list[Tensor] | None]:
        """(logits N×K×H×W, {gate name: α N×1×h×w} or {} for a model without gates, the per-scale
        logits of a deep-supervision model or None)."""
        attention, deep = self.returns_attention, deep_supervision(self.model)
        options = {"return_attention": attention, "return_deep": deep}
        outputs = self.model(image, **{key: True for key, wanted in options.items() if wanted})
        if not (attention or deep):
            return outputs, {}, None
        maps = outputs[1] if attention else {}
        return outputs[0], maps, outputs[-1] if deep else None

    def stop_diverged(self, loss: Tensor, batch: dict[str, Any]) -> None:
        """Raises TrainingDiverged naming the step, the batch and the checkpoint that is kept."""
        callback = getattr(self.trainer, "checkpoint_callback", None)
        kept = getattr(callback, "last_model_path", "") or getattr(callback, "best_model_path", "")
        raise TrainingDiverged(
            f"the training loss is {float(loss.detach())} at epoch {self.current_epoch}, step {self.global_step} "
            f"(batch {list(batch['name'])[:4]}); stopped. Last good checkpoint: {kept or 'none yet'}. "
            "Lower model.lr or check these images and masks."
        )

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        show = batch_idx == 0 and self.log_images > 0 and bool(self.loggers) and self.trainer.is_global_zero
        show = show and not self.trainer.sanity_checking
        if show and self.returns_attention:
            logits, maps = self.evaluation_attention(batch["image"])
        else:
            logits, maps = self.evaluation_logits(batch["image"]), {}
        self.score(batch, logits, "val", self.val_metrics, self.val_loss)
        if show:
            self.log_val_images(batch, logits, maps)

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self.score(batch, self.evaluation_logits(batch["image"]), "test", self.test_metrics, self.test_loss)

    @property
    def slices(self) -> SliceSpec | None:
        """The data module's 2.5-D spec (`segattn.data.slices`), or None."""
        return getattr(getattr(self._trainer, "datamodule", None), "slices", None)

    def evaluation_logits(self, image: Tensor) -> Tensor:
        """Logits N×K×H×W (N×K×D×H×W) of whole evaluation inputs N×C×H×W (N×C×D×H×W), as
        validation and test score them; 2.5-D: the 2-D network over the volumes' slices, a
        training batch of slices at a time."""
        if self.slices is None:
            return self.model(image)
        return SliceBySlice(self.slices, self.trainer.datamodule.batch_size)(self.model, image)

    def evaluation_attention(self, image: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """`evaluation_logits` and each gate's α ({name: N×1×h×w}, on its grid; 2.5-D: N×1×D×H×W)."""
        if self.slices is None:
            return self.model(image, return_attention=True)
        network = functools.partial(self.model, return_attention=True)
        return slice_attention(network, image, self.slices, self.trainer.datamodule.batch_size)

    def score(
        self, batch: dict[str, Any], logits: Tensor, stage: str, metrics: SegMetrics, mean_loss: MeanMetric
    ) -> None:
        """Updates the metrics; the logged loss is the mean over images across processes."""
        mean_loss.update(self.loss(logits, batch["mask"]), weight=len(batch["image"]))
        self.log(f"{stage}/loss", mean_loss, on_epoch=True)
        metrics.update(logits, batch["mask"])

    def log_val_images(self, batch: dict[str, Any], logits: Tensor, maps: dict[str, Tensor]) -> None:
        """Draws the first `log_images` images of the batch (see the class docstring)."""
        count = min(self.log_images, len(batch["image"]))
        palette = default_palette(len(self.classes))
        truth, pred = batch["mask"][:count].cpu().numpy(), logits[:count].argmax(1).cpu().numpy()
        rows = []
        for i in range(count):
            image = batch["image"][i].float().cpu().numpy()
            alphas = {name: a[i, 0].float().cpu().numpy() for name, a in maps.items()}
            label, predicted = truth[i], pred[i]
            if image.ndim == 4:  # a volume: its own middle slice along D, each map's slice nearest it
                middle = batch["size"][i][0] // 2
                image, label, predicted = image[:, middle], label[middle], predicted[middle]
                alphas = {name: a[middle * a.shape[0] // truth.shape[1]] for name, a in alphas.items()}
            rows.append(validation_row(image.transpose(1, 2, 0), label, predicted, alphas, palette))
        picture = np.concatenate(rows, axis=0)
        for logger in self.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_image("val/predictions", picture, self.global_step, dataformats="HWC")
        # The first logger's folder: Trainer.log_dir would broadcast, and only rank 0 is here.
        folder = Path(getattr(self.loggers[0], "log_dir", None) or self.trainer.default_root_dir) / "val_images"
        folder.mkdir(parents=True, exist_ok=True)
        write_image(folder / f"epoch_{self.current_epoch:03d}.png", picture)

    def on_validation_epoch_end(self) -> None:
        self.log_scores("val", self.val_metrics)

    def on_test_epoch_end(self) -> None:
        self.log_scores("test", self.test_metrics)

    def log_scores(self, stage: str, metrics: SegMetrics) -> None:
        result = metrics.compute()  # summed across processes by torchmetrics
        values = {f"{stage}/aAcc": result["aAcc"], f"{stage}/mDice": result["mDice"]}
        values.update({f"{stage}/IoU/{name}": iou for name, iou in zip(self.classes, result["IoU"], strict=True)})
        # The values are global already (synced states); sync_dist only averages equal numbers.
        self.log_dict({k: v.float() for k, v in values.items()}, prog_bar=False, sync_dist=True)
        self.log(f"{stage}/mIoU", result["mIoU"].float(), prog_bar=True, sync_dist=True)
        metrics.reset()

    def configure_optimizers(self) -> dict[str, Any]:
        hp = self.hparams
        optimizer = torch.optim.AdamW(self.parameters(), lr=hp.lr, weight_decay=hp.weight_decay)
        progress = self.training_progress()

        def factor(step: int) -> float:
            return lr_factor(progress(step), hp.warmup_ratio, hp.min_lr_ratio)

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def training_progress(self) -> Callable[[int], float]:
        """The share of training done after `step` optimiser steps, which the schedule follows:
        step / the trainer's estimated stepping batches."""
        total = max(int(self.trainer.estimated_stepping_batches), 1)
        return lambda step: step / total

    def on_load_checkpoint(self, ckpt: dict[str, Any]) -> None:
        """A run saved before the schedule was one LambdaLR resumes on the same step: its torch
        LinearLR + CosineAnnealingLR state becomes a LambdaLR state at that step."""
        for i, state in enumerate(ckpt.get("lr_schedulers", [])):
            if "lr_lambdas" not in state:
                count = len(state["_last_lr"])
                ckpt["lr_schedulers"][i] = {"last_epoch": state["last_epoch"], "_last_lr": state["_last_lr"],
                                            "lr_lambdas": [None] * count}  # fmt: skip

    def configure_callbacks(self) -> list[Callback]:
        return [BestAndLastCheckpoint()]

    def on_save_checkpoint(self, ckpt: dict[str, Any]) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        eval_transform = getattr(datamodule, "eval_transform", None)
        intensity = getattr(datamodule, "intensity", None)  # volumes: normalised by it, no transform
        if eval_transform is None and intensity is None:
            raise InputError(
                "checkpoint: the evaluation transform is unknown; train with a SegDataModule "
                "(or a data module with an `eval_transform` Albumentations pipeline)"
            )
        ckpt[checkpoint.RECORD_KEY] = checkpoint.make_record(
            self.model_name,
            self.model_args,
            self.hparams.in_channels,
            self.classes,
            default_palette(len(self.classes)),
            None if intensity is not None else serialize(eval_transform),
            intensity=intensity,
            slices=self.slices,
            geometry=getattr(datamodule, "geometry", None),
        )
        ckpt["hyper_parameters"] = dict(ckpt.get("hyper_parameters", {}))  # plain dict: weights_only-safe
