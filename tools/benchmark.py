"""Benchmarks, one subcommand each; every printed table can be appended to docs/benchmarks.md.

python tools/benchmark.py models [--size 256] [--batch 2] [--repeats 5] [--write]
    parameters, GFLOPs and CPU forward / forward+backward throughput of segattn's Attention
    U-Nets, MONAI's AttentionUnet (optional: the `bench` extra) and smp's Unet, side by side.
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
python tools/benchmark.py ablation [--steps 300] [--crop 128] [--seeds 0] [--write]
    attunet_paper vs the same network with gates=False on DRIVE (configs/drive.yaml's fixed
    15 / 5 split, scored inside the field of view): same steps, crop, batch and seed.
python tools/benchmark.py data [--workers 2] [--write]
    batches/s of the COCO pipeline (configs/coco.yaml's data on ../shared/data/coco_tiny):
    first epoch (rasterising, filling the label cache) vs cached epochs vs no cache.
python tools/benchmark.py accuracy [--quick | --config-length] [--datasets drive membrane camvid] [--seeds 0 1]
        [--steps N] [--workers W] [--contenders NAME ...] [--jobs J] [--write]
    segattn (the data set config's model), the same without gates, smp Unet resnet34 (± scSE) and
    MONAI's AttentionUnet, each trained under one budget through SegmentationTask + SegDataModule
    from configs/<data set>.yaml and scored with SegMetrics on the val split: mean ± std over the
    seeds, parameters, training seconds, and who leads. --quick: a ≤ 10-minute version;
    --config-length: each config's own epochs, crop and batch (a GPU's work); --jobs J trains J runs
    at a time, each in its own process (on a GPU that training alone leaves waiting on data).
python tools/benchmark.py speed [--sizes 256 512] [--batch 2] [--repeats 3] [--precision bf16] [--channels-last]
        [--write]
    the same five networks (2 classes, RGB): training img/s (forward, backward, AdamW step),
    inference img/s, peak memory of each, parameters and GFLOPs, per input size; every network
    under the same precision (autocast) and memory format.
python tools/benchmark.py memory [--sizes 10000 20000] [--window 512] [--batch 4] [--config demo] [--write]
    peak resident memory of `segattn infer --slide WINDOW` (CPU, one subprocess per image) on one
    synthetic N×N RGB PNG per size, next to the image's and its label map's own sizes; the
    config's network untrained (memory, not accuracy).
"""

from __future__ import annotations

import argparse
import copy
import ctypes
import datetime
import functools
import logging
import multiprocessing
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Hashable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import lightning as L
import torch
import yaml
from lightning.pytorch.callbacks import Callback
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from segattn import cli_types
from segattn.data import SegDataModule
from segattn.data.config import load_datamodule
from segattn.errors import InputError
from segattn.models import build_model
from segattn.models.padding import PadToStride
from segattn.runlogs import quiet_lightning
from segattn.task import SegmentationTask

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "benchmarks.md"
DOC_INTRO = "# Benchmarks\n\nEvery figure here was printed by the command above it (tools/benchmark.py).\n"
NUM_CLASSES = 2
MONAI = "monai:AttentionUnet"  # a contender outside segattn's registry, built here
MONAI_MISSING = "MONAI is not installed (pip install -e '.[bench]')"
MONAI_ROW = "MONAI AttentionUnet, "  # the GPU inference table's MONAI rows: this + the segattn row they mirror


def load_config(name: str) -> dict[str, Any]:
    """configs/<name>.yaml."""
    return yaml.safe_load((REPO / "configs" / f"{name}.yaml").read_text())


def config_model_args(name: str) -> dict:
    """The model_args of configs/<name>.yaml."""
    return load_config(name)["model"]["model_args"]


def monai_attention_unet(
    channels: Sequence[int], in_channels: int = 3, num_classes: int = NUM_CLASSES
) -> nn.Module | None:
    """MONAI's 2-D AttentionUnet with `channels`, padded to its stride so that any H×W works
    (None when MONAI is not installed)."""
    try:
        from monai.networks.nets import AttentionUnet
    except ImportError:
        return None
    strides = (2,) * (len(channels) - 1)
    net = AttentionUnet(
        spatial_dims=2, in_channels=in_channels, out_channels=num_classes, channels=channels, strides=strides
    )
    return PadToStride(net, 2 ** len(strides))


class Contender(NamedTuple):
    """A network of the `accuracy` and `speed` benchmarks: a `build_model` name (or MONAI) and its arguments."""

    name: str
    model: str
    model_args: dict[str, Any]


def contenders(own: dict[str, Any]) -> list[Contender]:
    """segattn's network of a config's `model` section, the same without gates, and its peers."""
    r34 = {"encoder_name": "resnet34", "encoder_weights": None}
    return [
        Contender("segattn", own["model"], own["model_args"]),
        Contender("segattn, gates off", own["model"], {**own["model_args"], "gates": False}),
        Contender("smp Unet r34", "smp:Unet", r34),
        Contender("smp Unet r34 scse", "smp:Unet", {**r34, "decoder_attention_type": "scse"}),
        Contender("MONAI AttentionUnet", MONAI, {"channels": (32, 64, 128, 256, 512)}),
    ]


def build_contender(contender: Contender, num_classes: int, in_channels: int) -> nn.Module | None:
    """The contender's network (None when its package is missing)."""
    if contender.model == MONAI:
        return monai_attention_unet(contender.model_args["channels"], in_channels, num_classes)
    return build_model(contender.model, num_classes=num_classes, in_channels=in_channels, **contender.model_args)


