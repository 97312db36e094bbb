"""What a record says of the machine that ran it (CPU model, cores, GPU, versions) and of its load."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

import torch


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (platform.processor() elsewhere)."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if "model name" in line]
        if names:
            return names[0]
    return platform.processor() or "unknown CPU"


def machine_info() -> dict[str, Any]:
    """{cpu, cores, gpu (name or None), torch, python, text}: `text` is the line a page shows."""
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else None
    info = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "gpu": gpu,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    text = f"{info['cpu']}, {info['cores']} cores, torch {info['torch']}, Python {info['python']}"
    return {**info, "text": f"{gpu}, {text}" if gpu else text}


def load_average() -> float:
    """The 1-minute load average."""
    return os.getloadavg()[0]


def device_word() -> str:
    """ "GPU" where torch sees one, else "CPU" (the word in the benchmarks' titles)."""
    return "GPU" if torch.cuda.is_available() else "CPU"


def machine_kind(machine: dict[str, Any]) -> str:
    """ "CPU", or the GPU's name: the runs of one kind are comparable, and a page shows the newest of each."""
    return machine.get("gpu") or "CPU"
