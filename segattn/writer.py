"""`segattn predict`'s output: each predicted label map written as a palette PNG."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import BasePredictionWriter
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor

from segattn.data.io import write_label_map
from segattn.errors import InputError
from segattn.viz import default_palette


class LabelMapWriter(BasePredictionWriter):
    """Writes every label map of `Trainer.predict` to <output_dir>/<image name>.png, a palette PNG
    whose pixel values are the class indices (as `segattn infer` writes them), at the size the
    evaluation transform gives the image (its own, unless that transform resizes). output_dir
    None: <the run's log folder>/predictions, which `segattn predict` makes
    <default_root_dir>/predict/version_N/predictions (segattn.runlogs). Lightning has no such
    writer (its BasePredictionWriter leaves the writing to a subclass), hence this one."""

    def __init__(self, output_dir: str | Path | None = None) -> None:
        super().__init__(write_interval="batch")
        self.output_dir = None if output_dir is None else Path(output_dir)
        self.written = 0

    def folder(self, trainer: pl.Trainer) -> Path:
        return self.output_dir or Path(trainer.log_dir or trainer.default_root_dir) / "predictions"

    def write_on_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        prediction: Sequence[Tensor],
        batch_indices: Sequence[int] | None,
        batch: dict[str, Any],
        batch_idx: int,
        dataloader_idx: int,
    ) -> None:
        palette = default_palette(len(pl_module.classes))
        for name, labels in zip(batch["name"], prediction, strict=True):
            if labels.ndim != 2:  # a volume's labels need its scan's grid (affine), which batches do not carry
                raise InputError(f"predict: writes label maps of images only, and {name} is a volume")
            path = self.folder(trainer) / output_name(name)
            path.parent.mkdir(parents=True, exist_ok=True)
            write_label_map(path, labels.cpu().numpy(), palette)
            self.written += 1

    def on_predict_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        rank_zero_info(f"wrote {self.written} label maps to {self.folder(trainer)}")


def output_name(name: str) -> Path:
    """<name>.png, relative: a COCO file_name's folders are kept, an absolute or escaping one is cut
    to its file name."""
    path = Path(name)
    if path.is_absolute() or ".." in path.parts:
        path = Path(path.name)
    return path.with_suffix(".png")