def build_all(builders: dict[str, Callable[[], nn.Module | None]]) -> tuple[dict[str, nn.Module], list[str]]:
    """({name: network} of the builders that could build, a note for each that could not)."""
    built, notes = {}, []
    for name, builder in builders.items():
        model = builder()
        if model is None:
            notes.append(f"{name}: skipped, {MONAI_MISSING}.")
        else:
            built[name] = model
    return built, notes


def millions(model: nn.Module) -> float:
    """Parameters, in millions."""
    return sum(p.numel() for p in model.parameters()) / 1e6


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
    return f"{value / reference:.2f}×" if reference else "–"


def models_table(size: int, batch: int, repeats: int, warmup: int) -> tuple[str, list[str]]:
    """(Markdown table, notes) of the `models` benchmark."""
    torch.manual_seed(0)
    candidates = model_candidates()
    built, notes = build_all({name: builder for name, _, builder in candidates})
    groups = {name: group for name, group, _ in candidates}
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
        fwd, train = speed[name]
        peer = monai.get(groups[name])
        lines.append(
            f"| {name} | {millions(model):.2f} | {flops[name]:.2f} | {fwd:.2f} | {train:.2f} "
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


def device_word() -> str:
    return "GPU" if torch.cuda.is_available() else "CPU"


def section(title: str, command: str, body: str) -> str:
    """A docs/benchmarks.md section: heading, command, machine, date, body."""
    return (
        f"## {title}\n\n"
        f"Command: `{command}`  \n"
        f"Machine: {machine()}  \n"
        f"Date: {datetime.date.today().isoformat()}\n\n"
        f"{body}\n"
    )


def append_section(path: Path, text: str) -> None:
    """Appends a section to `path`, created with an intro if absent."""
    path.parent.mkdir(parents=True, exist_ok=True)
    before = path.read_text() if path.is_file() else DOC_INTRO
    path.write_text(before + "\n" + text)


def run_models(args: argparse.Namespace, command: str) -> None:
    table, notes = models_table(args.size, args.batch, args.repeats, args.warmup)
    report(args, command, f"Models at {args.size}² on CPU", table, notes)


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
        candidates = {name: synchronized(call) for name, call in candidates.items()}
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


class InferenceSetup(NamedTuple):
    """What both inference tables run on: seeded random uint8 RGB arrays, the ImageNet eval
    transform, configs/<config>.yaml's network (2 classes, random weights, eval mode) and that
    config's model section; `rng` draws further inputs."""

    rng: Any
    arrays: list[Any]
    transform: Any
    net: nn.Module
    model_section: dict[str, Any]

    def segmenter(self, device: str | torch.device, precision: str = "auto", compile: bool = False) -> Any:
        from segattn.inference import Segmenter

        return Segmenter(self.net, ["a", "b"], self.transform, [[0] * 3] * 2, 3, device, precision, compile)


def inference_setup(config: str, images: int, size: int) -> InferenceSetup:
    import numpy as np

    from segattn.data.transforms import eval_pipeline

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    arrays = [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(images)]
    own = load_config(config)["model"]
    net = build_model(own["model"], num_classes=NUM_CLASSES, in_channels=3, **own["model_args"]).eval()
    return InferenceSetup(rng, arrays, eval_pipeline("imagenet", 3), net, own)


def inference_table(config: str, images: int, size: int, repeats: int) -> tuple[str, list[str]]:
    """Segmenter.predict of configs/<config>.yaml's network vs plain loops over MONAI AttentionUnet
    of the same widths (+ sliding_window_inference) and smp Unet, on the same `images` RGB images
    of size×size, CPU."""
    import segmentation_models_pytorch as smp

    from segattn.data.base import image_to_tensor

    setup = inference_setup(config, images, size)
    arrays = setup.arrays
    tensors = [image_to_tensor(setup.transform(image=a)["image"]) for a in arrays]
    segmenter = setup.segmenter("cpu")
    widths = tuple(setup.model_section["model_args"]["widths"])
    monai_name = f"MONAI AttentionUnet {widths[0]}–{widths[-1]}"
    # smp's Unet nearest in width: r18 with a 128–16 decoder next to widths up to 128, else the
    # accuracy benchmark's r34 (its default 256–16 decoder)
    small = widths[-1] <= 128
    smp_name = "smp Unet resnet18 (decoder 128–16)" if small else "smp Unet resnet34"
    smp_args = {"decoder_channels": (128, 64, 32, 16, 16)} if small else {}
    smp_unet = smp.Unet("resnet18" if small else "resnet34", encoder_weights=None, classes=NUM_CLASSES, **smp_args)
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
        f"segattn Segmenter.predict, {config} (batch 4)": lambda: segmenter.predict(arrays, batch_size=4),
        f"segattn Segmenter.predict, {config}, slide {roi}/{overlap}": lambda: segmenter.predict(
            arrays, batch_size=4, slide=(roi, overlap)
        ),
    }
    monai = monai_attention_unet(widths)
    notes = []
    if monai is None:
        notes.append(f"MONAI rows skipped: {MONAI_MISSING}.")
    else:
        monai.eval()
        candidates[f"{monai_name}, sliding_window_inference {roi}/{overlap}, plain loop"] = loop(monai, True)
        candidates[f"{monai_name}, whole image, plain loop"] = loop(monai, False)
    candidates[f"{smp_name}, whole image, plain loop"] = loop(smp_unet, False)
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


