"""Where a `segattn` run logs: TensorBoard and CSV (metrics.csv) in one version folder per run.

fit logs into <default_root_dir>/lightning_logs/version_N/ (with checkpoints/), so N counts fit
runs only; validate and test log into <default_root_dir>/<subcommand>/version_N/. A resumed fit
goes on in its own folder.
"""

from __future__ import annotations

import csv
import logging
import os
import warnings
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter

FIT_LOGS = "lightning_logs"  # Lightning's own name, which every fit run before this one used


def run_loggers(
    root: str | os.PathLike, subcommand: str, ckpt_path: str | None = None, checkpoint_step: int = 0
) -> list[Logger]:
    """The CSV and TensorBoard loggers of one run, sharing a version folder: for fit under
    <root>/lightning_logs (the version of `ckpt_path` when it lies in one: a resumed run), for the
    other subcommands under <root>/<subcommand>."""
    name = FIT_LOGS if subcommand == "fit" else subcommand
    version = resumed_version(ckpt_path, root) if subcommand == "fit" else None
    # first: it creates the version folder; a resumed run goes on in its own
    csv_logger = CSVLogger(root, name) if version is None else ResumedCSVLogger(root, version, checkpoint_step)
    return [csv_logger, TensorBoardLogger(root, name, version=csv_logger.version)]


class ResumedCSVLogger(CSVLogger):
    """A CSVLogger that goes on in an existing version folder. Lightning's deletes the folder's
    metrics.csv when it starts writing; this one keeps its rows logged before the checkpoint's
    global step (later ones, from the interrupted run, are logged again) and writes them first."""

    def __init__(self, root: str | os.PathLike, version: int, checkpoint_step: int) -> None:
        super().__init__(root, FIT_LOGS, version=version)
        metrics = Path(self.log_dir) / "metrics.csv"
        rows = list(csv.DictReader(metrics.open(newline=""))) if metrics.is_file() else []
        self.kept = [{k: v for k, v in row.items() if v != ""} for row in rows if int(row["step"]) < checkpoint_step]

    @property
    def experiment(self) -> Any:
        new = self._experiment is None
        with warnings.catch_warnings():  # its "previous log files will be deleted": not so here
            warnings.filterwarnings("ignore", message="Experiment logs directory")
            writer = super().experiment  # creating the writer deletes metrics.csv
        if new and isinstance(writer, ExperimentWriter):  # not the dummy of ranks > 0
            writer.metrics[:0] = self.kept
        return writer


def resumed_version(ckpt_path: str | None, root: str | os.PathLike) -> int | None:
    """N when ckpt_path lies in <root>/lightning_logs/version_N/checkpoints/: a run resumed from
    it logs on in that folder, where its ModelCheckpoint finds its best score so far (in a new
    folder, best.ckpt would be the best of the resumed epochs only). None: a new version."""
    if ckpt_path is None:
        return None
    run = Path(ckpt_path).resolve().parent.parent
    inside = Path(ckpt_path).parent.name == "checkpoints" and run.parent == (Path(root) / FIT_LOGS).resolve()
    number = run.name.removeprefix("version_")
    return int(number) if inside and run.name.startswith("version_") and number.isdigit() else None


def newest_last_checkpoint(root: str | os.PathLike) -> Path | None:
    """The most recently written <root>/**/checkpoints/last*.ckpt, or None."""
    found = [path for path in Path(root).glob("**/checkpoints/last*.ckpt") if path.is_file()]
    return max(found, key=lambda path: path.stat().st_mtime, default=None)


def quiet_lightning() -> None:
    """Drops Lightning's advertisements ("💡 Tip: ... litlogger / litmodels") and its LeafSpec
    deprecation notice (Lightning's own code against newer torch) from the command's output."""
    for handler in logging.getLogger("lightning.pytorch").handlers:
        handler.addFilter(lambda record: not record.getMessage().startswith("💡 Tip"))
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
