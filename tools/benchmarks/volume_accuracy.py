"""The `volume-accuracy` benchmark: 3-fold cross-validation on MSD Hippocampus (configs/hippocampus.yaml's
data, the 200 volumes split 3 ways), every contender trained for the same wall time (its learning-rate
schedule following the clock, TimedTask) and scored per case with the Decathlon's Dice on the
held-out fold's whole volumes."""

from __future__ import annotations

import argparse
import copy
import math
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import lightning as L
import numpy as np
import torch
import yaml
from torch import nn

from segattn.data import SegDataModule
from segattn.data.config import load_datamodule
from segattn.labels import IGNORE_INDEX
from segattn.metrics import confusion_matrix, scores
from segattn.models import build_model
from segattn.models.padding import PadToStride

from .contenders import MONAI_MISSING, load_config
from .harness import millions
from .machine import device_word, load_average
from .records import Result
from .training import BenchmarkTask, quiet_training
from .volume_report import FOLDS, SEGATTN, results_table, run_notes

SERIES = "Accuracy on volumes: 3-fold CV on Hippocampus, equal time"
QUICK = "Accuracy on volumes, --quick (a smoke test): Hippocampus, equal time"  # not the goal's series
LENGTH = "Accuracy on volumes: 3-fold CV on Hippocampus, the config's length"
CONFIG, SEED, SLICES = "hippocampus", 0, "segattn 2.5-D"
MONAI_ATTENTION, MONAI_UNET = "monai:AttentionUnet", "monai:UNet"
MONAI_MODELS = (MONAI_ATTENTION, MONAI_UNET)
MONAI_ARGS = {"channels": (16, 32, 64, 128), "strides": (2, 2, 2)}
# the recipe's neighbours, each one change away from configs/hippocampus.yaml (its model_args and data
# overridden): name → (model_args overrides, data section overrides). Variants screened for earlier
# recipes are kept in their runs' records (settings.variants) in docs/results/volume_accuracy.jsonl.
VARIANTS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    # the previous recipe: nnU-Net's plan (widths 16–128, 2 convs per decoder level, batch 9)
    "segattn 3-D, widths 16–128, 2 decoder convs, batch 9": (
        {"widths": [16, 32, 64, 128], "decoder_convs": 2},
        {"batch_size": 9},
    ),
    "segattn 3-D, widths 8–64": ({"widths": [8, 16, 32, 64]}, {}),
    "segattn 3-D, batch 4": ({}, {"batch_size": 4}),
    "segattn 3-D, patch 32×48×32": ({}, {"patch_size": [32, 48, 32]}),
    "segattn 3-D, gate finest": ({"gate_finest": True}, {}),
    "segattn 3-D, upsample transposed": ({"upsample": "transposed"}, {}),
    "segattn 3-D, scSE": ({"channel_attention": "scse"}, {}),
    # diagnostics: what each part of the recipe is worth in a short budget
    "segattn 3-D, no deep supervision": ({"deep_supervision": False}, {}),
    "segattn 3-D, gates off": ({"gates": False}, {}),
    "segattn 3-D, nnunet aug": ({}, {"augment_3d": "nnunet"}),
}
SLICE_ARGS = {"spatial_dims": 2, "widths": [32, 64, 128, 256], "norm": "instance", "deep_supervision": True}
SLICE_DATA = {"slices": {"axis": 0, "neighbours": 1}, "patch_size": [56, 40], "batch_size": 48}


class Entrant(NamedTuple):
    """A contender: a `build_model` name (or MONAI_ATTENTION / MONAI_UNET), its arguments, and its
    overrides of the config's data section."""

    name: str
    model: str
    model_args: dict[str, Any]
    data: dict[str, Any]


class VolumeRun(NamedTuple):
    """One contender on one fold: Dice (see summarise), per-class Dice, params (M), steps, seconds."""

    fold: int
    name: str
    dice: float
    classes: dict[str, float]
    params: float
    steps: int
    train_s: float
    val_s: float


class TimedTask(BenchmarkTask):
    """BenchmarkTask whose warm-up + cosine schedule (`segattn.schedule.lr_factor`, as SegmentationTask)
    runs over a wall-time budget, `budget_s`, instead of a step count, so that every network trains for
    the whole budget however its step time drifts: step counts planned from a timed sample of steps left MONAI's
    UNet 10–15 % of its budget unused (its steps ran faster than the sample). budget_s None:
    SegmentationTask's schedule."""

    budget_s: float | None = None

    def training_progress(self) -> Callable[[int], float]:
        if self.budget_s is None:
            return super().training_progress()
        start, budget = time.perf_counter(), self.budget_s
        return lambda _step: (time.perf_counter() - start) / budget