def gpu_inference_table(
    config: str, images: int, size: int, big: int, batch: int, repeats: int
) -> tuple[str, list[str]]:
    """Segmenter.predict on the GPU (fp32; bf16 + channels_last; + torch.compile; + DataLoader
    workers) against the fp32 plain loop over the same network, on `images` RGB size² images and
    on one big² image (sliding window), with peak GPU memory; MONAI's AttentionUnet of the same
    widths through the same loops (fp32 plain loop, network alone in fp32 and in bf16 +
    channels_last) on the size² images."""
    import numpy as np

    from segattn.data.base import image_to_tensor
    from segattn.sliding import sliding_window

    device = torch.device("cuda")
    setup = inference_setup(config, images, size)
    arrays, net = setup.arrays, setup.net
    huge = setup.rng.integers(0, 256, (big, big, 3), dtype=np.uint8)
    plain = copy.deepcopy(net).to(device)
    window = (size, 0.25)
    notes: list[str] = []

    def normalised(image: np.ndarray) -> torch.Tensor:
        return image_to_tensor(setup.transform(image=image)["image"])

    def plain_batches(model: nn.Module) -> Callable[[], None]:
        """The fp32 loop a user writes: normalise on the CPU, NCHW fp32 forward, argmax, to the CPU."""

        def call() -> None:
            with torch.inference_mode():
                for start in range(0, images, batch):
                    x = torch.stack([normalised(a) for a in arrays[start : start + batch]]).to(device)
                    model(x).argmax(1).cpu().numpy()

        return call

    on_gpu = [torch.stack([normalised(a) for a in arrays[i : i + batch]]).to(device) for i in range(0, images, batch)]

    def network_alone(model: nn.Module, dtype: torch.dtype = torch.float32) -> Callable[[], None]:
        """Forward + argmax of the normalised batches already on the GPU, under autocast to `dtype`;
        a channels_last network gets channels_last batches."""
        channels_last = next(model.parameters()).is_contiguous(memory_format=torch.channels_last)
        layout = torch.channels_last if channels_last else torch.contiguous_format
        batches = [x.contiguous(memory_format=layout) for x in on_gpu]

        def call() -> None:
            with torch.inference_mode(), autocast(batches[0], dtype):
                for x in batches:
                    model(x).argmax(1)

        return call

    # MONAI's network of the same widths through the same loops; each MONAI row is named after the
    # segattn row it mirrors, MONAI_ROW + that row's name
    monai = monai_attention_unet(tuple(setup.model_section["model_args"]["widths"]))
    mirrored: dict[str, Callable[[nn.Module], Callable[[], None]]] = {
        "fp32 plain loop (CPU normalisation, NCHW)": plain_batches,
        "fp32 network alone (normalised batches already on the GPU)": network_alone,
        "bf16 + channels_last network alone (BN not folded)": lambda model: network_alone(
            copy.deepcopy(model).to(memory_format=torch.channels_last), torch.bfloat16
        ),
    }
    own = {name: loop(plain) for name, loop in mirrored.items()}
    peers: dict[Hashable, Callable[[], object]] = {}
    if monai is None:
        notes.append(f"MONAI rows skipped: {MONAI_MISSING}.")
    else:
        monai = monai.eval().to(device)
        peers = {MONAI_ROW + name: loop(monai) for name, loop in mirrored.items()}

    def plain_slide() -> None:
        """The same loop over windows of the big image: segattn's sliding_window, fp32 NCHW network."""
        with torch.inference_mode():
            probs = sliding_window(
                normalised(huge)[None],
                lambda w: plain(w).softmax(1),
                size,
                0.25,
                batch,
                device=device,
                output_device=device,
            )
            probs[0].argmax(0).cpu().numpy()

    fp32, bf16 = setup.segmenter(device, "fp32"), setup.segmenter(device, "bf16")
    compiled = setup.segmenter(device, "bf16", compile=True)
    small: dict[Hashable, Callable[[], object]] = {
        **own,
        "Segmenter.predict fp32 (BN folded, channels_last)": lambda: fp32.predict(arrays, batch_size=batch),
        "Segmenter.predict bf16 + channels_last": lambda: bf16.predict(arrays, batch_size=batch),
        "Segmenter.predict bf16 + channels_last + compile": lambda: compiled.predict(arrays, batch_size=batch),
        "Segmenter.predict bf16 + channels_last, 4 workers": lambda: bf16.predict(arrays, batch_size=batch, workers=4),
        "Segmenter.predict bf16 + channels_last + compile, 4 workers": lambda: compiled.predict(
            arrays, batch_size=batch, workers=4
        ),
        **peers,
    }
    large: dict[Hashable, Callable[[], object]] = {
        f"fp32 plain loop, sliding window {size}/0.25": plain_slide,
        f"Segmenter.predict fp32, slide {size}/0.25": lambda: fp32.predict(huge, batch_size=batch, slide=window),
        f"Segmenter.predict bf16 + channels_last, slide {size}/0.25": lambda: bf16.predict(
            huge, batch_size=batch, slide=window
        ),
        f"Segmenter.predict bf16 + channels_last + compile, slide {size}/0.25": lambda: compiled.predict(
            huge, batch_size=batch, slide=window
        ),
        "Segmenter.predict bf16 + channels_last, whole image": lambda: bf16.predict(huge),
    }
    lines = [
        "| input | pipeline | images/s | vs fp32 plain loop | peak GPU MiB |",
        "|---|---|---:|---:|---:|",
    ]
    rates: dict[Hashable, float] = {}  # images/s of each pipeline that ran
    for label, count, candidates in ((f"{images} × {size}²", images, small), (f"1 × {big}²", 1, large)):
        calls = {name: synchronized(call) for name, call in candidates.items()}
        seconds, memory, failures = {}, {}, {}
        for name, call in calls.items():  # one at a time: a pipeline that fails is reported, not fatal
            try:
                memory[name] = peak_memory_mib(call, device)  # also the warm-up (compilation)
                seconds[name] = median_seconds({name: call}, repeats, warmup=0)[name]
            except (torch.OutOfMemoryError, InputError) as exc:
                failures[name] = str(exc).splitlines()[0]
                torch.cuda.empty_cache()
        reference = count / seconds[next(iter(calls))]
        for name in calls:
            if name in failures:
                lines.append(f"| {label} | {name} | fails (see notes) | – | – |")
                notes.append(f"{label}, {name}: {failures[name]}")
                continue
            speed = rates[name] = count / seconds[name]
            lines.append(f"| {label} | {name} | {speed:.2f} | {ratio(speed, reference)} | {memory[name]:.0f} |")
    if any(name in rates for name in peers):
        notes.append(monai_comparison({name: rates[name] for name in small if name in rates}, size))
    notes += [
        f"Network: configs/{config}.yaml's model ({millions(net):.2f} M parameters), {NUM_CLASSES} classes, random "
        f"weights; inputs: uint8 RGB arrays in memory (random pixels), label maps back on the CPU as numpy; batch "
        f"{batch} (images, or windows of the sliding window with Gaussian blending).",
        "Every pipeline normalises the same uint8 arrays with the checkpoint's evaluation transform (Albumentations "
        "Normalize, ImageNet statistics) except 'network alone', which times the forward and argmax of batches "
        "normalised and copied to the GPU beforehand: the ceiling of a loop that leaves the GPU no idle time.",
        f"images/s: count / median seconds over {repeats} timed calls, each ended by torch.cuda.synchronize; a first "
        "untimed call (which also compiles) measures peak memory: max_memory_allocated above the memory allocated "
        "before it. The fp32 rows use PyTorch's defaults (cuDNN may use TF32 for fp32 convolutions).",
    ]
    return "\n".join(lines), notes


