"""The timing harness every benchmark shares: interleaved median seconds, GPU synchronisation,
autocast, forward / training steps, throughput, peak memory, FLOPs and parameter counts."""

from __future__ import annotations

import ctypes
import functools
import os
import statistics
import time
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16}


def millions(model: nn.Module) -> float:
    """Parameters, in millions."""
    return sum(p.numel() for p in model.parameters()) / 1e6


def count_gflops(model: nn.Module, size: int) -> float:
    """GFLOPs of one forward pass of one 3×size×size image in eval mode, as counted by
    torch.utils.flop_counter (convolutions and matrix products; a multiply-add is 2 FLOPs)."""
    model.eval()
    device = next(model.parameters()).device
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.randn(1, 3, size, size, device=device))
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


def synchronized(call: Callable[[], object]) -> Callable[[], None]:
    """`call`, then a wait for the GPU to finish, so that a timing includes its work."""

    def run() -> None:
        call()
        torch.cuda.synchronize()

    return run


def autocast(x: torch.Tensor, dtype: torch.dtype) -> Any:
    """torch.autocast to `dtype` on x's device; a no-op for float32."""
    return torch.autocast(x.device.type, dtype=dtype, enabled=dtype != torch.float32)


def forward(model: nn.Module, x: torch.Tensor, dtype: torch.dtype = torch.float32) -> None:
    """One eval-mode forward of x (N×C×H×W) under no_grad and autocast to `dtype`."""
    model.eval()
    with torch.no_grad(), autocast(x, dtype):
        model(x)


def train_step(
    model: nn.Module,
    x: torch.Tensor,
    optimizer: torch.optim.Optimizer | None = None,
    dtype: torch.dtype = torch.float32,
) -> None:
    """Forward (under autocast to `dtype`) + backward (of the logits' mean) in train mode, then the
    optimiser's step if one is given; float32 weights and gradients, as Lightning's bf16-mixed."""
    model.train()
    model.zero_grad(set_to_none=True)
    with autocast(x, dtype):
        loss = model(x).float().mean()
    loss.backward()
    if optimizer is not None:
        optimizer.step()


def measure_throughput(
    models: dict[str, nn.Module],
    x: torch.Tensor,
    repeats: int,
    warmup: int,
    optimizers: dict[str, torch.optim.Optimizer] | None = None,
    dtype: torch.dtype = torch.float32,
) -> dict[str, tuple[float, float]]:
    """{name: (forward img/s, training img/s)}: medians over `repeats` rounds; each round runs every
    model once in turn (interleaved), after `warmup` untimed rounds. A training call is forward +
    backward, and the model's optimiser step where `optimizers` names one; both under autocast to `dtype`."""
    calls: dict[Hashable, Callable[[], object]] = {}
    for name, model in models.items():
        calls[name, "forward"] = functools.partial(forward, model, x, dtype)
        calls[name, "train"] = functools.partial(train_step, model, x, (optimizers or {}).get(name), dtype)
    if x.is_cuda:
        calls = {key: synchronized(call) for key, call in calls.items()}
    seconds = median_seconds(calls, repeats, warmup)
    return {name: (len(x) / seconds[name, "forward"], len(x) / seconds[name, "train"]) for name in models}


def ratio(value: float, reference: float | None) -> str:
    """value ÷ reference as "1.23×" ("–" without a reference)."""
    return f"{value / reference:.2f}×" if reference else "–"


def peak_memory_mib(call: Callable[[], object], device: torch.device) -> float | None:
    """Memory one call adds at its peak, MiB. GPU: max_memory_allocated above the memory allocated
    before. CPU (Linux): the peak resident set above the one before, after returning freed heap
    pages to the system (malloc_trim); None where /proc/self/clear_refs cannot reset the peak."""
    if device.type == "cuda":
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        call()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - before) / 2**20
    status = Path("/proc/self/status")

    def kib(field: str) -> int:
        line = next(line for line in status.read_text().splitlines() if line.startswith(f"{field}:"))
        return int(line.split()[1])

    try:
        getattr(ctypes.CDLL(None), "malloc_trim", lambda pad: 0)(0)
        before = kib("VmRSS")
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM, the peak, to the current size
    except OSError:
        return None
    call()
    return (kib("VmHWM") - before) / 1024


def timing_notes(repeats: int, load_before: float, load_after: float) -> list[str]:
    """The notes of an interleaved CPU timing: rounds, threads, the load around it."""
    return [
        f"Median of {repeats} interleaved rounds after a warm-up round; {torch.get_num_threads()} CPU threads.",
        f"1-minute load average before / after the timing: {load_before:.2f} / {load_after:.2f} "
        f"({os.cpu_count()} cores); a load above the thread count means other processes shared the CPU.",
    ]