def entrants(own: dict[str, Any]) -> list[Entrant]:
    """The contenders for configs/hippocampus.yaml's model section `own`, in the table's order."""
    args = own["model_args"]
    found = [Entrant(SEGATTN, own["model"], args, {})]
    found += [Entrant(name, own["model"], {**args, **a}, d) for name, (a, d) in VARIANTS.items()]
    return [
        *found,
        Entrant("MONAI AttentionUnet", MONAI_ATTENTION, MONAI_ARGS, {}),
        Entrant("MONAI UNet", MONAI_UNET, {**MONAI_ARGS, "num_res_units": 2}, {}),
        # screening: MONAI's UNet on the larger batches screened for the recipe
        *(
            Entrant(f"MONAI UNet, batch {b}", MONAI_UNET, {**MONAI_ARGS, "num_res_units": 2}, {"batch_size": b})
            for b in (9, 4)
        ),
        Entrant(SLICES, "attention_unet", SLICE_ARGS, SLICE_DATA),
    ]


def entrant_names() -> list[str]:
    """The contenders' names."""
    return [e.name for e in entrants(load_config(CONFIG)["model"])]


def network(entrant: Entrant, classes: int, in_channels: int) -> nn.Module | None:
    """The entrant's network; MONAI's padded to their stride 8 (None when MONAI is not installed)."""
    if entrant.model not in MONAI_MODELS:
        return build_model(entrant.model, num_classes=classes, in_channels=in_channels, **entrant.model_args)
    try:  # optional: the `bench` extra
        from monai.networks import nets
    except ImportError:
        return None
    built = getattr(nets, entrant.model.removeprefix("monai:"))
    net = built(spatial_dims=3, in_channels=in_channels, out_channels=classes, **entrant.model_args)
    return PadToStride(net, 2 ** len(entrant.model_args["strides"]), spatial_dims=3)


def fold_data(config: dict[str, Any], fold: int, entrant: Entrant, workers: int | None) -> dict[str, Any]:
    """The config's data section with the entrant's overrides, fold `fold` of FOLDS as val."""
    data = {**copy.deepcopy(config["data"]), **copy.deepcopy(entrant.data)}
    for subset in ("train", "val"):
        data[subset]["init_args"]["split"] = {"fold": fold, "folds": FOLDS, "seed": SEED, "subset": subset}
    if workers is not None:
        data["num_workers"] = workers
    return data


