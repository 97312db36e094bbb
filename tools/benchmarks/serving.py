"""The `serving` benchmark: `segattn serve` under 1, 8 and 32 concurrent clients, with LitServe's
dynamic batching and without it, against a loop that answers one request at a time in-process
over the same Segmenter (decode, predict, encode the PNG: what the server does per request, less
HTTP). Throughput and p50 / p99 latency per request; the config's network untrained (speed, not
accuracy), on the CPU or, with --accelerator cuda, a GPU."""

from __future__ import annotations

import argparse
import io
import os
import statistics
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image
from serve_page import multipart, running_server

from segattn import Segmenter
from segattn.data.io import decode_bytes, label_map_png, match_channels

from .machine import load_average
from .memory import untrained_checkpoint
from .records import Result, table

COLUMNS = ["way", "clients", "requests/s", "p50 ms", "p99 ms", "× the loop"]
Form = tuple[bytes, dict[str, str]]  # a multipart body and its header


def images(count: int, side: int) -> list[bytes]:
    """`count` distinct side×side RGB PNGs (smooth noise, as photos compress)."""
    rng = np.random.default_rng(0)
    encoded = []
    for _ in range(count):
        small = rng.integers(0, 256, (side // 8, side // 8, 3), dtype=np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(small).resize((side, side), Image.BILINEAR).save(buffer, format="PNG")
        encoded.append(buffer.getvalue())
    return encoded


def post(url: str, form: Form) -> float:
    """Seconds one POST /predict took, its answer read; a failure stops the benchmark."""
    body, headers = form
    start = time.perf_counter()
    with urllib.request.urlopen(urllib.request.Request(f"{url}/predict", body, headers), timeout=300) as answer:
        if answer.status != 200:
            raise SystemExit(f"tools/benchmark.py serving: POST /predict answered {answer.status}")
        answer.read()
    return time.perf_counter() - start


def clients(url: str, forms: list[Form], count: int) -> tuple[float, list[float]]:
    """(seconds, each request's latency) of `count` clients sending the forms, each its share."""
    post(url, forms[0])  # warm: the worker's first forward
    start = time.perf_counter()
    with ThreadPoolExecutor(count) as pool:
        latencies = list(pool.map(lambda form: post(url, form), forms))
    return time.perf_counter() - start, latencies


def loop(segmenter: Segmenter, pngs: list[bytes]) -> tuple[float, list[float]]:
    """(seconds, each request's time) answering one request at a time in this process."""
    latencies = []
    start = time.perf_counter()
    for png in pngs:
        began = time.perf_counter()
        image = match_channels(decode_bytes(png, "request"), segmenter.in_channels, "request")
        label_map_png(segmenter.predict(image, batch_size=1)[0], segmenter.palette)
        latencies.append(time.perf_counter() - began)
    return time.perf_counter() - start, latencies


def row(way: str, count: int, seconds: float, latencies: list[float], base: float | None) -> list[str]:
    rate = len(latencies) / seconds
    p50, p99 = (1000 * q for q in (statistics.median(latencies), float(np.percentile(latencies, 99))))
    ratio = "1.00×" if base is None else f"{rate / base:.2f}×"
    return [way, str(count), f"{rate:.1f}", f"{p50:.0f}", f"{p99:.0f}", ratio]


def run(args: argparse.Namespace) -> list[Result]:
    """`serving`."""
    pngs = images(args.requests, args.size)
    forms = [multipart(png, "x.png") for png in pngs]
    device = "cuda" if args.accelerator == "cuda" else "cpu"
    load_before = load_average()
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = Path(tmp) / "model.ckpt"
        untrained_checkpoint(ckpt, args.config)
        segmenter = Segmenter.from_checkpoint(ckpt, device=device)
        loop(segmenter, pngs[:2])  # warm
        seconds, latencies = loop(segmenter, pngs)
        base = len(latencies) / seconds
        rows = [row("one request at a time, in process", 1, seconds, latencies, None)]
        del segmenter
        for batch in (args.max_batch_size, 1):
            way = f"segattn serve, batches ≤ {batch}" if batch > 1 else "segattn serve, no batching"
            options = ["--accelerator", args.accelerator, "--devices", "1", "--max-batch-size", str(batch)]
            with running_server(ckpt, *options, "--batch-timeout", str(args.batch_timeout)) as url:
                for count in args.clients:
                    rows.append(row(way, count, *clients(url, forms, count), base))
    load_after = load_average()
    notes = [
        f"{args.requests} distinct {args.size}² RGB PNGs per row, each POSTed once as a multipart form (urllib, "
        f"a thread per client); configs/{args.config}.yaml's network untrained; one worker on {device}.",
        f"Batching: LitServe gathers up to --max-batch-size requests arriving within --batch-timeout "
        f"{args.batch_timeout} s into one Segmenter.predict; `no batching` is --max-batch-size 1.",
        "Latency: from sending a request to reading its whole answer, queueing included; the loop's is one "
        "decode + predict + PNG encode.",
        f"1-minute load average before / after: {load_before:.2f} / {load_after:.2f} ({os.cpu_count()} cores): the "
        "clients, the server's HTTP process and its worker share these cores.",
    ]
    series = f"Serving: concurrent clients, {args.size}² images"
    settings = {"requests": args.requests, "size": args.size, "clients": args.clients, "config": args.config,
                "max_batch_size": args.max_batch_size, "batch_timeout": args.batch_timeout,
                "accelerator": args.accelerator}  # fmt: skip
    title = f"{series} on {'GPU' if device == 'cuda' else 'CPU'}"
    return [Result(series, title, [table(COLUMNS, rows, "lrrrrr")], notes, settings, (load_before, load_after))]
