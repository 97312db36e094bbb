"""Benchmarks, one subcommand each; --write records a run and renders docs/benchmarks.md again.

Each run is a record (tools/benchmarks/records.py), which --write appends to docs/results/<benchmark>.jsonl;
the measuring code is the package tools/benchmarks/, one module per benchmark.

python tools/benchmark.py speed [--sizes 256 512] [--batch 2] [--repeats 3] [--precision bf16] [--channels-last]
        [--write]
    every contender (segattn's configs/drive.yaml network, the same without gates, smp Unet r34 ± scSE,
    MONAI's AttentionUnet): training img/s (forward, backward, AdamW step), inference img/s, peak memory,
    parameters and GFLOPs, per input size; every network under the same precision (autocast) and memory format.
python tools/benchmark.py models [--size 256] [--batch 2] [--repeats 5] [--write]
    the `speed` benchmark's CPU run at one size, fp32 (the same contenders; once its own list).
python tools/benchmark.py metrics [--repeats 7] [--write]
    SegMetrics update+compute on 16 × 512×512 labels, 19 classes, next to torchmetrics'
    MulticlassJaccardIndex and smp.metrics (get_stats + iou_score), on the CPU (and a GPU if any).
python tools/benchmark.py inference [--config attunet_small] [--images 8] [--size 512] [--write]
    Segmenter.predict images/s of the config's network next to plain loops over MONAI's
    AttentionUnet of the same widths (with its sliding_window_inference) and smp's Unet of a
    similar width, on the same images.
python tools/benchmark.py inference --device cuda [--images 256] [--size 512] [--big 8192] [--batch 16] [--write]
    Segmenter.predict on the GPU (fp32; bf16 + channels_last; + compile; + workers) against the
    fp32 plain loop over the same network (configs/drive.yaml's), on size² images and on one big²
    image through the sliding window, with peak GPU memory; MONAI's AttentionUnet of the same
    widths through the same loops (fp32, bf16 + channels_last), and the ratios to it.
python tools/benchmark.py data [--workers 2] [--pipelines coco volumes] [--write]
    batches/s of the COCO pipeline (configs/coco.yaml's data on ../shared/data/coco_tiny):
    first epoch (rasterising, filling the label cache) vs cached epochs vs no cache; and of the
    volume pipeline on drawn CT-sized scans, with and without the prepared-volume cache.
python tools/benchmark.py accuracy [--quick | --config-length] [--datasets drive membrane camvid] [--seeds 0 1]
        [--steps N] [--workers W] [--contenders NAME ...] [--jobs J] [--write]
    segattn (the data set config's model), the same without gates, smp Unet resnet34 (± scSE) and
    MONAI's AttentionUnet, each trained under one budget through SegmentationTask + SegDataModule
    from configs/<data set>.yaml and scored with SegMetrics on the val split: mean ± std over the
    seeds, parameters, training seconds, and who leads. --quick: a ≤ 10-minute version;
    --config-length: each config's own epochs, crop and batch (a GPU's work); --jobs J trains J runs
    at a time, each in its own process (on a GPU that training alone leaves waiting on data).
python tools/benchmark.py ablation [--steps 300] [--crop 128] [--seeds 0] [--write]
    the `accuracy` benchmark with two contenders: configs/attunet_paper.yaml's network with and
    without gates on DRIVE (configs/drive.yaml's fixed 15 / 5 split, scored inside the field of view).
python tools/benchmark.py memory [--sizes 10000 20000] [--window 512] [--batch 4] [--config demo] [--write]
    peak resident memory of `segattn infer --slide WINDOW` (CPU, one subprocess per image) on one
    synthetic N×N RGB PNG per size, next to the image's and its label map's own sizes; the
    config's network untrained (memory, not accuracy).
python tools/benchmark.py volumes [--size 96] [--window 48] [--widths 8 16 32 64] [--sw-batch 4] [--repeats 3]
        [--memory-size 512] [--memory-widths 4 8 16] [--parts speed memory] [--write]
    3-D: Segmenter.predict's sliding window on a size³ volume against MONAI's sliding_window_inference
    with the same network and weights (CPU, fp32, overlap 0.25, Gaussian), with the share of equal
    labels; and the peak resident memory of `segattn infer` on one memory-size³ int16 NIfTI, 4 classes.
python tools/benchmark.py volume-accuracy [--minutes 3] [--folds 0 1 2] [--workers W] [--contenders NAME ...] [--quick]
        [--write]
    3-fold cross-validation on MSD Hippocampus (configs/hippocampus.yaml's data): segattn 3-D (the config's
    network and variants), MONAI's AttentionUnet and UNet and segattn 2.5-D, each trained for the same wall time
    (the learning-rate schedule following the clock) and scored by per-case Dice (Decathlon) on the held-out
    fold's whole volumes.
python tools/benchmark.py serving [--requests 96] [--size 256] [--clients 1 8 32] [--max-batch-size 8]
        [--batch-timeout 0.01] [--config demo] [--accelerator cpu] [--write]
    `segattn serve` under 1, 8 and 32 concurrent clients, with LitServe's dynamic batching and without,
    against a loop answering one request at a time in-process over the same Segmenter: requests/s and
    p50 / p99 latency (the config's network untrained).
python tools/benchmark.py render
    docs/benchmarks.md from docs/results/*.jsonl alone (no measuring; deterministic).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from collections.abc import Callable, Sequence

from benchmarks import (
    REPO,
    RESULTS,
    accuracy,
    data,
    gpu_inference,
    inference,
    memory,
    metrics,
    render,
    serving,
    speed,
    volume_accuracy,
    volumes,
)
from benchmarks.cli import config_name, distinct_seeds
from benchmarks.contenders import contender_names
from benchmarks.harness import PRECISIONS
from benchmarks.records import Record, Result, append, make_record

from segattn import cli_types

DOC = REPO / "docs" / "benchmarks.md"
Runner = Callable[[argparse.Namespace], list[Result]]


def report(args: argparse.Namespace, name: str, record: Record) -> None:
    """Prints the run as the page shows it; with --write appends its record to RESULTS/<name>.jsonl
    and renders DOC again."""
    print(render.section(record), flush=True)
    if args.write:
        path = RESULTS / f"{name}.jsonl"
        append(path, record)
        render.write(RESULTS, DOC)
        print(f"appended to {os.path.relpath(path, REPO)}; rendered {os.path.relpath(DOC, REPO)}")


def run_inference(args: argparse.Namespace) -> list[Result]:
    """`inference` on the CPU, or `--device cuda`."""
    return (gpu_inference if args.device == "cuda" else inference).run(args)


def run_render(args: argparse.Namespace) -> None:
    """`render`: docs/benchmarks.md from the records."""
    path = render.write(RESULTS, DOC)
    print(f"rendered {os.path.relpath(path, REPO)} from {os.path.relpath(RESULTS, REPO)}/*.jsonl")


def command(
    sub: argparse._SubParsersAction, name: str, summary: str, run: Runner, records: str
) -> argparse.ArgumentParser:
    """A benchmark subcommand with the `--write` flag every one of them has; its runs' records go
    to docs/results/<records>.jsonl."""
    parser = sub.add_parser(name, help=summary)
    parser.add_argument(
        "--write", action="store_true", help=f"append the record to docs/results/{records}.jsonl and render the page"
    )
    parser.set_defaults(run=run, records=records)
    return parser


def parser_of() -> argparse.ArgumentParser:
    """The command line: one subcommand per benchmark, and `render`."""
    parser = argparse.ArgumentParser(prog="tools/benchmark.py", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    render_command = sub.add_parser("render", help="docs/benchmarks.md from docs/results/*.jsonl (no measuring)")
    render_command.set_defaults(run=None)
    models = command(sub, "models", "the `speed` benchmark on the CPU at one size (--size), fp32", speed.run, "speed")
    models.add_argument("--size", type=cli_types.count, default=256, help="square input side (default 256)")
    models.add_argument("--batch", type=cli_types.count, default=2, help="images per timed call (default 2)")
    models.add_argument(
        "--repeats", type=cli_types.count, default=5, help="timed rounds; the median is reported (default 5)"
    )
    models.add_argument("--warmup", type=cli_types.non_negative, default=1, help="untimed rounds first (default 1)")
    metrics_command = command(sub, "metrics", "SegMetrics vs torchmetrics vs smp.metrics", metrics.run, "metrics")
    metrics_command.add_argument("--repeats", type=cli_types.count, default=7)
    infer = command(sub, "inference", "Segmenter.predict vs MONAI and smp loops", run_inference, "inference")
    infer.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    infer.add_argument("--images", type=cli_types.count, help="images of --size (default 8 on the CPU, 256 on the GPU)")
    infer.add_argument("--size", type=cli_types.count, default=512, help="image side; on the GPU also the window side")
    infer.add_argument("--repeats", type=cli_types.count, default=3)
    infer.add_argument(
        "--config",
        type=config_name,
        help="name of the configs/<name>.yaml whose network runs (default attunet_small on the CPU, drive on the GPU)",
    )
    infer.add_argument("--big", type=cli_types.count, default=8192, help="GPU: side of the one large image")
    infer.add_argument("--batch", type=cli_types.count, default=16, help="GPU: images or windows per batch")
    ablation = command(
        sub, "ablation", "the `accuracy` benchmark with attunet_paper's network, gates on and off, DRIVE",
        accuracy.run, "accuracy",
    )  # fmt: skip
    ablation.add_argument("--steps", type=cli_types.count, default=300)
    ablation.add_argument("--crop", type=cli_types.count, default=128)
    ablation.add_argument("--batch", type=cli_types.count, default=4)
    ablation.add_argument("--seeds", type=int, nargs="+", default=[0])
    data_command = command(sub, "data", "data pipelines' batches/s: with their caches and without", data.run, "data")
    data_command.add_argument("--workers", type=cli_types.non_negative, default=2)
    data_command.add_argument("--epochs", type=cli_types.count, default=3)
    data_command.add_argument("--pipelines", nargs="+", choices=["coco", "volumes"], default=["coco", "volumes"])
    accuracy_command = command(
        sub, "accuracy", "segattn vs its peers trained under one budget on real data", accuracy.run, "accuracy"
    )
    length = accuracy_command.add_mutually_exclusive_group()
    length.add_argument("--quick", action="store_true", help="the ≤ 10-minute budget (fewer steps, smaller crops)")
    length.add_argument(
        "--config-length",
        action="store_true",
        help="each config's own length, crop and batch (trainer.max_epochs; for a GPU: hours on a CPU)",
    )
    accuracy_command.add_argument("--datasets", nargs="+", choices=accuracy.DATASETS, default=list(accuracy.DATASETS))
    accuracy_command.add_argument("--seeds", type=int, nargs="+", help="default: 0 1 (--quick: 0)")
    accuracy_command.add_argument(
        "--steps", type=cli_types.count, help="optimiser steps on every data set (default: the plan's)"
    )
    accuracy_command.add_argument(
        "--workers", type=cli_types.non_negative, help="DataLoader workers (default: the config's data.num_workers)"
    )
    accuracy_command.add_argument(
        "--contenders", nargs="+", metavar="NAME", help=f"train only these (default: all of {contender_names()})"
    )
    accuracy_command.add_argument(
        "--jobs", type=cli_types.count, default=1, help="training runs at a time, each in its own process (default 1)"
    )
    speed_command = command(
        sub, "speed", "training and inference img/s, peak memory, GFLOPs of the contenders", speed.run, "speed"
    )
    speed_command.add_argument("--sizes", type=cli_types.count, nargs="+", default=[256, 512], help="input sides")
    speed_command.add_argument("--batch", type=cli_types.count, default=2, help="images per timed call (default 2)")
    speed_command.add_argument(
        "--repeats", type=cli_types.count, default=3, help="timed rounds; the median is reported (default 3)"
    )
    speed_command.add_argument(
        "--warmup", type=cli_types.non_negative, default=1, help="untimed rounds first (default 1)"
    )
    speed_command.add_argument(
        "--precision", choices=list(PRECISIONS), default="fp32", help="autocast dtype for every network (default fp32)"
    )
    speed_command.add_argument(
        "--channels-last", action="store_true", help="channels_last weights and inputs, every network"
    )
    memory_command = command(
        sub, "memory", "peak RSS of segattn infer --slide on large synthetic images", memory.run, "memory"
    )
    memory_command.add_argument("--sizes", type=cli_types.count, nargs="+", default=[10_000, 20_000], help="sides")
    memory_command.add_argument("--window", type=cli_types.count, default=512, help="sliding-window side (default 512)")
    memory_command.add_argument("--batch", type=cli_types.count, default=4, help="windows per forward (default 4)")
    memory_command.add_argument(
        "--config", type=config_name, default="demo", help="configs/<name>.yaml whose network runs (default demo)"
    )
    add_volumes(sub)
    add_volume_accuracy(sub)
    add_serving(sub)
    return parser


def add_volumes(sub: argparse._SubParsersAction) -> None:
    """`volumes`: 3-D sliding-window speed against MONAI, and memory of `segattn infer` on a volume."""
    volumes_command = command(
        sub, "volumes", "3-D sliding window vs MONAI, and segattn infer's memory on a volume", volumes.run, "volumes"
    )
    volumes_command.add_argument("--size", type=cli_types.count, default=96, help="volume side (default 96)")
    volumes_command.add_argument("--window", type=cli_types.count, default=48, help="window side (default 48)")
    volumes_command.add_argument("--widths", type=cli_types.count, nargs="+", default=[8, 16, 32, 64])
    volumes_command.add_argument("--sw-batch", type=cli_types.count, default=4, help="windows per forward (default 4)")
    volumes_command.add_argument("--repeats", type=cli_types.count, default=3, help="timed rounds (default 3)")
    volumes_command.add_argument("--warmup", type=cli_types.non_negative, default=1, help="untimed rounds (default 1)")
    volumes_command.add_argument("--memory-size", type=cli_types.count, default=512, help="memory: side (default 512)")
    volumes_command.add_argument("--memory-widths", type=cli_types.count, nargs="+", default=[4, 8, 16])
    volumes_command.add_argument("--parts", nargs="+", choices=["speed", "memory"], default=["speed", "memory"])


def add_volume_accuracy(sub: argparse._SubParsersAction) -> None:
    """`volume-accuracy`: 3-fold cross-validation on Hippocampus, every network for the same wall time."""
    parser = command(
        sub, "volume-accuracy", "3-fold CV on Hippocampus, segattn 3-D vs MONAI at equal wall time",
        volume_accuracy.run, "volume_accuracy",
    )  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="fold 0 and --minutes 0.2 (a smoke test)")
    parser.add_argument("--minutes", type=cli_types.scale, help="training wall time per network and fold (default 3.0)")
    parser.add_argument("--folds", type=int, nargs="+", choices=range(volume_accuracy.FOLDS), help="default: 0 1 2")
    parser.add_argument("--lr", type=cli_types.scale, help="every contender's learning rate (default: the config's)")
    parser.add_argument(
        "--workers", type=cli_types.non_negative, help="DataLoader workers (default: the config's data.num_workers)"
    )
    parser.add_argument(
        "--contenders", nargs="+", metavar="NAME", help="train only these (default: all; see volume_accuracy.py)"
    )
    parser.add_argument(
        "--config-length", action="store_true",
        help="train for configs/hippocampus.yaml's trainer.max_epochs instead of a wall time (a GPU's work)",
    )  # fmt: skip
    parser.add_argument("--val-cases", type=cli_types.count, help=argparse.SUPPRESS)  # tests: score fewer volumes


def add_serving(sub: argparse._SubParsersAction) -> None:
    """`serving`: segattn serve under concurrent clients, batching on and off, against a loop."""
    parser = command(sub, "serving", "segattn serve: concurrent clients, dynamic batching", serving.run, "serving")
    parser.add_argument("--requests", type=cli_types.count, default=96, help="requests per row (default 96)")
    parser.add_argument("--size", type=cli_types.count, default=256, help="image side (default 256)")
    parser.add_argument("--clients", type=cli_types.count, nargs="+", default=[1, 8, 32])
    parser.add_argument("--max-batch-size", type=cli_types.count, default=8)
    parser.add_argument("--batch-timeout", type=cli_types.seconds, default=0.01)
    parser.add_argument("--config", type=config_name, default="demo", help="the configs/<name>.yaml whose network runs")
    parser.add_argument("--accelerator", choices=["cpu", "cuda"], default="cpu")


def main(argv: Sequence[str] | None = None) -> None:
    """Parses the command line, runs the benchmark and reports each record (see report)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = parser_of()
    args = parser.parse_args(argv)
    if args.run is None:
        run_render(args)
        return
    distinct_seeds(parser, getattr(args, "seeds", None))
    start = time.perf_counter()
    results = args.run(args)
    seconds = time.perf_counter() - start
    line = shlex.join(["python", "tools/benchmark.py", *argv])
    for result in results:
        report(args, args.records, make_record(args.records, result, line, seconds))


if __name__ == "__main__":
    main()
