"""The `speed` benchmark (and `models`, its CPU run at one size): every contender's training and
inference img/s, peak memory, parameters and GFLOPs per input size, all under one precision
(autocast) and memory format."""

from __future__ import annotations

import argparse
import functools
import os

import torch

from .contenders import NUM_CLASSES, build_all, build_contender, contenders, load_config
from .harness import (
    PRECISIONS,
    count_gflops,
    forward,
    measure_throughput,
    millions,
    peak_memory_mib,
    ratio,
    train_step,
)
from .machine import load_average
from .records import Result, table

COLUMNS = [
    "network", "params (M)", "input", "GFLOPs", "train img/s", "infer img/s", "train vs segattn",
    "infer vs segattn", "train peak MiB", "infer peak MiB",
]  # fmt: skip


def mode_words(precision: str, channels_last: bool) -> str:
    """ "bf16 + channels_last" style words for the options."""
    return " + ".join([precision, *(["channels_last"] if channels_last else [])])


def speed(
    sizes: list[int],
    batch: int,
    repeats: int,
    warmup: int,
    precision: str = "fp32",
    channels_last: bool = False,
    device: torch.device | None = None,
) -> Result:
    """The contenders (configs/drive.yaml's segattn), 2 classes, batches of batch×3×size×size,
    every one under the same precision (autocast) and memory format, on `device` (default: the GPU
    if there is one): img/s are batch ÷ median seconds, peak memory in MiB."""
    device = device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype, layout = PRECISIONS[precision], torch.channels_last if channels_last else torch.contiguous_format
    torch.manual_seed(0)
    candidates = contenders(load_config("drive")["model"])
    built, notes = build_all({c.name: functools.partial(build_contender, c, NUM_CLASSES, 3) for c in candidates})
    flops = {(name, size): count_gflops(model, size) for name, model in built.items() for size in sizes}
    built = {name: model.to(device, memory_format=layout) for name, model in built.items()}
    optimizers = {name: torch.optim.AdamW(model.parameters()) for name, model in built.items()}
    rows = []
    load_before = load_average()
    for size in sizes:
        x = torch.randn(batch, 3, size, size, device=device).contiguous(memory_format=layout)
        measured = measure_throughput(built, x, repeats, warmup, optimizers, dtype)
        own_infer, own_train = measured.get("segattn", (None, None))
        for name, model in built.items():
            infer, train = measured[name]
            memory = [
                peak_memory_mib(functools.partial(train_step, model, x, optimizers[name], dtype), device),
                peak_memory_mib(functools.partial(forward, model, x, dtype), device),
            ]
            train_mib, infer_mib = ("–" if m is None else f"{m:.0f}" for m in memory)
            rows.append(
                [name, f"{millions(model):.2f}", f"{size}²", f"{flops[name, size]:.2f}", f"{train:.2f}",
                 f"{infer:.2f}", ratio(train, own_train), ratio(infer, own_infer), train_mib, infer_mib]
            )  # fmt: skip
    load_after = load_average()
    where = "GPU" if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    mode = "fp32 (PyTorch's defaults)" if dtype == torch.float32 else f"autocast to {precision}, float32 weights"
    notes += [
        f"{NUM_CLASSES} classes, RGB input, batch {batch}, {where}; segattn = configs/drive.yaml's model_args. "
        f"img/s = batch / median seconds over {repeats} interleaved rounds after {warmup} warm-up round(s); "
        "train = forward, backward of the logits' mean and an AdamW step, in train mode; infer = forward under "
        "no_grad, eval mode.",
        f"Every network alike: {mode}, {'channels_last' if channels_last else 'NCHW (contiguous)'} weights and inputs.",
        "GFLOPs: one image, forward, convolutions and matrix products as counted by torch.utils.flop_counter, "
        "a multiply-add counted as 2 FLOPs.",
        "Peak MiB: memory one warm call (batch as above) adds at its peak: on a GPU max_memory_allocated above the "
        "allocated memory before; on the CPU the peak resident set (VmHWM, reset through /proc/self/clear_refs) "
        "above the resident set before, freed heap returned first (malloc_trim). Weights, gradients and AdamW "
        "state exist before the call and are not counted.",
        f"1-minute load average before / after: {load_before:.2f} / {load_after:.2f} ({os.cpu_count()} cores); "
        "a load above the thread count means other processes shared the CPU.",
    ]
    series = f"Speed and memory at {', '.join(f'{size}²' for size in sizes)}"
    if precision != "fp32" or channels_last:
        series += f", {mode_words(precision, channels_last)}"
    word = "GPU" if device.type == "cuda" else "CPU"
    title = f"Speed and memory at {', '.join(f'{size}²' for size in sizes)} on {word}"
    title += "" if precision == "fp32" and not channels_last else f", {mode_words(precision, channels_last)}"
    settings = {"sizes": sizes, "batch": batch, "repeats": repeats, "warmup": warmup, "precision": precision,
                "channels_last": channels_last, "device": device.type}  # fmt: skip
    return Result(series, title, [table(COLUMNS, rows)], notes, settings, (load_before, load_after))


def run(args: argparse.Namespace) -> list[Result]:
    """`speed`; `models` is its CPU run at one size (--size), fp32."""
    if args.command == "models":
        return [speed([args.size], args.batch, args.repeats, args.warmup, device=torch.device("cpu"))]
    return [speed(args.sizes, args.batch, args.repeats, args.warmup, args.precision, args.channels_last)]
