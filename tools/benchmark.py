"""Benchmarks, one subcommand each; every printed table can be appended to docs/benchmarks.md.

python tools/benchmark.py models [--size 256] [--batch 2] [--repeats 5] [--write]
    parameters, GFLOPs and CPU forward / forward+backward throughput of segattn's Attention
    U-Nets, MONAI's AttentionUnet (optional: the `bench` extra) and smp's Unet, side by side.
python tools/benchmark.py metrics [--repeats 7] [--write]
    SegMetrics update+compute on 16 × 512×512 labels, 19 classes, next to torchmetrics'
    MulticlassJaccardIndex and smp.metrics (get_stats + iou_score), on the CPU (and a GPU if any).
python tools/benchmark.py inference [--images 8] [--size 512] [--write]
    Segmenter.predict images/s next to plain loops over MONAI's AttentionUnet (with its
    sliding_window_inference) and smp's Unet of a similar width, on the same images.
python tools/benchmark.py ablation [--steps 300] [--crop 128] [--seeds 0] [--write]
    attunet_paper vs the same network with gates=False on DRIVE (configs/drive.yaml's fixed
    15 / 5 split, scored inside the field of view): same steps, crop, batch and seed.
python tools/benchmark.py data [--workers 2] [--write]
    batches/s of the COCO pipeline (configs/coco.yaml's data on ../shared/data/coco_tiny):
    first epoch (rasterising, filling the label cache) vs cached epochs vs no cache.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import os
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path

import torch
import yaml
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from segattn.models import build_model

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "benchmarks.md"
DOC_INTRO = "# Benchmarks\n\nEvery figure here was printed by the command above it (tools/benchmark.py).\n"
NUM_CLASSES = 2


def config_model_args(name: str) -> dict:
    """The model_args of configs/<name>.yaml."""
    return yaml.safe_load((REPO / "configs" / f"{name}.yaml").read_text())["model"]["model_args"]


def monai_attention_unet(channels: Sequence[int]) -> nn.Module | None:
    """MONAI's 2-D AttentionUnet with `channels` (None when MONAI is not installed)."""
    try:
        from monai.networks.nets import AttentionUnet
    except ImportError:
        return None
    strides = (2,) * (len(channels) - 1)
    return AttentionUnet(spatial_dims=2, in_channels=3, out_channels=NUM_CLASSES, channels=channels, strides=strides)


def model_candidates() -> list[tuple[str, str, Callable[[], nn.Module | None]]]:
    """(row name, width group, builder) for every model of the `models` table; a builder returns
    None where its package is missing. Rows of a width group compare with MONAI of that group."""
    small, paper = config_model_args("attunet_small"), config_model_args("attunet_paper")

    def segattn(args: dict) -> Callable[[], nn.Module]:
        return lambda: build_model("attention_unet", num_classes=NUM_CLASSES, in_channels=3, **args)

    return [
        ("segattn attunet_small", "small", segattn(small)),
        ("segattn attunet_small, gates=False", "small", segattn({**small, "gates": False})),
        ("MONAI AttentionUnet 16–128", "small", lambda: monai_attention_unet((16, 32, 64, 128))),
        ("segattn attunet_paper", "paper", segattn(paper)),
        ("segattn attunet_paper, gates=False", "paper", segattn({**paper, "gates": False})),
        ("MONAI AttentionUnet 32–512", "paper", lambda: monai_attention_unet((32, 64, 128, 256, 512))),
        ("smp Unet resnet34", "", lambda: build_model("smp:Unet", num_classes=NUM_CLASSES, encoder_name="resnet34")),
    ]


def count_gflops(model: nn.Module, size: int) -> float:
    """GFLOPs of one forward pass of one 3×size×size image in eval mode, as counted by
    torch.utils.flop_counter (convolutions and matrix products; a multiply-add is 2 FLOPs)."""
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.randn(1, 3, size, size))
    return counter.get_total_flops() / 1e9