def monai_comparison(rates: dict[Hashable, float], size: int) -> str:
    """The GPU inference table's ratios of segattn to MONAI's AttentionUnet on the size² images
    (`rates`: images/s of each of their pipelines that ran): each MONAI row against
    the segattn row it mirrors (the same loop), and Segmenter.predict (uint8 arrays in, label maps
    out) against MONAI's fastest row; pipelines that failed are left out."""
    monai = {str(name): rate for name, rate in rates.items() if str(name).startswith(MONAI_ROW)}
    mirrored = [
        f"{name.removeprefix(MONAI_ROW)} {rates[name.removeprefix(MONAI_ROW)] / rate:.2f}×"
        for name, rate in monai.items()
        if name.removeprefix(MONAI_ROW) in rates
    ]
    fastest = max(monai, key=monai.__getitem__)
    predict = [
        f"{name} {rate / monai[fastest]:.2f}×" for name, rate in rates.items() if str(name).startswith("Segmenter")
    ]
    return (
        f"segattn against MONAI's AttentionUnet of the same widths at {size}², the same loop on both: "
        f"{'; '.join(mirrored)}. Against MONAI's fastest row ({fastest.removeprefix(MONAI_ROW)}): "
        f"{'; '.join(predict)}."
    )


def data_table(workers: int, epochs: int) -> tuple[str, list[str]]:
    """Batches/s of configs/coco.yaml's training pipeline: cold cache, warm cache, no cache."""
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


class Plan(NamedTuple):
    """One data set's training budget, the same for every contender."""

    steps: int
    crop: int
    batch: int
    val_images: int | None = None  # score the first N val images; None: all
    workers: int | None = None  # DataLoader workers; None: the config's data.num_workers


class Run(NamedTuple):
    """One trained contender: headline val scores (fractions), parameters (M), training seconds,
    each segattn gate's mean α at the last training step ({} for networks without gates)."""

    contender: str
    seed: int
    scores: dict[str, float]
    params: float
    seconds: float
    alpha: dict[str, float]


class BenchmarkTask(SegmentationTask):
    """SegmentationTask without its checkpoint callback: the benchmarks score the trained network in memory."""

    def configure_callbacks(self) -> list[Callback]:
        return []


def headline_scores(logged: dict[str, float], classes: list[str]) -> dict[str, float]:
    """Two classes: the foreground's Dice (= 2·IoU / (1 + IoU), exactly) and mIoU; more: mIoU and aAcc."""
    if len(classes) == 2:
        iou = logged[f"val/IoU/{classes[1]}"]
        return {f"{classes[1]} Dice": 2 * iou / (1 + iou), "mIoU": logged["val/mIoU"]}
    return {"mIoU": logged["val/mIoU"], "aAcc": logged["val/aAcc"]}


def bench_data_config(config: dict[str, Any], plan: Plan, tmp: Path) -> Path:
    """tmp/data.yaml: the config's data section at the plan's crop, batch and workers."""
    data = {**config["data"], "crop_size": plan.crop, "batch_size": plan.batch}
    if plan.workers is not None:
        data["num_workers"] = plan.workers
    path = tmp / "data.yaml"
    path.write_text(yaml.safe_dump({"data": data}))
    return path


def bench_datamodule(config: dict[str, Any], plan: Plan, tmp: Path) -> SegDataModule:
    """The SegDataModule of the config's data section at the plan's crop and batch."""
    return load_datamodule(bench_data_config(config, plan, tmp))


