"""The `inference --device cuda` benchmark: Segmenter.predict on the GPU (fp32; bf16 +
channels_last; + compile; + workers) against the fp32 plain loop over the same network, on size²
images and one big² image through the sliding window, with peak GPU memory; MONAI's AttentionUnet
of the same widths through the same loops, and the ratios to it."""

from __future__ import annotations

import argparse
import copy
from collections.abc import Callable, Hashable

import numpy as np
import torch
from torch import nn

from segattn.errors import InputError
from segattn.sliding import sliding_window

from .contenders import MONAI_MISSING, NUM_CLASSES, build_contender, peer
from .harness import autocast, median_seconds, millions, peak_memory_mib, ratio, synchronized
from .inference import inference_setup
from .records import Result, table

MONAI_ROW = "MONAI AttentionUnet, "  # the MONAI rows: this + the segattn row they mirror


def monai_comparison(rates: dict[Hashable, float], size: int) -> str:
    """The ratios of segattn to MONAI's AttentionUnet on the size² images (`rates`: images/s of
    each of their pipelines that ran): each MONAI row against the segattn row it mirrors (the same
    loop), and Segmenter.predict (uint8 arrays in, label maps out) against MONAI's fastest row;
    pipelines that failed are left out."""
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


def gpu_inference(config: str, images: int, size: int, big: int, batch: int, repeats: int) -> Result:
    """Images/s and peak GPU MiB of each pipeline on `images` RGB size² images and on one big²
    image (sliding window, size² windows, overlap 0.25); see the module's docstring."""
    device = torch.device("cuda")
    setup = inference_setup(config, images, size)
    arrays, net, normalised = setup.arrays, setup.net, setup.normalised
    huge = setup.rng.integers(0, 256, (big, big, 3), dtype=np.uint8)
    plain = copy.deepcopy(net).to(device)
    window = (size, 0.25)
    notes: list[str] = []

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
    monai = build_contender(peer(setup.model_section, "MONAI AttentionUnet"), NUM_CLASSES, 3)
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
                normalised(huge)[None], lambda w: plain(w).softmax(1), size, 0.25, batch,
                device=device, output_device=device,
            )  # fmt: skip
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
    rows: list[list[str]] = []
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
                rows.append([label, str(name), "fails (see notes)", "–", "–"])
                notes.append(f"{label}, {name}: {failures[name]}")
                continue
            speed = rates[name] = count / seconds[name]
            rows.append([label, str(name), f"{speed:.2f}", ratio(speed, reference), f"{memory[name]:.0f}"])
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
    series = f"Inference on the GPU: {images} × {size}² and one {big}² image"
    columns = ["input", "pipeline", "images/s", "vs fp32 plain loop", "peak GPU MiB"]
    settings = {"config": config, "images": images, "size": size, "big": big, "batch": batch, "repeats": repeats,
                "device": "cuda"}  # fmt: skip
    title = f"{series} ({torch.cuda.get_device_name()})"
    return Result(series, title, [table(columns, rows, "llrrr")], notes, settings)


def run(args: argparse.Namespace) -> list[Result]:
    """`inference --device cuda`."""
    return [gpu_inference(args.config or "drive", args.images or 256, args.size, args.big, args.batch, args.repeats)]
