"""The `accuracy` benchmark (and `ablation`, its two-contender run): contenders trained under one
budget through SegmentationTask + SegDataModule from configs/<data set>.yaml and scored with
SegMetrics on the val split: mean ± std over the seeds, parameters, training seconds, who leads."""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path
from typing import Any

import torch

from .contenders import contender_names, contenders, load_config, monai_widths
from .machine import device_word, load_average
from .records import Result, table
from .training import Plan, Run, bench_datamodule, mean_spread, train_contenders

DATASETS = ("drive", "membrane", "camvid")
# From step times measured on 2 CPU cores at a load of ≈ 1: a training step takes ≈ 10 µs per crop pixel (0.65 s
# for 4 × 128², the five networks within ±30 %; data loading adds ≈ 15 %), a validation forward
# ≈ 3.3 µs per pixel (DRIVE's or membrane's val set ≈ 5 s, CamVid's 101 images ≈ 60 s), a run's
# set-up ≈ 4 s. full: 10 runs per data set ≈ 48 min; quick: 5 runs per data set ≈ 7.5 min.
PLANS: dict[str, dict[str, Plan]] = {
    "full": {"drive": Plan(100, 128, 4), "membrane": Plan(80, 128, 4), "camvid": Plan(50, 128, 8)},
    "quick": {"drive": Plan(40, 96, 4), "membrane": Plan(40, 96, 4), "camvid": Plan(25, 96, 8, 16)},
}
SEEDS = {"full": [0, 1], "quick": [0]}
ABLATION = "Ablation: attention gates on DRIVE"


def plan_text(plan: Plan, seeds: list[int]) -> str:
    """The budget in words: steps, crops, batch, workers, seeds, what is scored."""
    val = "all val images" if plan.val_images is None else f"the first {plan.val_images} val images"
    workers = "" if plan.workers is None else f", {plan.workers} DataLoader workers"
    budget = f"{plan.steps} steps, {plan.crop}×{plan.crop} crops, batch {plan.batch}{workers}"
    return f"{budget}, seeds {seeds}, scored on {val}"


def leader_lines(runs: list[Run]) -> list[str]:
    """Who leads on the first headline score, by how much, and where segattn (the first contender) ranks."""
    key = next(iter(runs[0].scores))
    names = list(dict.fromkeys(r.contender for r in runs))
    per_seed = {name: [r.scores[key] for r in runs if r.contender == name] for name in names}
    means = {name: statistics.mean(values) for name, values in per_seed.items()}
    ranked = sorted(names, key=means.__getitem__, reverse=True)
    if len(ranked) < 2:
        return []
    first, second = ranked[0], ranked[1]
    spreads = [statistics.stdev(values) for values in per_seed.values() if len(values) > 1]
    spread = f"; the largest std over seeds is {100 * max(spreads):.2f}" if spreads else ""
    lines = [
        f"Leads on {key}: **{first}** ({100 * means[first]:.2f}), by {100 * (means[first] - means[second]):.2f} "
        f"points over {second} ({100 * means[second]:.2f}){spread}."
    ]
    if ranked[0] != names[0]:
        lines.append(
            f"{names[0]} ranks {ranked.index(names[0]) + 1} of {len(ranked)}, "
            f"{100 * (means[first] - means[names[0]]):.2f} points behind."
        )
    return lines


def accuracy_table(
    name: str, plan: Plan, seeds: list[int], only: list[str] | None, jobs: int = 1, own: dict[str, Any] | None = None
) -> tuple[dict[str, Any] | None, list[str]]:
    """(table with its plan and leader lines, notes) of one data set; None where its data is missing.
    only: the contenders' names to train (None: all); jobs: runs at a time (run_jobs); own: the
    model section segattn's contenders take (default: the config's)."""
    config = load_config(name)
    images_dir = config["data"]["train"]["init_args"]["images_dir"]
    if not Path(images_dir).is_dir():
        return None, [f"{name}: skipped, {images_dir} not found (run from the repository root)."]
    chosen = [c for c in contenders(own or config["model"]) if only is None or c.name in only]
    runs, notes = train_contenders(name, chosen, plan, seeds, jobs)
    keys = list(runs[0].scores)
    rows = []
    for contender in dict.fromkeys(r.contender for r in runs):
        mine = [r for r in runs if r.contender == contender]
        cells = [mean_spread([r.scores[key] for r in mine]) for key in keys]
        rows.append([contender, f"{mine[0].params:.2f}", *cells, f"{statistics.mean(r.seconds for r in mine):.0f}"])
    caption = f"**{name}**: {plan_text(plan, seeds)}"
    columns = ["network", "params (M)", *keys, "train s"]
    found = table(columns, rows, caption=caption, after="\n".join(leader_lines(runs)))
    return found, [f"{name}: {note}" for note in notes]


def config_plan(name: str) -> Plan:
    """configs/<name>.yaml's own length: trainer.max_epochs passes over its train split (whole batches),
    at its crop_size and batch_size."""
    config = load_config(name)
    data = config["data"]
    images_dir = data["train"]["init_args"]["images_dir"]
    if not Path(images_dir).is_dir():
        raise SystemExit(f"accuracy --config-length: {name}: {images_dir} not found (run from the repository root)")
    plan = Plan(0, data["crop_size"], data["batch_size"])
    with tempfile.TemporaryDirectory() as tmp:
        batches = len(bench_datamodule(config, plan, Path(tmp)).train_dataloader())
    return plan._replace(steps=config["trainer"]["max_epochs"] * batches)


