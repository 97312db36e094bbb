"""The training runner of the `accuracy` benchmark and of tools/tune.py: a contender trained under
one budget (Plan) with a config's recipe and scored on a val split (Run), runs `jobs` at a time."""

from __future__ import annotations

import logging
import multiprocessing
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import lightning as L
import torch
import yaml
from lightning.pytorch.callbacks import Callback

from segattn.data import SegDataModule
from segattn.data.config import load_datamodule
from segattn.runlogs import quiet_lightning
from segattn.task import SegmentationTask

from .contenders import MONAI, MONAI_MISSING, Contender, build_contender, load_config
from .harness import millions


class Plan(NamedTuple):
    """One data set's training budget, the same for every contender."""

    steps: int
    crop: int
    batch: int
    val_images: int | None = None  # score the first N val images; None: all
    workers: int | None = None  # DataLoader workers; None: the config's data.num_workers


class Run(NamedTuple):
    """One trained contender: headline val scores (fractions), parameters (M), training seconds,
    each segattn gate's mean α at the last training step ({} for networks without gates)."""

    contender: str
    seed: int
    scores: dict[str, float]
    params: float
    seconds: float
    alpha: dict[str, float]


class BenchmarkTask(SegmentationTask):
    """SegmentationTask without its checkpoint callback: the benchmarks score the trained network in memory."""

    def configure_callbacks(self) -> list[Callback]:
        return []


def headline_scores(logged: dict[str, float], classes: list[str]) -> dict[str, float]:
    """Two classes: the foreground's Dice (= 2·IoU / (1 + IoU), exactly) and mIoU; more: mIoU and aAcc."""
    if len(classes) == 2:
        iou = logged[f"val/IoU/{classes[1]}"]
        return {f"{classes[1]} Dice": 2 * iou / (1 + iou), "mIoU": logged["val/mIoU"]}
    return {"mIoU": logged["val/mIoU"], "aAcc": logged["val/aAcc"]}


def bench_data_config(config: dict[str, Any], plan: Plan, tmp: Path) -> Path:
    """tmp/data.yaml: the config's data section at the plan's crop, batch and workers."""
    data = {**config["data"], "crop_size": plan.crop, "batch_size": plan.batch}
    if plan.workers is not None:
        data["num_workers"] = plan.workers
    path = tmp / "data.yaml"
    path.write_text(yaml.safe_dump({"data": data}))
    return path


def bench_datamodule(config: dict[str, Any], plan: Plan, tmp: Path) -> SegDataModule:
    """The SegDataModule of the config's data section at the plan's crop and batch."""
    return load_datamodule(bench_data_config(config, plan, tmp))


def fit_and_score(
    config: dict[str, Any], datamodule: SegDataModule, contender: Contender, plan: Plan, seed: int, root: Path
) -> Run | None:
    """Trains the contender for plan.steps optimiser steps with the config's recipe (its model section
    but the network: loss, AdamW, warm-up + cosine; its trainer's determinism) and scores it on the
    val split by Trainer.validate (SegMetrics); None when its package is missing."""
    own = {**config["model"], "classes": datamodule.classes, "in_channels": datamodule.in_channels}
    L.seed_everything(seed, verbose=False)
    if contender.model == MONAI:
        net = build_contender(contender, len(datamodule.classes), datamodule.in_channels)
        if net is None:
            return None
        task = BenchmarkTask(**own)  # builds the config's network, replaced by MONAI's
        task.model = net
    else:
        task = BenchmarkTask(**{**own, "model": contender.model, "model_args": contender.model_args})
    L.seed_everything(seed, verbose=False)  # the same batches and augmentations for every contender
    trainer = L.Trainer(
        accelerator=config["trainer"].get("accelerator", "auto"),
        devices=1,
        deterministic=config["trainer"].get("deterministic", False),
        max_steps=plan.steps,
        max_epochs=-1,
        check_val_every_n_epoch=plan.steps + 1,  # no validation while fitting
        num_sanity_val_steps=0,
        limit_val_batches=1.0 if plan.val_images is None else -(-plan.val_images // datamodule.val_batch_size),
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=root,
    )
    start = time.perf_counter()
    trainer.fit(task, datamodule=datamodule)
    seconds = time.perf_counter() - start
    prefix = "train/alpha/"
    alpha = {k.removeprefix(prefix): float(v) for k, v in trainer.callback_metrics.items() if k.startswith(prefix)}
    results = trainer.validate(task, datamodule=datamodule, verbose=False)[0]
    logged = {key: float(value) for key, value in results.items()}
    return Run(contender.name, seed, headline_scores(logged, datamodule.classes), millions(task.model), seconds, alpha)


def fit_job(
    config: dict[str, Any], data_config: Path, contender: Contender, plan: Plan, seed: int, root: Path
) -> Run | None:
    """fit_and_score on the SegDataModule of `data_config` (a data.yaml), built here so that the
    run can be one of `run_jobs`' processes."""
    return fit_and_score(config, load_datamodule(data_config), contender, plan, seed, root)


Result = TypeVar("Result")


def quiet_training() -> None:
    """Once per process that trains: Lightning's tips, notices and per-run INFO lines off."""
    quiet_lightning()
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)