def fit_and_score(
    config: dict[str, Any], datamodule: SegDataModule, contender: Contender, plan: Plan, seed: int, root: Path
) -> Run | None:
    """Trains the contender for plan.steps optimiser steps with the config's recipe (its model section
    but the network: loss, AdamW, warm-up + cosine; its trainer's determinism) and scores it on the
    val split by Trainer.validate (SegMetrics); None when its package is missing."""
    own = {**config["model"], "classes": datamodule.classes, "in_channels": datamodule.in_channels}
    L.seed_everything(seed, verbose=False)
    if contender.model == MONAI:
        net = build_contender(contender, len(datamodule.classes), datamodule.in_channels)
        if net is None:
            return None
        task = BenchmarkTask(**own)  # builds the config's network, replaced by MONAI's
        task.model = net
    else:
        task = BenchmarkTask(**{**own, "model": contender.model, "model_args": contender.model_args})
    L.seed_everything(seed, verbose=False)  # the same batches and augmentations for every contender
    trainer = L.Trainer(
        accelerator=config["trainer"].get("accelerator", "auto"),
        devices=1,
        deterministic=config["trainer"].get("deterministic", False),
        max_steps=plan.steps,
        max_epochs=-1,
        check_val_every_n_epoch=plan.steps + 1,  # no validation while fitting
        num_sanity_val_steps=0,
        limit_val_batches=1.0 if plan.val_images is None else -(-plan.val_images // datamodule.val_batch_size),
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=root,
    )
    start = time.perf_counter()
    trainer.fit(task, datamodule=datamodule)
    seconds = time.perf_counter() - start
    prefix = "train/alpha/"
    alpha = {k.removeprefix(prefix): float(v) for k, v in trainer.callback_metrics.items() if k.startswith(prefix)}
    results = trainer.validate(task, datamodule=datamodule, verbose=False)[0]
    logged = {key: float(value) for key, value in results.items()}
    return Run(contender.name, seed, headline_scores(logged, datamodule.classes), millions(task.model), seconds, alpha)


def fit_job(
    config: dict[str, Any], data_config: Path, contender: Contender, plan: Plan, seed: int, root: Path
) -> Run | None:
    """fit_and_score on the SegDataModule of `data_config` (a data.yaml), built here so that the
    run can be one of `run_jobs`' processes."""
    return fit_and_score(config, load_datamodule(data_config), contender, plan, seed, root)


Result = TypeVar("Result")


def quiet_training() -> None:
    """Once per process that trains: Lightning's tips, notices and per-run INFO lines off."""
    quiet_lightning()
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)


def start_job(jobs: int) -> None:
    """Starts each of `jobs` processes running at a time: quiet, with an equal share of the CPU threads."""
    quiet_training()
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // jobs))


def run_jobs(call: Callable[..., Result], calls: list[tuple], jobs: int = 1) -> Iterator[tuple[int, Result]]:
    """(i, call(*calls[i])) for every i, as each finishes: one after another in this process
    (jobs 1), or in `jobs` processes at a time, each with an equal share of the CPU threads.

    For a GPU that one training run leaves idle while it waits on its data (small networks,
    CPU-bound augmentation): the runs share it. Processes are spawned, not forked, since CUDA
    cannot be used in a forked child; `call` and its arguments must pickle. Every run is seeded
    on its own (fit_and_score), so a run scores the same alone or beside others."""
    if jobs == 1:
        for i, args in enumerate(calls):
            yield i, call(*args)
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(jobs, mp_context=context, initializer=start_job, initargs=(jobs,)) as pool:
        futures = {pool.submit(call, *args): i for i, args in enumerate(calls)}
        try:
            for future in as_completed(futures):
                yield futures[future], future.result()
        except BaseException:
            pool.shutdown(cancel_futures=True)  # a failed run: the runs not yet started are dropped
            raise


def train_contenders(
    name: str, candidates: list[Contender], plan: Plan, seeds: list[int], jobs: int = 1
) -> tuple[list[Run], list[str]]:
    """Runs of every contender and seed on configs/<name>.yaml's data (in that order), each printed
    as it finishes, `jobs` at a time (see run_jobs), and a note for each contender skipped."""
    config = load_config(name)
    pairs = [(contender, seed) for contender in candidates for seed in seeds]
    finished: dict[int, Run | None] = {}
    quiet_training()
    with tempfile.TemporaryDirectory() as tmp:
        data = bench_data_config(config, plan, Path(tmp))
        calls = [(config, data, c, plan, seed, Path(tmp) / f"run{i}") for i, (c, seed) in enumerate(pairs)]
        for i, run in run_jobs(fit_job, calls, jobs):
            finished[i] = run
            if run is not None:
                scores = ", ".join(f"{key} {100 * value:.2f}" for key, value in run.scores.items())
                print(f"  {name}, {run.contender}, seed {run.seed}: {run.seconds:.0f} s training; {scores}", flush=True)
    runs = [finished[i] for i in range(len(pairs)) if finished[i] is not None]
    skipped = dict.fromkeys(c.name for i, (c, _) in enumerate(pairs) if finished[i] is None)
    return runs, [f"{contender}: skipped, {MONAI_MISSING}." for contender in skipped]


def mean_spread(values: list[float]) -> str:
    """Mean (± sample standard deviation over ≥ 2 values) in percent."""
    spread = f" ± {100 * statistics.stdev(values):.2f}" if len(values) > 1 else ""
    return f"{100 * statistics.mean(values):.2f}{spread}"


