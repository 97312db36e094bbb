"""tools/tune.py's search: the variants file, the folds inside a config's training split, and one
variant trained on one fold (through training.fit_job). See tools/tune.py for the method."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import yaml
from lightning.pytorch.cli import instantiate_class

from segattn.data import SegDataModule
from segattn.data.config import load_datamodule
from segattn.errors import InputError

from .contenders import MONAI, MONAI_MISSING, Contender, build_contender, contenders
from .training import BenchmarkTask, Plan, fit_job

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
    """The error a tools/tune.py command stops with."""
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