def median_seconds(
    candidates: dict[Hashable, Callable[[], object]], repeats: int, warmup: int = 1
) -> dict[Hashable, float]:
    """{name: median seconds of one call}, the candidates run in turn (interleaved) each round."""
    times: dict[Hashable, list[float]] = {name: [] for name in candidates}
    for round_index in range(warmup + repeats):
        for name, call in candidates.items():
            start = time.perf_counter()
            call()
            if round_index >= warmup:
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}


def forward(model: nn.Module, x: torch.Tensor) -> None:
    model.eval()
    with torch.no_grad():
        model(x)


def train_step(model: nn.Module, x: torch.Tensor) -> None:
    """Forward + backward (of the logits' mean) in train mode."""
    model.train()
    model.zero_grad(set_to_none=True)
    model(x).mean().backward()


def measure_throughput(
    models: dict[str, nn.Module], x: torch.Tensor, repeats: int, warmup: int
) -> dict[str, tuple[float, float]]:
    """{name: (forward img/s, forward+backward img/s)}: medians over `repeats` rounds; each round
    runs every model once in turn (interleaved), after `warmup` untimed rounds."""
    calls: dict[Hashable, Callable[[], object]] = {}
    for name, model in models.items():
        calls[name, "forward"] = functools.partial(forward, model, x)
        calls[name, "train"] = functools.partial(train_step, model, x)
    seconds = median_seconds(calls, repeats, warmup)
    return {name: (len(x) / seconds[name, "forward"], len(x) / seconds[name, "train"]) for name in models}


def ratio(value: float, reference: float | None) -> str:
    return f"{value / reference:.2f}×" if reference else "–"