def ablation_table(steps: int, crop: int, batch: int, seeds: list[int]) -> tuple[str, list[str]]:
    """Trains attunet_paper with gates on and off under one budget on DRIVE and scores each on the
    5 validation images (vessel Dice, mIoU; outside the field of view ignored)."""
    paper = config_model_args("attunet_paper")
    pair = [
        Contender("attunet_paper", "attention_unet", paper),
        Contender("attunet_paper, gates=False", "attention_unet", {**paper, "gates": False}),
    ]
    runs, _ = train_contenders("drive", pair, Plan(steps, crop, batch), seeds)
    lines = ["| network | seed | vessel Dice | mIoU | train s |", "|---|---:|---:|---:|---:|"]
    lines += [
        f"| {r.contender} | {r.seed} | {100 * r.scores['vessel Dice']:.2f} | {100 * r.scores['mIoU']:.2f} "
        f"| {r.seconds:.0f} |"
        for r in runs
    ]
    for contender in pair:
        mine = [r for r in runs if r.contender == contender.name]
        dice, miou = mean_spread([r.scores["vessel Dice"] for r in mine]), mean_spread([r.scores["mIoU"] for r in mine])
        lines.append(f"| {contender.name}, mean | – | {dice} | {miou} | – |")
    notes = [
        f"configs/drive.yaml data (train 21–35, val 36–40, medical preset, ImageNet normalisation), "
        f"attunet_paper's model_args with gates on / off; {steps} optimiser steps, {crop}×{crop} crops, batch {batch}, "
        f"AdamW lr 1e-3, warm-up + cosine; seeds {seeds}. Scored on the whole val images, inside the field of view.",
        "A short CPU budget: both networks are far from converged; the gap, not the level, is the figure.",
    ]
    return "\n".join(lines), notes


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


def plan_text(plan: Plan, seeds: list[int]) -> str:
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


def accuracy_section(
    name: str, plan: Plan, seeds: list[int], only: list[str] | None, jobs: int = 1
) -> tuple[str, list[str]]:
    """(Markdown table and leader lines, notes) of one data set of the `accuracy` benchmark; only:
    the contenders' names to train (None: all); jobs: runs at a time (run_jobs)."""
    config = load_config(name)
    images_dir = config["data"]["train"]["init_args"]["images_dir"]
    if not Path(images_dir).is_dir():
        return "", [f"{name}: skipped, {images_dir} not found (run from the repository root)."]
    chosen = [c for c in contenders(config["model"]) if only is None or c.name in only]
    runs, notes = train_contenders(name, chosen, plan, seeds, jobs)
    keys = list(runs[0].scores)
    lines = [
        f"**{name}**: {plan_text(plan, seeds)}",
        "",
        f"| network | params (M) | {' | '.join(keys)} | train s |",
        "|---|---:|" + "---:|" * len(keys) + "---:|",
    ]
    for contender in dict.fromkeys(r.contender for r in runs):
        mine = [r for r in runs if r.contender == contender]
        cells = " | ".join(mean_spread([r.scores[key] for r in mine]) for key in keys)
        lines.append(
            f"| {contender} | {mine[0].params:.2f} | {cells} | {statistics.mean(r.seconds for r in mine):.0f} |"
        )
    return "\n".join([*lines, "", *leader_lines(runs)]), [f"{name}: {note}" for note in notes]


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


def accuracy_report(
    datasets: list[str],
    plans: dict[str, Plan],
    seeds: list[int],
    budget: str,
    only: list[str] | None = None,
    jobs: int = 1,
) -> tuple[str, list[str]]:
    """(Markdown tables, notes) of the `accuracy` benchmark over the data sets; budget: "full",
    "quick" or "config length"; jobs: runs at a time (run_jobs)."""
    load_before = os.getloadavg()[0]
    sections, notes = [], []
    for name in datasets:
        section, skipped = accuracy_section(name, plans[name], seeds, only, jobs)
        sections += [section] if section else []
        notes += skipped
    load_after = os.getloadavg()[0]
    if jobs == 1:
        threads = f"{torch.get_num_threads()} CPU threads"
        caveat = "The runs are sequential, so other processes' load lands on some of them only"
    else:
        threads = f"{jobs} runs at a time (--jobs), sharing the device and {os.cpu_count()} CPU threads"
        caveat = "Runs beside each other slow each other down, so the seconds say little of a network's speed"
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
        "segattn: the config's model_args; gates off: the same with gates=False; smp Unet r34: smp.Unet, resnet34 "
        "encoder from scratch (encoder_weights None), ± decoder_attention_type scse; MONAI AttentionUnet: channels "
        "32–512, strides 2, padded to a multiple of 16.",
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
    return "\n\n".join(sections), notes


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


PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16}