def start_job(jobs: int) -> None:
    """Starts each of `jobs` processes running at a time: quiet, with an equal share of the CPU threads."""
    quiet_training()
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // jobs))


def run_jobs(call: Callable[..., Result], calls: list[tuple], jobs: int = 1) -> Iterator[tuple[int, Result]]:
    """(i, call(*calls[i])) for every i, as each finishes: one after another in this process
    (jobs 1), or in `jobs` processes at a time, each with an equal share of the CPU threads.

    For a GPU that one training run leaves idle while it waits on its data (small networks,
    CPU-bound augmentation): the runs share it. Processes are spawned, not forked, since CUDA
    cannot be used in a forked child; `call` and its arguments must pickle. Every run is seeded
    on its own (fit_and_score), so a run scores the same alone or beside others."""
    if jobs == 1:
        for i, args in enumerate(calls):
            yield i, call(*args)
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(jobs, mp_context=context, initializer=start_job, initargs=(jobs,)) as pool:
        futures = {pool.submit(call, *args): i for i, args in enumerate(calls)}
        try:
            for future in as_completed(futures):
                yield futures[future], future.result()
        except BaseException:
            pool.shutdown(cancel_futures=True)  # a failed run: the runs not yet started are dropped
            raise


def train_contenders(
    name: str, candidates: list[Contender], plan: Plan, seeds: list[int], jobs: int = 1
) -> tuple[list[Run], list[str]]:
    """Runs of every contender and seed on configs/<name>.yaml's data (in that order), each printed
    as it finishes, `jobs` at a time (see run_jobs), and a note for each contender skipped."""
    config = load_config(name)
    pairs = [(contender, seed) for contender in candidates for seed in seeds]
    finished: dict[int, Run | None] = {}
    quiet_training()
    with tempfile.TemporaryDirectory() as tmp:
        data = bench_data_config(config, plan, Path(tmp))
        calls = [(config, data, c, plan, seed, Path(tmp) / f"run{i}") for i, (c, seed) in enumerate(pairs)]
        for i, run in run_jobs(fit_job, calls, jobs):
            finished[i] = run
            if run is not None:
                scores = ", ".join(f"{key} {100 * value:.2f}" for key, value in run.scores.items())
                print(f"  {name}, {run.contender}, seed {run.seed}: {run.seconds:.0f} s training; {scores}", flush=True)
    runs = [finished[i] for i in range(len(pairs)) if finished[i] is not None]
    skipped = dict.fromkeys(c.name for i, (c, _) in enumerate(pairs) if finished[i] is None)
    return runs, [f"{contender}: skipped, {MONAI_MISSING}." for contender in skipped]


def mean_spread(values: list[float]) -> str:
    """Mean (± sample standard deviation over ≥ 2 values) in percent."""
    spread = f" ± {100 * statistics.stdev(values):.2f}" if len(values) > 1 else ""
    return f"{100 * statistics.mean(values):.2f}{spread}"
