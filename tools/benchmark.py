"""Benchmarks, one subcommand each; every printed table can be appended to docs/benchmarks.md.

python tools/benchmark.py models [--size 256] [--batch 2] [--repeats 5] [--write]
    parameters, GFLOPs and CPU forward / forward+backward throughput of segattn's Attention
    U-Nets, MONAI's AttentionUnet (optional: the `bench` extra) and smp's Unet, side by side.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Callable, Sequence
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


def forward_seconds(model: nn.Module, x: torch.Tensor) -> float:
    model.eval()
    start = time.perf_counter()
    with torch.no_grad():
        model(x)
    return time.perf_counter() - start


def train_step_seconds(model: nn.Module, x: torch.Tensor) -> float:
    """Seconds for forward + backward (of the logits' mean) in train mode."""
    model.train()
    model.zero_grad(set_to_none=True)
    start = time.perf_counter()
    model(x).mean().backward()
    return time.perf_counter() - start


def measure_throughput(
    models: dict[str, nn.Module], x: torch.Tensor, repeats: int, warmup: int
) -> dict[str, tuple[float, float]]:
    """{name: (forward img/s, forward+backward img/s)}: medians over `repeats` rounds; each round
    runs every model once in turn (interleaved), after `warmup` untimed rounds."""
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in models}
    for round_index in range(warmup + repeats):
        for name, model in models.items():
            timing = (forward_seconds(model, x), train_step_seconds(model, x))
            if round_index >= warmup:
                times[name].append(timing)
    n = len(x)
    return {
        name: (n / statistics.median(t[0] for t in ts), n / statistics.median(t[1] for t in ts))
        for name, ts in times.items()
    }


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


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="tools/benchmark.py", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    models = sub.add_parser("models", help="parameters, GFLOPs and CPU img/s of the Attention U-Nets and their peers")
    models.add_argument("--size", type=int, default=256, help="square input side (default 256)")
    models.add_argument("--batch", type=int, default=2, help="images per timed call (default 2)")
    models.add_argument("--repeats", type=int, default=5, help="timed rounds; the median is reported (default 5)")
    models.add_argument("--warmup", type=int, default=1, help="untimed rounds first (default 1)")
    models.add_argument("--write", action="store_true", help="append the table to docs/benchmarks.md")
    models.set_defaults(run=run_models)
    args = parser.parse_args(argv)
    args.run(args, shlex.join(["python", "tools/benchmark.py", *argv]))


if __name__ == "__main__":
    main()