def speed_table(
    sizes: list[int],
    batch: int,
    repeats: int,
    warmup: int,
    precision: str = "fp32",
    channels_last: bool = False,
    device: torch.device | None = None,
) -> tuple[str, list[str]]:
    """(Markdown table, notes) of the `speed` benchmark: the accuracy contenders (configs/drive.yaml's
    segattn), 2 classes, RGB input, every one under the same precision (autocast) and memory format,
    on `device` (default: the GPU if there is one)."""
    device = device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype, layout = PRECISIONS[precision], torch.channels_last if channels_last else torch.contiguous_format
    torch.manual_seed(0)
    candidates = contenders(load_config("drive")["model"])
    built, notes = build_all({c.name: functools.partial(build_contender, c, NUM_CLASSES, 3) for c in candidates})
    flops = {(name, size): count_gflops(model, size) for name, model in built.items() for size in sizes}
    built = {name: model.to(device, memory_format=layout) for name, model in built.items()}
    optimizers = {name: torch.optim.AdamW(model.parameters()) for name, model in built.items()}
    lines = [
        "| network | params (M) | input | GFLOPs | train img/s | infer img/s | train vs segattn | infer vs segattn "
        "| train peak MiB | infer peak MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    load_before = os.getloadavg()[0]
    for size in sizes:
        x = torch.randn(batch, 3, size, size, device=device).contiguous(memory_format=layout)
        speed = measure_throughput(built, x, repeats, warmup, optimizers, dtype)
        own_infer, own_train = speed.get("segattn", (None, None))
        for name, model in built.items():
            infer, train = speed[name]
            memory = [
                peak_memory_mib(functools.partial(train_step, model, x, optimizers[name], dtype), device),
                peak_memory_mib(functools.partial(forward, model, x, dtype), device),
            ]
            train_mib, infer_mib = ("–" if m is None else f"{m:.0f}" for m in memory)
            lines.append(
                f"| {name} | {millions(model):.2f} | {size}² | {flops[name, size]:.2f} | {train:.2f} | {infer:.2f} "
                f"| {ratio(train, own_train)} | {ratio(infer, own_infer)} | {train_mib} | {infer_mib} |"
            )
    load_after = os.getloadavg()[0]
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
    return "\n".join(lines), notes


def synthetic_scan(path: Path, side: int) -> None:
    """Writes a side×side RGB PNG of smooth gradients under filled circles and squares, which
    PNG compresses well, so that even 20 000² writes in seconds (cv2, compression level 1)."""
    import cv2
    import numpy as np

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
    from segattn import checkpoint
    from segattn.data.synthetic import CATEGORIES
    from segattn.data.transforms import eval_pipeline, serialize
    from segattn.viz import default_palette

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


def memory_table(sizes: list[int], window: int, batch: int, config: str) -> tuple[str, list[str]]:
    """Peak RSS of `segattn infer --slide window` on one synthetic size² PNG per size, against the
    image's uint8 bytes plus its label map's; also the runtime alone (one window-sized image)."""
    from segattn.sliding import window_starts

    mb = 1e6
    lines = [
        "| image | windows | image MB (uint8) | label map MB | peak RSS MB | peak / (image + label map) "
        "| peak − runtime − image − label map, MB | wall s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        classes = untrained_checkpoint(folder / "model.ckpt", config)
        infer = [sys.executable, "-m", "segattn.cli", "infer", "--ckpt", str(folder / "model.ckpt"), "--slide",
                 str(window), "--batch-size", str(batch), "--workers", "0", "--device", "cpu", "--overwrite",
                 "--output", str(folder / "out")]  # fmt: skip
        runtime, load_before = None, os.getloadavg()[0]
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
            lines.append(
                f"| {side:,}² | {count:,} | {image / mb:,.0f} | {labels / mb:,.0f} | {peak / mb:,.0f} "
                f"| {peak / (image + labels):.2f} | {(peak - runtime - image - labels) / mb:,.0f} | {seconds:,.0f} |"
            )
    load_after = os.getloadavg()[0]
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
    return "\n".join(lines), notes


def report(args: argparse.Namespace, command: str, title: str, table: str, notes: list[str]) -> None:
    """Prints the section (heading, command, machine, date, table, notes), the whole of what --write
    appends to docs/benchmarks.md, so that a run without --write can be pasted too."""
    text = section(title, command, table + "\n\n" + "\n".join(f"- {note}" for note in notes))
    print(text)
    if args.write:
        append_section(DOC, text)
        print(f"appended to {os.path.relpath(DOC, REPO)}")


def run_metrics(args: argparse.Namespace, command: str) -> None:
    devices = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]
    for device in devices:
        table, notes = metrics_table(args.repeats, device)
        report(args, command, f"Metrics: update+compute, 16 × 512², 19 classes, {device}", table, notes)


def run_inference(args: argparse.Namespace, command: str) -> None:
    if args.device == "cuda":
        images = args.images or 256
        table, notes = gpu_inference_table(
            args.config or "drive", images, args.size, args.big, args.batch, args.repeats
        )
        title = f"Inference on the GPU: {images} × {args.size}² and one {args.big}² image"
        report(args, command, f"{title} ({torch.cuda.get_device_name()})", table, notes)
        return
    table, notes = inference_table(args.config or "attunet_small", args.images or 8, args.size, args.repeats)
    report(args, command, f"Inference at {args.size}² on CPU", table, notes)


def run_ablation(args: argparse.Namespace, command: str) -> None:
    table, notes = ablation_table(args.steps, args.crop, args.batch, args.seeds)
    report(args, command, "Ablation: attention gates on DRIVE", table, notes)


def run_data(args: argparse.Namespace, command: str) -> None:
    table, notes = data_table(args.workers, args.epochs)
    report(args, command, f"Data: COCO pipeline, {args.workers} workers", table, notes)


def run_accuracy(args: argparse.Namespace, command: str) -> None:
    if args.config_length and args.steps:
        raise SystemExit("tools/benchmark.py accuracy: --steps and --config-length exclude each other")
    names = [c.name for c in contenders(load_config("drive")["model"])]  # the same five for every config
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
    table, notes = accuracy_report(args.datasets, plans, seeds, budget, args.contenders, args.jobs)
    report(args, command, f"Accuracy under one training budget ({budget}) on {device_word()}", table, notes)


def run_memory(args: argparse.Namespace, command: str) -> None:
    table, notes = memory_table(args.sizes, args.window, args.batch, args.config)
    report(args, command, f"Memory of the sliding window (--slide {args.window}) on CPU", table, notes)


def run_speed(args: argparse.Namespace, command: str) -> None:
    table, notes = speed_table(args.sizes, args.batch, args.repeats, args.warmup, args.precision, args.channels_last)
    sizes = ", ".join(f"{size}²" for size in args.sizes)
    mode = "" if args.precision == "fp32" and not args.channels_last else f", {speed_mode(args)}"
    report(args, command, f"Speed and memory at {sizes} on {device_word()}{mode}", table, notes)


def speed_mode(args: argparse.Namespace) -> str:
    """ "bf16 + channels_last" style words for the `speed` options."""
    return " + ".join([args.precision, *(["channels_last"] if args.channels_last else [])])


def config_name(text: str) -> str:
    """argparse type: the name of a configs/<name>.yaml (a path to one is taken too)."""
    name = Path(text).name.removesuffix(".yaml")
    if not (REPO / "configs" / f"{name}.yaml").is_file():
        known = sorted(p.stem for p in (REPO / "configs").glob("*.yaml"))
        raise argparse.ArgumentTypeError(f"no configs/{name}.yaml; expected one of {known}")
    return name


def distinct_seeds(parser: argparse.ArgumentParser, seeds: Sequence[int] | None) -> None:
    """A seed given twice would train the same run twice."""
    if seeds is not None and len(set(seeds)) != len(seeds):
        parser.error(f"--seeds: each seed once, got {list(seeds)}")


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
    models.add_argument("--size", type=cli_types.count, default=256, help="square input side (default 256)")
    models.add_argument("--batch", type=cli_types.count, default=2, help="images per timed call (default 2)")
    models.add_argument(
        "--repeats", type=cli_types.count, default=5, help="timed rounds; the median is reported (default 5)"
    )
    models.add_argument("--warmup", type=cli_types.non_negative, default=1, help="untimed rounds first (default 1)")
    metrics = command(sub, "metrics", "SegMetrics vs torchmetrics vs smp.metrics", run_metrics)
    metrics.add_argument("--repeats", type=cli_types.count, default=7)
    inference = command(sub, "inference", "Segmenter.predict vs MONAI and smp loops", run_inference)
    inference.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    inference.add_argument(
        "--images", type=cli_types.count, help="images of --size (default 8 on the CPU, 256 on the GPU)"
    )
    inference.add_argument(
        "--size", type=cli_types.count, default=512, help="image side; on the GPU also the window side"
    )
    inference.add_argument("--repeats", type=cli_types.count, default=3)
    inference.add_argument(
        "--config",
        type=config_name,
        help="name of the configs/<name>.yaml whose network runs (default attunet_small on the CPU, drive on the GPU)",
    )
    inference.add_argument("--big", type=cli_types.count, default=8192, help="GPU: side of the one large image")
    inference.add_argument("--batch", type=cli_types.count, default=16, help="GPU: images or windows per batch")
    ablation = command(sub, "ablation", "attunet_paper with and without gates on DRIVE, one budget", run_ablation)
    ablation.add_argument("--steps", type=cli_types.count, default=300)
    ablation.add_argument("--crop", type=cli_types.count, default=128)
    ablation.add_argument("--batch", type=cli_types.count, default=4)
    ablation.add_argument("--seeds", type=int, nargs="+", default=[0])
    data = command(sub, "data", "COCO pipeline batches/s: first epoch vs cached vs no cache", run_data)
    data.add_argument("--workers", type=cli_types.non_negative, default=2)
    data.add_argument("--epochs", type=cli_types.count, default=3)
    accuracy = command(sub, "accuracy", "segattn vs its peers trained under one budget on real data", run_accuracy)
    length = accuracy.add_mutually_exclusive_group()
    length.add_argument("--quick", action="store_true", help="the ≤ 10-minute budget (fewer steps, smaller crops)")
    length.add_argument(
        "--config-length",
        action="store_true",
        help="each config's own length, crop and batch (trainer.max_epochs; for a GPU: hours on a CPU)",
    )
    accuracy.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(DATASETS))
    accuracy.add_argument("--seeds", type=int, nargs="+", help="default: 0 1 (--quick: 0)")
    accuracy.add_argument(
        "--steps", type=cli_types.count, help="optimiser steps on every data set (default: the plan's)"
    )
    accuracy.add_argument(
        "--workers", type=cli_types.non_negative, help="DataLoader workers (default: the config's data.num_workers)"
    )
    accuracy.add_argument("--contenders", nargs="+", metavar="NAME", help="train only these (default: all five)")
    accuracy.add_argument(
        "--jobs", type=cli_types.count, default=1, help="training runs at a time, each in its own process (default 1)"
    )
    speed = command(sub, "speed", "training and inference img/s, peak memory, GFLOPs of the contenders", run_speed)
    speed.add_argument("--sizes", type=cli_types.count, nargs="+", default=[256, 512], help="square input sides")
    speed.add_argument("--batch", type=cli_types.count, default=2, help="images per timed call (default 2)")
    speed.add_argument(
        "--repeats", type=cli_types.count, default=3, help="timed rounds; the median is reported (default 3)"
    )
    speed.add_argument("--warmup", type=cli_types.non_negative, default=1, help="untimed rounds first (default 1)")
    speed.add_argument(
        "--precision", choices=list(PRECISIONS), default="fp32", help="autocast dtype for every network (default fp32)"
    )
    speed.add_argument("--channels-last", action="store_true", help="channels_last weights and inputs, every network")
    memory = command(sub, "memory", "peak RSS of segattn infer --slide on large synthetic images", run_memory)
    memory.add_argument("--sizes", type=cli_types.count, nargs="+", default=[10_000, 20_000], help="image sides")
    memory.add_argument("--window", type=cli_types.count, default=512, help="sliding-window side (default 512)")
    memory.add_argument("--batch", type=cli_types.count, default=4, help="windows per forward (default 4)")
    memory.add_argument(
        "--config", type=config_name, default="demo", help="configs/<name>.yaml whose network runs (default demo)"
    )
    args = parser.parse_args(argv)
    distinct_seeds(parser, getattr(args, "seeds", None))
    args.run(args, shlex.join(["python", "tools/benchmark.py", *argv]))


if __name__ == "__main__":
    main()