def models_table(size: int, batch: int, repeats: int, warmup: int) -> tuple[str, list[str]]:
    """(Markdown table, notes) of the `models` benchmark."""
    torch.manual_seed(0)
    built, groups, notes = {}, {}, []
    for name, group, builder in model_candidates():
        model = builder()
        if model is None:
            notes.append(f"{name}: skipped, MONAI is not installed (pip install -e '.[bench]').")
            continue
        built[name], groups[name] = model, group
    flops = {name: count_gflops(model, size) for name, model in built.items()}
    load_before = os.getloadavg()[0]
    speed = measure_throughput(built, torch.randn(batch, 3, size, size), repeats, warmup)
    load_after = os.getloadavg()[0]
    monai = {groups[name]: speed[name] for name in built if name.startswith("MONAI")}
    smp_speed = next((speed[name] for name in built if name.startswith("smp")), None)
    lines = [
        "| model | params (M) | GFLOPs | fwd img/s | fwd+bwd img/s | fwd vs MONAI | fwd+bwd vs MONAI "
        "| fwd vs smp | fwd+bwd vs smp |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, model in built.items():
        params = sum(p.numel() for p in model.parameters()) / 1e6
        fwd, train = speed[name]
        peer = monai.get(groups[name])
        lines.append(
            f"| {name} | {params:.2f} | {flops[name]:.2f} | {fwd:.2f} | {train:.2f} "
            f"| {ratio(fwd, peer and peer[0])} | {ratio(train, peer and peer[1])} "
            f"| {ratio(fwd, smp_speed and smp_speed[0])} | {ratio(train, smp_speed and smp_speed[1])} |"
        )
    notes += [
        f"Input 3×{size}×{size}, {NUM_CLASSES} classes, batch {batch}, CPU, {torch.get_num_threads()} threads; "
        f"img/s = batch / median seconds over {repeats} interleaved rounds after {warmup} warm-up round(s).",
        "GFLOPs: one image, forward, convolutions and matrix products as counted by torch.utils.flop_counter, "
        "a multiply-add counted as 2 FLOPs (norms, activations and resampling not counted).",
        "Ratios: img/s of the row ÷ img/s of MONAI AttentionUnet of the same widths (16–128 for attunet_small, "
        "32–512 for attunet_paper) and of smp Unet resnet34; > 1 is faster. attunet_paper has 2 gates per skip "
        "and deep supervision, MONAI's AttentionUnet 1 gate per skip and none.",
        f"1-minute load average before / after the timing: {load_before:.2f} / {load_after:.2f} "
        f"({os.cpu_count()} cores); a load above the thread count means other processes shared the CPU.",
    ]
    return "\n".join(lines), notes


def machine() -> str:
    """CPU model (from /proc/cpuinfo), core count, torch version."""
    cpu = platform.processor() or "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if "model name" in line]
        cpu = names[0] if names else cpu
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, Python {platform.python_version()}"


def append_section(path: Path, title: str, command: str, body: str) -> None:
    """Appends a section (heading, command, machine, date, body) to `path`, created with an intro if absent."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = path.read_text() if path.is_file() else DOC_INTRO
    section = (
        f"\n## {title}\n\n"
        f"Command: `{command}`  \n"
        f"Machine: {machine()}  \n"
        f"Date: {datetime.date.today().isoformat()}\n\n"
        f"{body}\n"
    )
    path.write_text(text + section)


def run_models(args: argparse.Namespace, command: str) -> None:
    table, notes = models_table(args.size, args.batch, args.repeats, args.warmup)
    body = table + "\n\n" + "\n".join(f"- {note}" for note in notes)
    print(body)
    if args.write:
        append_section(DOC, f"Models at {args.size}² on CPU", command, body)
        print(f"\nappended to {DOC.relative_to(REPO)}")


def timing_notes(repeats: int, load_before: float, load_after: float) -> list[str]:
    return [
        f"Median of {repeats} interleaved rounds after a warm-up round; {torch.get_num_threads()} CPU threads.",
        f"1-minute load average before / after the timing: {load_before:.2f} / {load_after:.2f} "
        f"({os.cpu_count()} cores); a load above the thread count means other processes shared the CPU.",
    ]


def metrics_table(repeats: int, device: str) -> tuple[str, list[str]]:
    """SegMetrics vs torchmetrics vs smp on 16 × 512×512 label maps, 19 classes, 5 % ignore."""
    import segmentation_models_pytorch as smp
    from torchmetrics.classification import MulticlassJaccardIndex

    from segattn.metrics import SegMetrics

    k, generator = 19, torch.Generator().manual_seed(0)
    target = torch.randint(0, k, (16, 512, 512), generator=generator)
    target[torch.rand(target.shape, generator=generator) < 0.05] = 255
    preds = torch.randint(0, k, (16, 512, 512), generator=generator)
    preds, target = preds.to(device), target.to(device)
    ours = SegMetrics(k).to(device)
    tm = MulticlassJaccardIndex(k, average=None, ignore_index=255).to(device)
    tm_fast = MulticlassJaccardIndex(k, average=None, ignore_index=255, validate_args=False).to(device)
    results: dict[str, torch.Tensor] = {}

    def run(name: str, metric) -> Callable[[], None]:
        def call() -> None:
            metric.reset()
            metric.update(preds, target)
            value = metric.compute()
            results[name] = value["IoU"] if isinstance(value, dict) else value

        return call

    def smp_call() -> None:
        stats = smp.metrics.get_stats(preds, target, mode="multiclass", num_classes=k, ignore_index=255)
        results["smp"] = smp.metrics.iou_score(*stats, reduction="none").mean(dim=0)  # not the same definition

    candidates = {
        "segattn SegMetrics": run("segattn SegMetrics", ours),
        "torchmetrics MulticlassJaccardIndex (defaults)": run("tm", tm),
        "torchmetrics MulticlassJaccardIndex (validate_args=False)": run("tm fast", tm_fast),
        "smp get_stats + iou_score": smp_call,
    }
    if device == "cuda":
        for name, call in list(candidates.items()):
            candidates[name] = lambda call=call: (call(), torch.cuda.synchronize())
    load_before = os.getloadavg()[0]
    seconds = median_seconds(candidates, repeats)
    load_after = os.getloadavg()[0]
    base = seconds["segattn SegMetrics"]
    lines = ["| evaluator | ms per update+compute | segattn is faster by |", "|---|---:|---:|"]
    lines += [f"| {name} | {1000 * t:.1f} | {t / base:.2f}× |" for name, t in seconds.items()]
    agree = (results["segattn SegMetrics"].float().cpu() - results["tm"].float().cpu()).abs().max()
    notes = [
        f"16 label maps of 512×512 (preds and targets int64, 5 % of targets 255 = ignore), 19 classes, on {device}.",
        f"Per-class IoU of segattn and torchmetrics agree to {float(agree):.1e} (max abs); smp's per-image "
        "stats are a different definition, timed for its cost only.",
        "torchmetrics' default validate_args=True checks the inputs with torch.unique; segattn checks predictions "
        "with one aminmax and counts with one bincount, in which ignored and out-of-range targets land in "
        "checked, dropped bins.",
        *timing_notes(repeats, load_before, load_after),
    ]
    return "\n".join(lines), notes


def inference_table(images: int, size: int, repeats: int) -> tuple[str, list[str]]:
    """Segmenter.predict vs plain loops over MONAI AttentionUnet (+ sliding_window_inference) and
    smp Unet, on the same `images` RGB images of size×size, CPU."""
    import numpy as np
    import segmentation_models_pytorch as smp

    from segattn.data.base import image_to_tensor
    from segattn.data.transforms import eval_pipeline
    from segattn.inference import Segmenter

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    arrays = [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(images)]
    transform = eval_pipeline("imagenet", 3)
    tensors = [image_to_tensor(transform(image=a)["image"]) for a in arrays]
    small = config_model_args("attunet_small")
    segmenter = Segmenter(
        build_model("attention_unet", num_classes=NUM_CLASSES, **small), ["a", "b"], transform, [[0] * 3] * 2, 3, "cpu"
    )
    smp_unet = smp.Unet("resnet18", encoder_weights=None, classes=NUM_CLASSES, decoder_channels=(128, 64, 32, 16, 16))
    smp_unet.eval()
    roi, overlap = size // 2, 0.25

    def loop(model: nn.Module, slide: bool) -> Callable[[], None]:
        def call() -> None:
            with torch.inference_mode():
                for x in tensors:
                    batch = x[None]
                    if slide:
                        from monai.inferers import sliding_window_inference

                        logits = sliding_window_inference(batch, (roi, roi), 4, model, overlap=overlap)
                    else:
                        logits = model(batch)
                    logits.argmax(1).numpy()

        return call

    candidates: dict[str, Callable[[], object]] = {
        "segattn Segmenter.predict, attunet_small (batch 4)": lambda: segmenter.predict(arrays, batch_size=4),
        f"segattn Segmenter.predict, attunet_small, slide {roi}/{overlap}": lambda: segmenter.predict(
            arrays, batch_size=4, slide=(roi, overlap)
        ),
    }
    monai = monai_attention_unet((16, 32, 64, 128))
    notes = []
    if monai is None:
        notes.append("MONAI rows skipped: MONAI is not installed (pip install -e '.[bench]').")
    else:
        monai.eval()
        candidates[f"MONAI AttentionUnet 16–128, sliding_window_inference {roi}/{overlap}, plain loop"] = loop(
            monai, True
        )
        candidates["MONAI AttentionUnet 16–128, whole image, plain loop"] = loop(monai, False)
    candidates["smp Unet resnet18 (decoder 128–16), whole image, plain loop"] = loop(smp_unet, False)
    load_before = os.getloadavg()[0]
    seconds = median_seconds(candidates, repeats)
    load_after = os.getloadavg()[0]
    ours = images / seconds[next(iter(candidates))]
    lines = ["| pipeline | images/s | segattn Segmenter.predict is faster by |", "|---|---:|---:|"]
    lines += [f"| {name} | {images / t:.2f} | {ours / (images / t):.2f}× |" for name, t in seconds.items()]
    notes += [
        f"{images} RGB images {size}×{size} (uint8 arrays in memory), {NUM_CLASSES} classes, label maps out, CPU; "
        "normalisation included for segattn (its eval transform) and done beforehand for the plain loops.",
        f"MONAI's sliding_window_inference: roi {roi}×{roi}, sw_batch_size 4, overlap {overlap} (MONAI's default "
        "blending); the whole-image MONAI loop is shown too, for the network alone.",
        *timing_notes(repeats, load_before, load_after),
    ]
    return "\n".join(lines), notes


def data_table(workers: int, epochs: int) -> tuple[str, list[str]]:
    """Batches/s of configs/coco.yaml's training pipeline: cold cache, warm cache, no cache."""
    import tempfile

    from segattn.cli import load_datamodule

    config = yaml.safe_load((REPO / "configs" / "coco.yaml").read_text())
    if not Path(config["data"]["train"]["init_args"]["images_dir"]).is_dir():
        raise SystemExit("data benchmark: ../shared/data/coco_tiny not found (run from the repository root)")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for cache in ("cache", "none"):
            for split in ("train", "val"):
                config["data"][split]["init_args"]["cache_dir"] = str(Path(tmp) / "cache") if cache == "cache" else None
            config["data"]["num_workers"] = workers
            path = Path(tmp) / f"{cache}.yaml"
            path.write_text(yaml.safe_dump(config))
            datamodule = load_datamodule(path)
            for epoch in range(epochs):
                loader = datamodule.train_dataloader()
                start = time.perf_counter()
                batches = sum(1 for _ in loader)
                seconds = time.perf_counter() - start
                label = {("cache", 0): "first epoch (rasterise, write cache)", ("none", 0): "no cache"}.get(
                    (cache, epoch), "cached" if cache == "cache" else "no cache"
                )
                rows.append((f"{label}, epoch {epoch + 1}", batches, seconds))
    lines = ["| epoch | batches | seconds | batches/s |", "|---|---:|---:|---:|"]
    lines += [f"| {name} | {n} | {t:.2f} | {n / t:.2f} |" for name, n, t in rows]
    notes = [
        f"configs/coco.yaml data (coco_tiny train: 80 images, 81 classes, crop 256, batch 8, natural preset), "
        f"{workers} DataLoader workers; each epoch includes starting the workers.",
        "The cache holds each image's rasterised label map as PNG, keyed by the annotation file's hash and settings.",
    ]
    return "\n".join(lines), notes


def mean_spread(values: list[float]) -> str:
    """Mean (± sample standard deviation over ≥ 2 values) in percent."""
    spread = f" ± {100 * statistics.stdev(values):.2f}" if len(values) > 1 else ""
    return f"{100 * statistics.mean(values):.2f}{spread}"


def ablation_table(steps: int, crop: int, batch: int, seeds: list[int]) -> tuple[str, list[str]]:
    """Trains attunet_paper with gates on and off under one budget on DRIVE and scores the last
    checkpoint on the 5 validation images (vessel Dice, mIoU; outside the field of view ignored)."""
    import json
    import tempfile

    from segattn.cli import SegattnCLI
    from segattn.evaluate import evaluate_dataset
    from segattn.inference import Segmenter

    paper = config_model_args("attunet_paper")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, model_args in (("attunet_paper", paper), ("attunet_paper, gates=False", {**paper, "gates": False})):
            for seed in seeds:
                root = Path(tmp) / f"{len(rows)}"
                args = [
                    "fit", "--config", str(REPO / "configs/drive.yaml"), "--seed_everything", str(seed),
                    "--model.model_args", json.dumps(model_args), "--trainer.max_epochs", "-1",
                    "--trainer.max_steps", str(steps), "--trainer.check_val_every_n_epoch", "100000",
                    "--trainer.enable_progress_bar", "false", "--trainer.default_root_dir", str(root),
                    "--data.crop_size", str(crop), "--data.batch_size", str(batch),
                ]  # fmt: skip
                start = time.perf_counter()
                cli = SegattnCLI(args=args)
                seconds = time.perf_counter() - start
                last = next(root.rglob("last.ckpt"))
                scores = evaluate_dataset(Segmenter.from_checkpoint(last, device="cpu"), cli.datamodule.datasets["val"])
                rows.append((name, seed, scores.scores["Dice"]["vessel"], scores.scores["mIoU"], seconds))
    lines = ["| network | seed | vessel Dice | mIoU | train s |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {n} | {s} | {100 * d:.2f} | {100 * m:.2f} | {t:.0f} |" for n, s, d, m, t in rows]
    for name in dict.fromkeys(r[0] for r in rows):
        dice = [r[2] for r in rows if r[0] == name]
        miou = [r[3] for r in rows if r[0] == name]
        lines.append(f"| {name}, mean | – | {mean_spread(dice)} | {mean_spread(miou)} | – |")
    notes = [
        f"configs/drive.yaml data (train 21–35, val 36–40, medical preset, ImageNet normalisation), "
        f"attunet_paper's model_args with gates on / off; {steps} optimiser steps, {crop}×{crop} crops, batch {batch}, "
        f"AdamW lr 1e-3, warm-up + cosine; seeds {seeds}. Scored on the whole val images, inside the field of view.",
        "A short CPU budget: both networks are far from converged; the gap, not the level, is the figure.",
    ]
    return "\n".join(lines), notes


def report(args: argparse.Namespace, command: str, title: str, table: str, notes: list[str]) -> None:
    body = table + "\n\n" + "\n".join(f"- {note}" for note in notes)
    print(body)
    if args.write:
        append_section(DOC, title, command, body)
        print(f"\nappended to {DOC.relative_to(REPO)}")


def run_metrics(args: argparse.Namespace, command: str) -> None:
    devices = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]
    for device in devices:
        table, notes = metrics_table(args.repeats, device)
        report(args, command, f"Metrics: update+compute, 16 × 512², 19 classes, {device}", table, notes)


