"""Cross-validated recipe search: chooses a data set config's default model recipe by k-fold
cross-validation inside its training split.

Method: the config's data.train data set (its own split applied: DRIVE's 15 images, membrane's 24,
CamVid's 367) is split into k folds (its sample keys sorted, shuffled by numpy's
default_rng(--fold-seed), np.array_split). Fold f trains on the other folds and is scored on fold f,
both read through data.train's settings with the split replaced by the fold's file list. The config's
val split is never read: it stays the held-out check of `tools/benchmark.py accuracy`. Every variant
is trained by benchmark.fit_and_score (the config's recipe: loss, AdamW, warm-up + cosine, trainer
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
benchmark.contenders(), e.g. "MONAI AttentionUnet", "smp Unet r34"), and optionally `recipe`
(merged into the config's model section, e.g. {lr: 0.003}) and `epochs` (this variant's own length
in epochs of each fold's train part, whatever the search's budget: e.g. to spend the training time
a faster network saves). See configs/tune/.
Budget: --steps N optimiser steps, or --epochs E passes over each fold's training part (default:
the config's trainer.max_epochs); crop and batch default to the config's data.crop_size and
batch_size; --val-images N scores the first N images of the held-out fold only (rounded up to whole
validation batches), for quick checks.
Output: one line per finished run, and one JSON line per run appended to --out; runs that --out
already holds (same setup) are skipped, so a stopped search resumes. --jobs J trains J runs at a
time, each in its own process (benchmark.run_jobs: on a GPU that one run leaves waiting on data);
a run scores the same either way. A search can also be split over machines with --only or
--only-folds, each part with its own --out. `summarize` merges such files into a Markdown table:
mean ± std over folds × seeds of each headline score, the paired difference (per fold and seed) of
each variant to the baseline, and who leads.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import yaml
from benchmark import (
    MONAI,
    MONAI_MISSING,
    REPO,
    BenchmarkTask,
    Contender,
    Plan,
    build_contender,
    contenders,
    distinct_seeds,
    fit_job,
    load_config,
    mean_spread,
    quiet_training,
    run_jobs,
)
from lightning.pytorch.cli import instantiate_class

from segattn import cli_types
from segattn.data import SegDataModule
from segattn.data.config import load_datamodule
from segattn.errors import InputError

ENTRY_KEYS = ("name", "model_args", "recipe", "contender", "epochs")
PROG = "tools/tune.py"


class Variant(NamedTuple):
    """One entry of a variants file: its position (0 = the baseline), network and recipe overrides,
    and its own length in epochs (None: the search's budget)."""

    index: int
    contender: Contender
    recipe: dict[str, Any]
    epochs: int | None = None


def fail(message: str) -> SystemExit:
    return SystemExit(f"{PROG}: error: {message}")


def mapping(entry: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    """entry[key] (empty if absent), which must be a mapping."""
    value = entry.get(key, {})
    if not isinstance(value, dict):
        raise fail(f"{where}: {key} must be a mapping, got {value!r}")
    return value


def read_variants(path: Path, own: dict[str, Any]) -> list[Variant]:
    """The variants of a YAML file, `own` being the config's model section."""
    entries = yaml.safe_load(path.read_text())
    if not isinstance(entries, list) or not entries:
        raise fail(f"{path}: expected a non-empty YAML list of variants")
    peers = {c.name: c for c in contenders(own)}
    variants: list[Variant] = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or "name" not in entry:
            raise fail(f"{path}: entry {index + 1} is not a mapping with a name")
        where = f"{path}: variant {entry['name']!r}"
        unknown = sorted(set(entry) - set(ENTRY_KEYS))
        if unknown:
            raise fail(f"{where}: unknown key(s) {unknown}; an entry takes {list(ENTRY_KEYS)}")
        recipe = mapping(entry, "recipe", where)
        if {"model", "model_args"} & set(recipe):
            raise fail(f"{where}: recipe may not set model or model_args (give model_args or contender)")
        model_args = mapping(entry, "model_args", where)
        if "contender" in entry:
            if model_args:
                raise fail(f"{where}: model_args apply to the config's network, not to a contender")
            if entry["contender"] not in peers:
                raise fail(f"{where}: unknown contender {entry['contender']!r}; known: {list(peers)}")
            contender = peers[entry["contender"]]._replace(name=str(entry["name"]))
        else:
            contender = Contender(str(entry["name"]), own["model"], {**own["model_args"], **model_args})
        epochs = entry.get("epochs")
        if epochs is not None and (isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1):
            raise fail(f"{where}: epochs must be a positive integer, got {epochs!r}")
        variants.append(Variant(index, contender, recipe, epochs))
    names = [v.contender.name for v in variants]
    if len(set(names)) < len(names):
        raise fail(f"{path}: variant names must be unique, got {names}")
    return variants


def check_variants(config: dict[str, Any], variants: list[Variant], classes: list[str], in_channels: int) -> None:
    """Builds every variant's task once, so that a bad model_args or recipe key, or a missing
    package, fails before any training."""
    for variant in variants:
        net = variant.contender
        own = {**config["model"], **variant.recipe, "classes": classes, "in_channels": in_channels}
        try:
            network = {} if net.model == MONAI else {"model": net.model, "model_args": net.model_args}
            BenchmarkTask(**{**own, **network})
        except (TypeError, InputError) as exc:
            raise fail(f"variant {net.name!r}: {exc}") from exc
        if net.model == MONAI and build_contender(net, len(classes), in_channels) is None:
            raise fail(f"variant {net.name!r}: {MONAI_MISSING}")


def fold_keys(train: dict[str, Any], folds: int, fold_seed: int) -> list[list[str]]:
    """The sample keys of the data.train data set (class_path + init_args) in `folds` shuffled folds."""
    keys = sorted(instantiate_class((), train).keys)
    if not 2 <= folds <= len(keys):
        raise fail(f"--folds: expected 2 to {len(keys)} (the training samples), got {folds}")
    order = np.array(keys, dtype=object)[np.random.default_rng(fold_seed).permutation(len(keys))]
    return [sorted(part.tolist()) for part in np.array_split(order, folds)]


def rest(parts: list[list[str]], fold: int) -> list[str]:
    """The keys of every fold but `fold`, sorted."""
    return sorted(key for other, part in enumerate(parts) if other != fold for key in part)


def fold_datamodule(
    config: dict[str, Any], train_keys: list[str], val_keys: list[str], args: argparse.Namespace, path: Path
) -> SegDataModule:
    """A SegDataModule training on train_keys and scoring on val_keys, both of data.train."""
    train = config["data"]["train"]

    def part(keys: list[str]) -> dict[str, Any]:
        return {**train, "init_args": {**train["init_args"], "split": {"files": keys}}}

    data = {**config["data"], "train": part(train_keys), "val": part(val_keys)}
    data.update(crop_size=args.crop, batch_size=args.batch, num_workers=args.workers)
    path.write_text(yaml.safe_dump({"data": data}))
    return load_datamodule(path)


def setup_of(args: argparse.Namespace) -> dict[str, Any]:
    """What every run of one search shares; runs of different setups do not compare."""
    keys = ("dataset", "folds", "fold_seed", "steps", "epochs", "crop", "batch", "val_images")
    return {key: getattr(args, key) for key in keys}


def done_runs(out: Path, setup: dict[str, Any]) -> set[tuple[str, int, int]]:
    """(variant, fold, seed) of the runs `out` holds; an error if it holds another setup's runs."""
    records = read_records([out]) if out.is_file() else []
    other = next((r["setup"] for r in records if r["setup"] != setup), None)
    if other is not None:
        raise fail(f"{out} holds runs of another setup ({other}); give another --out")
    return {(r["variant"], r["fold"], r["seed"]) for r in records}


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


def train_variant(
    config: dict[str, Any], variant: Variant, data_config: Path, plan: Plan, fold: int, seed: int, tmp: Path
) -> dict[str, Any]:
    """Trains and scores one variant on one fold with one seed (on the SegDataModule of
    `data_config`, the fold's data.yaml): its JSON record, less the setup."""
    net = variant.contender
    model = {**config["model"], **variant.recipe}
    run = fit_job({**config, "model": model}, data_config, net, plan, seed, tmp / f"{variant.index}-{fold}-{seed}")
    if run is None:
        raise fail(f"variant {net.name!r}: {MONAI_MISSING}")
    return {
        "variant": net.name,
        "index": variant.index,
        "model": net.model,
        "model_args": net.model_args,
        "recipe": variant.recipe,
        "fold": fold,
        "seed": seed,
        "epochs": variant.epochs,
        "steps": plan.steps,
        "scores": run.scores,
        "params": run.params,
        "seconds": run.seconds,
        "alpha": run.alpha,
    }


def run_line(dataset: str, record: dict[str, Any]) -> str:
    """One finished run, for the log."""
    scores = ", ".join(f"{key} {100 * value:.2f}" for key, value in record["scores"].items())
    run = f"{dataset}, {record['variant']}, fold {record['fold']}, seed {record['seed']}"
    alpha = ", ".join(f"{name} {value:.3f}" for name, value in record["alpha"].items())
    return f"{run}: {record['seconds']:.0f} s; {scores}" + (f"; mean α at the last step: {alpha}" if alpha else "")


def read_records(paths: Sequence[Path]) -> list[dict[str, Any]]:
    """The runs of JSONL files; an error if a (variant, fold, seed) of one setup appears twice."""
    records, seen = [], set()
    for path in paths:
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if line.strip():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise fail(f"{path}, line {number}: not a JSON record ({exc})") from exc
                key = (json.dumps(record["setup"], sort_keys=True), record["variant"], record["fold"], record["seed"])
                if key in seen:
                    raise fail(f"{path}: {key[1]!r}, fold {key[2]}, seed {key[3]} of one setup appears twice")
                seen.add(key)
                records.append(record)
    if not records:
        raise fail(f"{', '.join(map(str, paths))}: no runs recorded")
    return records


def paired(mine: list[dict], base: list[dict], key: str) -> list[float]:
    """Score differences mine − base over the (fold, seed) runs both have."""
    by_run = {(r["fold"], r["seed"]): r["scores"][key] for r in base}
    return [r["scores"][key] - by_run[r["fold"], r["seed"]] for r in mine if (r["fold"], r["seed"]) in by_run]


def setup_text(setup: dict[str, Any]) -> str:
    budget = f"{setup['steps']} steps" if setup["steps"] else f"{setup['epochs']} epochs of each fold's train part"
    n, batch = setup["val_images"], setup["batch"]
    val = "" if n is None else f", only the first {-(-n // batch) * batch} held-out images scored (whole batches)"
    return (
        f"**{setup['dataset']}**, {setup['folds']} folds of the train split (fold seed {setup['fold_seed']}): "
        f"{budget}, {setup['crop']}×{setup['crop']} crops, batch {batch}{val}"
    )


def summary(records: list[dict[str, Any]], baseline: str | None = None) -> str:
    """Markdown table (best first), the leader's margin and notes of a search's runs; Δ against
    `baseline` (default: of the variants with runs, the one first in the variants file)."""
    setups = {json.dumps(r["setup"], sort_keys=True) for r in records}
    if len(setups) != 1:
        raise fail(f"the files hold runs of {len(setups)} different setups: {sorted(setups)}")
    keys = list(records[0]["scores"])
    names = sorted({r["variant"]: r["index"] for r in records}.items(), key=lambda item: item[1])
    runs = {name: [r for r in records if r["variant"] == name] for name, _ in names}
    if baseline is not None and baseline not in runs:
        raise fail(f"--baseline: no runs of {baseline!r}; the files hold {[name for name, _ in names]}")
    if baseline is not None:
        where = "given by --baseline"
    else:
        baseline, index = names[0]
        where = "the first of the variants file with runs here" if index else "the first entry of the variants file"
    means = {name: statistics.mean(r["scores"][keys[0]] for r in mine) for name, mine in runs.items()}
    ranked = sorted(runs, key=means.__getitem__, reverse=True)
    lines = [
        setup_text(records[0]["setup"]),
        "",
        f"| variant | runs | params (M) | {' | '.join(keys)} | {' | '.join(f'Δ {key}' for key in keys)} | train s |",
        "|---|---:|---:|" + "---:|" * 2 * len(keys) + "---:|",
    ]
    for name in ranked:
        mine = runs[name]
        cells = [mean_spread([r["scores"][key] for r in mine]) for key in keys]
        cells += ["–" if name == baseline else mean_spread(paired(mine, runs[baseline], key)) for key in keys]
        seconds = statistics.mean(r["seconds"] for r in mine)
        lines.append(f"| {name} | {len(mine)} | {mine[0]['params']:.2f} | {' | '.join(cells)} | {seconds:.0f} |")
    own = {name: mine[0]["epochs"] for name, mine in runs.items() if mine[0].get("epochs")}  # older runs: no key
    if own:
        lengths = ", ".join(f"{name}: {epochs} epochs" for name, epochs in own.items())
        lines += ["", f"Trained for their own length (the variants file's `epochs`), not the budget above: {lengths}."]
    most = max(len(mine) for mine in runs.values())
    complete = [name for name in ranked if len(runs[name]) == most]  # a partial search is not ranked for the lead
    if len(complete) < len(ranked):
        lines += [
            "",
            f"Not ranked for the lead (fewer than {most} runs): {', '.join(sorted(set(ranked) - set(complete)))}.",
        ]
    if len(complete) > 1:
        first, second = complete[:2]
        margin = paired(runs[first], runs[second], keys[0])
        lines += [
            "",
            f"Leads on {keys[0]}: **{first}** ({100 * means[first]:.2f}), {100 * (means[first] - means[second]):.2f} "
            f"points over {second} ({100 * means[second]:.2f}); paired over {len(margin)} fold × seed runs: "
            f"{mean_spread(margin)}.",
        ]
    lines += [
        "",
        "Scores: mean ± sample std over folds × seeds, in %, each run scored on its held-out fold of the train split "
        "(the config's val split untouched). Δ: paired difference to the baseline "
        f"({baseline}, {where}) over the (fold, seed) runs both have, mean ± std, in "
        "points; folds differ more than variants, so judge a variant by Δ and its spread. train s: mean wall seconds "
        "of Trainer.fit.",
    ]
    return "\n".join(lines)


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