def fold_datamodule(data: dict[str, Any], root: Path) -> SegDataModule:
    """The SegDataModule of a data section as `segattn fit` builds it (load_datamodule, its types
    checked), from root/data.yaml."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / "data.yaml"
    path.write_text(yaml.safe_dump({"data": data}))
    return load_datamodule(path)


def case_dice(pred: np.ndarray, truth: np.ndarray, classes: int) -> np.ndarray:
    """Dice of each foreground class of one case as segattn.case_metrics scores it (its confusion
    matrix and scores, without its distances; label 255 ignored): NaN for a class in neither map."""
    matrix = confusion_matrix(torch.from_numpy(pred)[None], torch.from_numpy(truth)[None], classes, IGNORE_INDEX)
    return scores(matrix, "nan")["Dice"].double().numpy()[1:]


def summarise(values: np.ndarray) -> tuple[float, list[float]]:
    """(mean over cases of each case's mean foreground Dice, each class's mean over the cases where
    it is defined) of cases × classes Dice, NaN where undefined (the Decathlon's convention)."""
    defined = ~np.isnan(values).all(axis=1)
    per_case = np.nanmean(values[defined], axis=1) if defined.any() else np.array([math.nan])
    per_class = [float(np.nanmean(c)) if (~np.isnan(c)).any() else math.nan for c in values.T]
    return float(per_case.mean()), per_class


def score(task: BenchmarkTask, data: SegDataModule, cases: int | None = None) -> tuple[float, list[float], float]:
    """(mean Dice, per-class Dice, seconds) on the val split's whole volumes (the first `cases`; None:
    all) via task.evaluation_logits."""
    start, values = time.perf_counter(), []
    task.eval()
    with torch.inference_mode():
        for i, batch in enumerate(data.val_dataloader()):
            if i == cases:
                break
            labels = task.evaluation_logits(batch["image"].to(task.device)).argmax(1).cpu()
            values.append(case_dice(labels[0].numpy(), batch["mask"][0].numpy(), len(data.classes)))
    mean, per_class = summarise(np.stack(values))
    return mean, per_class, time.perf_counter() - start


def trainer(config: dict[str, Any], steps: int, root: Path, **options: Any) -> L.Trainer:
    """A Trainer of `steps` optimiser steps: no validation, checkpoints, logger or progress bar."""
    return L.Trainer(
        accelerator=config["trainer"].get("accelerator", "auto"), devices=1,
        deterministic=config["trainer"].get("deterministic", False), max_steps=steps, max_epochs=-1,
        limit_val_batches=0, num_sanity_val_steps=0, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, default_root_dir=root, **options,
    )  # fmt: skip


def fit_and_score(
    config: dict[str, Any], fold: int, entrant: Entrant, budget: float, args: argparse.Namespace, root: Path
) -> VolumeRun | str:
    """One run: train for the budget's wall time (or the config's length), score; a note if skipped."""
    data = fold_datamodule(fold_data(config, fold, entrant, args.workers), root)
    L.seed_everything(SEED, verbose=False)
    own = {**config["model"], "classes": data.classes, "in_channels": data.in_channels}
    if entrant.model in MONAI_MODELS:
        net = network(entrant, len(data.classes), data.in_channels)
        if net is None:
            return f"{entrant.name}: skipped, {MONAI_MISSING}."
        task = TimedTask(**own)  # the config's network, replaced by MONAI's
        task.model = net
    else:
        task = TimedTask(**{**own, "model": entrant.model, "model_args": entrant.model_args})
    if args.config_length:  # the config's own epochs, no time limit: a GPU's work
        steps, limit = config["trainer"]["max_epochs"] * len(data.train_dataloader()), None
    else:  # until max_time stops it; the schedule follows the clock
        steps, limit, task.budget_s = -1, {"seconds": budget}, budget
    L.seed_everything(SEED, verbose=False)  # the same patches and augmentations for every contender
    fit = trainer(config, steps, root / "fit", max_time=limit)
    start = time.perf_counter()
    fit.fit(task, datamodule=data)
    seconds = time.perf_counter() - start
    dice, per_class, val_s = score(task, data, args.val_cases)
    per_class = dict(zip(data.classes[1:], per_class, strict=True))
    params = millions(task.model)
    return VolumeRun(fold, entrant.name, dice, per_class, params, fit.global_step, seconds, val_s)


def run(args: argparse.Namespace) -> list[Result]:
    """`volume-accuracy`: every chosen contender on every chosen fold, fold-major, one Result."""
    config = load_config(CONFIG)
    if args.lr is not None:
        config["model"]["lr"] = args.lr  # every contender's: one optimiser for all
    known = entrant_names()
    unknown = sorted(set(args.contenders or []) - set(known))
    if unknown:
        raise SystemExit(f"tools/benchmark.py volume-accuracy: --contenders: unknown {unknown}; known: {known}")
    folds = args.folds or ([0] if args.quick else list(range(FOLDS)))
    minutes = args.minutes if args.minutes is not None else (0.2 if args.quick else 3.0)
    chosen = [e for e in entrants(config["model"]) if args.contenders is None or e.name in args.contenders]
    settings = {"config": CONFIG, "folds": folds, "of_folds": FOLDS, "split_seed": SEED, "seed": SEED,
                "minutes": minutes, "lr": config["model"]["lr"], "workers": args.workers, "val_cases": args.val_cases,
                "contenders": [e.name for e in chosen], "variants": VARIANTS,
                "schedule": "warm-up + cosine over the wall-time budget (TimedTask)"}  # fmt: skip
    series = QUICK if args.quick else LENGTH if args.config_length else SERIES
    title = f"{series} on {device_word()}"
    root = config["data"]["train"]["init_args"]["root"]
    if not Path(root).is_dir():
        note = f"hippocampus: skipped, {root} not found (run from the repository root)."
        return [Result(series, title, [], [note], settings)]
    quiet_training()
    load_before, runs, notes = load_average(), [], []
    with tempfile.TemporaryDirectory() as tmp:
        for fold in folds:
            for i, entrant in enumerate(chosen):
                done = fit_and_score(config, fold, entrant, 60 * minutes, args, Path(tmp) / f"{fold}-{i}")
                if isinstance(done, str):
                    notes += [done] if done not in notes else []
                    continue
                runs.append(done)
                print(f"fold {fold}, {done.name}: {done.steps} steps in {done.train_s:.0f} s, "
                      f"mean Dice {100 * done.dice:.2f}", flush=True)  # fmt: skip
    load_after = load_average()
    classes = list(runs[0].classes) if runs else []
    length = f"configs/{CONFIG}.yaml's {config['trainer']['max_epochs']} epochs" if args.config_length else None
    budget = length or f"{minutes:g} min of training wall time"
    tables = [results_table(runs, classes, budget, folds)] if runs else []
    settings["runs"] = [r._asdict() for r in runs]  # steps, seconds
    notes += [] if args.val_cases is None else [f"Scored on the first {args.val_cases} val volumes of each fold only."]
    notes += run_notes(minutes, length, settings["lr"], load_before, load_after)
    return [Result(series, title, tables, notes, settings, (load_before, load_after))]