def accuracy(
    datasets: list[str],
    plans: dict[str, Plan],
    seeds: list[int],
    budget: str,
    only: list[str] | None = None,
    jobs: int = 1,
    own: dict[str, Any] | None = None,
) -> tuple[list[dict[str, Any]], list[str], tuple[float, float]]:
    """(tables, notes, load before / after) over the data sets; budget: "full", "quick" or
    "config length"; jobs: runs at a time (run_jobs); own: as accuracy_table's."""
    load_before = load_average()
    tables, notes = [], []
    for name in datasets:
        found, skipped = accuracy_table(name, plans[name], seeds, only, jobs, own)
        tables += [found] if found else []
        notes += skipped
    load_after = load_average()
    if jobs == 1:
        threads = f"{torch.get_num_threads()} CPU threads"
        caveat = "The runs are sequential, so other processes' load lands on some of them only"
    else:
        threads = f"{jobs} runs at a time (--jobs), sharing the device and {os.cpu_count()} CPU threads"
        caveat = "Runs beside each other slow each other down, so the seconds say little of a network's speed"
    monai = monai_widths(own or load_config(datasets[0])["model"])
    notes += [
        "Every network is trained through SegmentationTask + SegDataModule from configs/<data set>.yaml: its "
        "augmentation preset, normalisation, CE + Dice loss, AdamW (lr, weight decay) and warm-up + cosine "
        "schedule over the steps; only the network differs. Same seed → same batches and crops for every network. "
        + (
            "Steps, crops and batch: each config's own (trainer.max_epochs over its train split, data.crop_size, "
            "data.batch_size)."
            if budget == "config length"
            else "Steps and crops: the plan above each table, smaller than the configs' (256² crops, epochs) to fit "
            "the CPU budget."
        ),
        f"segattn: {'the config' if own is None else 'configs/attunet_paper.yaml'}'s model_args; gates off: the same "
        "with gates=False; smp Unet r34: smp.Unet, resnet34 encoder from scratch (encoder_weights None), ± "
        f"decoder_attention_type scse; MONAI AttentionUnet: channels {monai[0]}–{monai[-1]} (segattn's widths), "
        "strides 2, padded to its stride.",
        "Scores: SegMetrics on the val split (whole images, dataset-averaged confusion matrix) via Trainer.validate: "
        "DRIVE inside the field of view (the rest ignored), membrane's 6 held-out slices, CamVid's val set with void "
        "ignored. A two-class Dice is 2·IoU / (1 + IoU) of that class. Mean ± sample std over the seeds, in %.",
        f"train s: wall seconds of Trainer.fit (data loading included) on {device_word()}, {threads}; "
        f"1-minute load average before / after: {load_before:.2f} / {load_after:.2f} ({os.cpu_count()} cores). "
        f"{caveat}: compare speed with the `speed` subcommand (interleaved medians).",
    ]
    if budget != "config length":
        notes.append(
            "A short CPU budget: every network is far from converged; the ranking at this budget, not the level, is "
            "the figure."
        )
    return tables, notes, (load_before, load_after)


def run_ablation(args: argparse.Namespace) -> Result:
    """`ablation`: configs/attunet_paper.yaml's network with and without gates on DRIVE, one budget."""
    plan = Plan(args.steps, args.crop, args.batch)
    paper = load_config("attunet_paper")["model"]
    pair = ["segattn", "segattn, gates off"]
    tables, notes, load = accuracy(["drive"], {"drive": plan}, args.seeds, "ablation", pair, own=paper)
    settings = {"datasets": ["drive"], "plan": plan._asdict(), "seeds": args.seeds, "contenders": pair,
                "model": "attunet_paper"}  # fmt: skip
    return Result(ABLATION, ABLATION, tables, notes, settings, load)


def run(args: argparse.Namespace) -> list[Result]:
    """`accuracy` with its budget options, or `ablation`."""
    if args.command == "ablation":
        return [run_ablation(args)]
    if args.config_length and args.steps:
        raise SystemExit("tools/benchmark.py accuracy: --steps and --config-length exclude each other")
    names = contender_names()
    unknown = sorted(set(args.contenders or []) - set(names))
    if unknown:
        raise SystemExit(f"tools/benchmark.py accuracy: --contenders: unknown {unknown}; known: {names}")
    budget = "config length" if args.config_length else "quick" if args.quick else "full"
    if args.config_length:
        plans = {name: config_plan(name) for name in args.datasets}
    else:
        steps = {"steps": args.steps} if args.steps else {}
        plans = {name: PLANS[budget][name]._replace(**steps) for name in args.datasets}
    plans = {name: plan._replace(workers=args.workers) for name, plan in plans.items()}
    seeds = args.seeds or SEEDS["quick" if args.quick else "full"]
    for name in args.datasets:
        print(f"plan, {name}: {plan_text(plans[name], seeds)}", flush=True)
    tables, notes, load = accuracy(args.datasets, plans, seeds, budget, args.contenders, args.jobs)
    series = f"Accuracy under one training budget ({budget})"
    settings = {"budget": budget, "datasets": args.datasets, "plans": {k: p._asdict() for k, p in plans.items()},
                "seeds": seeds, "contenders": args.contenders, "jobs": args.jobs}  # fmt: skip
    return [Result(series, f"{series} on {device_word()}", tables, notes, settings, load)]
