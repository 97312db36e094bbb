"""The `memory` benchmark: peak resident memory of `segattn infer --slide WINDOW` (CPU, one
subprocess per image) on one synthetic N×N RGB PNG per size, next to the image's and its label
map's own sizes; the config's network untrained (memory, not accuracy)."""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from segattn import checkpoint
from segattn.data.synthetic import CATEGORIES
from segattn.data.transforms import eval_pipeline, serialize
from segattn.models import build_model
from segattn.sliding import window_starts
from segattn.viz import default_palette

from . import REPO
from .contenders import load_config
from .machine import load_average
from .records import Result, table

COLUMNS = [
    "image", "windows", "image MB (uint8)", "label map MB", "peak RSS MB", "peak / (image + label map)",
    "peak − runtime − image − label map, MB", "wall s",
]  # fmt: skip


def synthetic_scan(path: Path, side: int) -> None:
    """Writes a side×side RGB PNG of smooth gradients under filled circles and squares, which
    PNG compresses well, so that even 20 000² writes in seconds (cv2, compression level 1)."""
    ramp = (np.arange(side) * 255 // max(side - 1, 1)).astype(np.uint8)
    image = np.empty((side, side, 3), np.uint8)
    image[..., 0], image[..., 1], image[..., 2] = ramp[None, :], ramp[:, None], 128
    rng = np.random.default_rng(0)
    for _ in range(200):
        x, y = (int(v) for v in rng.integers(0, side, 2))
        radius = int(rng.integers(side // 100 + 1, side // 20 + 2))
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            cv2.circle(image, (x, y), radius, colour, -1)
        else:
            cv2.rectangle(image, (x - radius, y - radius), (x + radius, y + radius), colour, -1)
    if not cv2.imwrite(str(path), image, [cv2.IMWRITE_PNG_COMPRESSION, 1]):
        raise SystemExit(f"tools/benchmark.py memory: could not write {path}")


def untrained_checkpoint(path: Path, config: str) -> int:
    """configs/<config>.yaml's network, seeded and untrained, with the synthetic shapes' classes and
    the ImageNet evaluation transform (the demo's), as a checkpoint `segattn infer` reads; returns
    the class count."""
    own = load_config(config)["model"]
    classes = ["background", *(category["name"] for category in CATEGORIES)]
    torch.manual_seed(0)
    net = build_model(own["model"], num_classes=len(classes), in_channels=3, **own["model_args"])
    palette, transform = default_palette(len(classes)), serialize(eval_pipeline("imagenet", 3))
    record = checkpoint.make_record(own["model"], own["model_args"], 3, classes, palette, transform)
    checkpoint.save(path, net.state_dict(), record)
    return len(classes)


def child_peak(command: list[str]) -> tuple[float, int]:
    """Runs `command` from the repository root, with this checkout's segattn first on the path;
    (wall seconds, its peak resident set in bytes). The peak is this child's own (os.wait4's
    rusage), where RUSAGE_CHILDREN gives the largest of all children so far."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    with tempfile.TemporaryFile("w+") as log:
        start = time.perf_counter()
        child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=env)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode != 0:
            log.seek(0)
            raise SystemExit(f"{shlex.join(command)} failed ({child.returncode}):\n{log.read()[-3000:]}")
    return seconds, usage.ru_maxrss * 1024  # Linux reports KiB


def memory(sizes: list[int], window: int, batch: int, config: str) -> Result:
    """Peak RSS (MB) of `segattn infer --slide window` on one synthetic size² PNG per size, against
    the image's uint8 bytes plus its label map's; also the runtime alone (one window-sized image)."""
    mb = 1e6
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        classes = untrained_checkpoint(folder / "model.ckpt", config)
        infer = [sys.executable, "-m", "segattn.cli", "infer", "--ckpt", str(folder / "model.ckpt"), "--slide",
                 str(window), "--batch-size", str(batch), "--workers", "0", "--device", "cpu", "--overwrite",
                 "--output", str(folder / "out")]  # fmt: skip
        runtime, load_before = None, load_average()
        for side in [window, *sizes]:  # the first: one window, the runtime's own memory
            scan = folder / f"scan{side}.png"
            synthetic_scan(scan, side)
            seconds, peak = child_peak([*infer, "--input", str(scan)])
            scan.unlink()
            if runtime is None:
                runtime = peak
                continue
            image, labels = side * side * 3, side * side
            count = len(window_starts(side, window, int(window * 0.75))) ** 2
            rows.append(
                [f"{side:,}²", f"{count:,}", f"{image / mb:,.0f}", f"{labels / mb:,.0f}", f"{peak / mb:,.0f}",
                 f"{peak / (image + labels):.2f}", f"{(peak - runtime - image - labels) / mb:,.0f}", f"{seconds:,.0f}"]
            )  # fmt: skip
    load_after = load_average()
    strips = ", ".join(f"{2 * (classes + 1) * window * side * 4 / mb:,.0f} MB at {side:,}²" for side in sizes)
    notes = [
        f"`segattn infer --slide {window} --batch-size {batch} --workers 0 --device cpu` in a subprocess per image "
        f"(overlap 0.25, Gaussian blending); configs/{config}.yaml's network untrained, {classes} classes, the "
        "ImageNet evaluation transform; inputs: synthetic RGB PNGs (gradients and filled shapes).",
        "Peak RSS: the child's maximum resident set (os.wait4's ru_maxrss), decoding, inference and writing the "
        "palette PNG included. Image MB: H × W × 3 bytes as decoded; label map MB: H × W bytes (uint8).",
        f"Runtime: the same command on one {window}² image (one window), {runtime / mb:,.0f} MB: Python, torch, "
        "the network and one window's forward.",
        "The bound: the image as decoded, the label map, one batch of windows through the network, and strips "
        f"of (K + 1) float32 rows one window high across the width (twice, while a band is moved up: {strips}); "
        "the last column is what the run held beyond the image, the label map and the runtime.",
        "--workers 0: with DataLoader workers the image is decoded in a worker and handed over through shared "
        "memory, which ru_maxrss of one process does not show.",
        f"1-minute load average before / after: {load_before:.2f} / {load_after:.2f} ({os.cpu_count()} cores); "
        "a load above the core count means other processes shared the CPU (wall times, not memory).",
    ]
    series = f"Memory of the sliding window (--slide {window})"
    settings = {"sizes": sizes, "window": window, "batch": batch, "config": config}
    return Result(series, f"{series} on CPU", [table(COLUMNS, rows)], notes, settings, (load_before, load_after))


def run(args: argparse.Namespace) -> list[Result]:
    """`memory`."""
    return [memory(args.sizes, args.window, args.batch, args.config)]