def run_inference(args: argparse.Namespace, command: str) -> None:
    table, notes = inference_table(args.images, args.size, args.repeats)
    report(args, command, f"Inference at {args.size}² on CPU", table, notes)


def run_ablation(args: argparse.Namespace, command: str) -> None:
    table, notes = ablation_table(args.steps, args.crop, args.batch, args.seeds)
    report(args, command, "Ablation: attention gates on DRIVE", table, notes)


def run_data(args: argparse.Namespace, command: str) -> None:
    table, notes = data_table(args.workers, args.epochs)
    report(args, command, f"Data: COCO pipeline, {args.workers} workers", table, notes)


def command(
    sub: argparse._SubParsersAction, name: str, summary: str, run: Callable[[argparse.Namespace, str], None]
) -> argparse.ArgumentParser:
    """A benchmark subcommand with the `--write` flag every one of them has."""
    parser = sub.add_parser(name, help=summary)
    parser.add_argument("--write", action="store_true", help="append the table to docs/benchmarks.md")
    parser.set_defaults(run=run)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="tools/benchmark.py", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    models = command(
        sub, "models", "parameters, GFLOPs and CPU img/s of the Attention U-Nets and their peers", run_models
    )
    models.add_argument("--size", type=int, default=256, help="square input side (default 256)")
    models.add_argument("--batch", type=int, default=2, help="images per timed call (default 2)")
    models.add_argument("--repeats", type=int, default=5, help="timed rounds; the median is reported (default 5)")
    models.add_argument("--warmup", type=int, default=1, help="untimed rounds first (default 1)")
    metrics = command(sub, "metrics", "SegMetrics vs torchmetrics vs smp.metrics", run_metrics)
    metrics.add_argument("--repeats", type=int, default=7)
    inference = command(sub, "inference", "Segmenter.predict vs MONAI and smp loops", run_inference)
    inference.add_argument("--images", type=int, default=8)
    inference.add_argument("--size", type=int, default=512)
    inference.add_argument("--repeats", type=int, default=3)
    ablation = command(sub, "ablation", "attunet_paper with and without gates on DRIVE, one budget", run_ablation)
    ablation.add_argument("--steps", type=int, default=300)
    ablation.add_argument("--crop", type=int, default=128)
    ablation.add_argument("--batch", type=int, default=4)
    ablation.add_argument("--seeds", type=int, nargs="+", default=[0])
    data = command(sub, "data", "COCO pipeline batches/s: first epoch vs cached vs no cache", run_data)
    data.add_argument("--workers", type=int, default=2)
    data.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args(argv)
    args.run(args, shlex.join(["python", "tools/benchmark.py", *argv]))


if __name__ == "__main__":
    main()
