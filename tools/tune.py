"""Cross-validated recipe search: chooses a data set config's default model recipe by k-fold
cross-validation inside its training split.

Method: the config's data.train data set (its own split applied: DRIVE's 15 images, membrane's 24,
CamVid's 367) is split into k folds (its sample keys sorted, shuffled by numpy's
default_rng(--fold-seed), np.array_split). Fold f trains on the other folds and is scored on fold f,
both read through data.train's settings with the split replaced by the fold's file list. The config's
val split is never read: it stays the held-out check of `tools/benchmark.py accuracy`. Every variant
is trained by benchmarks.training.fit_and_score (the config's recipe: loss, AdamW, warm-up + cosine, trainer
determinism) with the variant's overrides, under one budget; fit_and_score seeds everything, so for
one fold and seed every variant sees the same batches and augmentations, and a variant's difference
to the baseline can be read per (fold, seed) pair.

Usage:
    python tools/tune.py DATASET --variants FILE.yaml [--folds 3] [--fold-seed 0] [--seeds 0 1]
        [--steps N | --epochs E] [--crop C] [--batch B] [--val-images N] [--workers W]
        [--only NAME ...] [--only-folds F ...] [--out runs/tune/DATASET.jsonl] [--jobs J]
    python tools/tune.py summarize FILE.jsonl [FILE.jsonl ...] [--baseline NAME]

DATASET: configs/DATASET.yaml (run from the repository root: the configs' data paths are relative).
Variants file: a YAML list; the first entry is the baseline. Each entry takes `name` and either
`model_args` (merged into the config's model.model_args) or `contender` (a network of
benchmarks.contenders.contenders(), e.g. "MONAI AttentionUnet", "smp Unet r34"), and optionally `recipe`
(merged into the config's model section, e.g. {lr: 0.003}) and `epochs` (this variant's own length
in epochs of each fold's train part, whatever the search's budget: e.g. to spend the training time
a faster network saves). See configs/tune/.
Budget: --steps N optimiser steps, or --epochs E passes over each fold's training part (default:
the config's trainer.max_epochs); crop and batch default to the config's data.crop_size and
batch_size; --val-images N scores the first N images of the held-out fold only (rounded up to whole
validation batches), for quick checks.
Output: one line per finished run, and one JSON line per run appended to --out; runs that --out
already holds (same setup) are skipped, so a stopped search resumes. --jobs J trains J runs at a
time, each in its own process (benchmarks.training.run_jobs: on a GPU that one run leaves waiting on data);
a run scores the same either way. A search can also be split over machines with --only or
--only-folds, each part with its own --out. `summarize` merges such files into a Markdown table:
mean ± std over folds × seeds of each headline score, the paired difference (per fold and seed) of
each variant to the baseline, and who leads.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from benchmarks import REPO
from benchmarks.cli import distinct_seeds
from benchmarks.contenders import load_config
from benchmarks.training import Plan, quiet_training, run_jobs
from benchmarks.tune_summary import summary
from benchmarks.tuning import (
    PROG,
    check_variants,
    done_runs,
    fail,
    fold_datamodule,
    fold_keys,
    read_records,
    read_variants,
    rest,
    run_line,
    setup_of,
    train_variant,
)

from segattn import cli_types


def search(args: argparse.Namespace) -> None:
    """Trains and scores every selected variant on every fold and seed, appending to args.out."""
    config = load_config(args.dataset)
    args.crop = args.crop or config["data"]["crop_size"]
    args.batch = args.batch or config["data"]["batch_size"]
    args.workers = config["data"].get("num_workers", 0) if args.workers is None else args.workers
    if args.steps is None and args.epochs is None:
        args.epochs = config["trainer"]["max_epochs"]
    variants = read_variants(args.variants, config["model"])
    unknown = [name for name in args.only or [] if name not in {v.contender.name for v in variants}]
    if unknown:
        raise fail(f"--only: no variant named {unknown} in {args.variants}")
    selected = [v for v in variants if not args.only or v.contender.name in args.only]
    outside = [f for f in args.only_folds or [] if not 0 <= f < args.folds]
    if outside:
        raise fail(f"--only-folds: {outside} outside folds 0–{args.folds - 1}")
    setup = setup_of(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    done = done_runs(args.out, setup)
    parts = fold_keys(config["data"]["train"], args.folds, args.fold_seed)
    quiet_training()
    with tempfile.TemporaryDirectory() as tmp:
        data = [Path(tmp) / f"{f}.yaml" for f in range(args.folds)]
        modules = [fold_datamodule(config, rest(parts, f), parts[f], args, data[f]) for f in range(args.folds)]
        batches = [len(dm.train_dataloader()) for dm in modules]  # per epoch of each fold's train part
        plans = [Plan(args.steps or args.epochs * n, args.crop, args.batch, args.val_images) for n in batches]
        check_variants(config, selected, modules[0].classes, modules[0].in_channels)
        for f, (dm, plan) in enumerate(zip(modules, plans, strict=True)):
            sizes = f"{len(dm.datasets['train'])} train, {len(dm.datasets['val'])} held out"
            print(f"fold {f}: {sizes}; {plan.steps} steps, {plan.crop}² crops, batch {plan.batch}", flush=True)
        folds = [f for f in range(args.folds) if not args.only_folds or f in args.only_folds]
        calls = []  # train_variant's arguments of every run still to do
        for variant in selected:
            for f in folds:
                own = plans[f] if variant.epochs is None else plans[f]._replace(steps=variant.epochs * batches[f])
                todo = [seed for seed in args.seeds if (variant.contender.name, f, seed) not in done]
                calls += [(config, variant, data[f], own, f, seed, Path(tmp)) for seed in todo]
        for _, record in run_jobs(train_variant, calls, args.jobs):
            with args.out.open("a") as out:  # one write per line: parallel appends stay whole
                out.write(json.dumps({"setup": setup, **record}) + "\n")
            print(run_line(args.dataset, record), flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["summarize"]:
        parser = argparse.ArgumentParser(prog=f"{PROG} summarize", description="Markdown table of a search's runs")
        parser.add_argument("files", type=Path, nargs="+", help="JSONL files written by --out")
        parser.add_argument("--baseline", metavar="NAME", help="the variant Δ refers to (default: the first entry)")
        args = parser.parse_args(argv[1:])
        missing = [str(path) for path in args.files if not path.is_file()]
        if missing:
            parser.error(f"no such file: {', '.join(missing)}")
        print(summary(read_records(args.files), args.baseline))
        return
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("dataset", help="configs/DATASET.yaml (or `summarize FILE.jsonl ...`)")
    parser.add_argument("--variants", type=Path, required=True, help="YAML list of variants, the baseline first")
    parser.add_argument("--folds", type=cli_types.count, default=3, help="folds of the train split (default 3)")
    parser.add_argument("--fold-seed", type=int, default=0, help="seed of the fold shuffle (default 0)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="training seeds (default 0 1)")
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--steps", type=cli_types.count, help="optimiser steps per run")
    budget.add_argument(
        "--epochs", type=cli_types.count, help="epochs of each fold's train part (default: trainer.max_epochs)"
    )
    parser.add_argument("--crop", type=cli_types.count, help="training crop side (default: the config's)")
    parser.add_argument("--batch", type=cli_types.count, help="training and validation batch (default: the config's)")
    parser.add_argument(
        "--val-images", type=cli_types.count, help="score only the first N held-out images (quick checks)"
    )
    parser.add_argument("--workers", type=cli_types.non_negative, help="DataLoader workers (default: the config's)")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these variants")
    parser.add_argument("--only-folds", type=int, nargs="+", metavar="F", help="run only these folds (0-based)")
    parser.add_argument("--out", type=Path, help="JSONL file the runs go to (default runs/tune/DATASET.jsonl)")
    parser.add_argument(
        "--jobs", type=cli_types.count, default=1, help="runs at a time, each in its own process (default 1)"
    )
    args = parser.parse_args(argv)
    distinct_seeds(parser, args.seeds)
    if not args.variants.is_file():
        parser.error(f"--variants {args.variants}: no such file")
    if not (REPO / "configs" / f"{args.dataset}.yaml").is_file():
        parser.error(f"no configs/{args.dataset}.yaml")
    args.out = args.out or Path("runs") / "tune" / f"{args.dataset}.jsonl"
    search(args)


if __name__ == "__main__":
    main()
