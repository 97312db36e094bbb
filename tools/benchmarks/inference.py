"""The `inference` benchmark on the CPU: Segmenter.predict images/s of a config's network next to
plain loops over MONAI's AttentionUnet of the same widths (with its sliding_window_inference) and
smp's Unet of a similar width, on the same images. `--device cuda` runs gpu_inference.py."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from segattn.data.base import image_to_tensor
from segattn.data.transforms import eval_pipeline
from segattn.inference import Segmenter
from segattn.models import build_model

from .contenders import MONAI_MISSING, NUM_CLASSES, build_contender, load_config, nearest_smp, peer
from .harness import median_seconds, timing_notes
from .machine import load_average
from .records import Result, table


class InferenceSetup(NamedTuple):
    """What both inference benchmarks run on: seeded random uint8 RGB arrays (size×size×3), the
    ImageNet eval transform, configs/<config>.yaml's network (2 classes, random weights, eval mode)
    and that config's model section; `rng` draws further inputs."""

    rng: np.random.Generator
    arrays: list[np.ndarray]
    transform: Any
    net: nn.Module
    model_section: dict[str, Any]

    def segmenter(self, device: str | torch.device, precision: str = "auto", compile: bool = False) -> Segmenter:
        """A Segmenter over the network, two classes."""
        return Segmenter(self.net, ["a", "b"], self.transform, [[0] * 3] * 2, 3, device, precision, compile)

    def normalised(self, image: np.ndarray) -> torch.Tensor:
        """An H×W×3 uint8 array through the eval transform, as a 3×H×W float tensor."""
        return image_to_tensor(self.transform(image=image)["image"])


def inference_setup(config: str, images: int, size: int) -> InferenceSetup:
    """`images` seeded random size×size RGB arrays and configs/<config>.yaml's network."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    arrays = [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(images)]
    own = load_config(config)["model"]
    net = build_model(own["model"], num_classes=NUM_CLASSES, in_channels=3, **own["model_args"]).eval()
    return InferenceSetup(rng, arrays, eval_pipeline("imagenet", 3), net, own)


def monai_slider(roi: int, overlap: float) -> Callable[[torch.Tensor, nn.Module], torch.Tensor] | None:
    """MONAI's sliding_window_inference at roi×roi windows, 4 at a time (None without MONAI)."""
    try:  # optional: the `bench` extra
        from monai.inferers import sliding_window_inference
    except ImportError:
        return None
    return lambda batch, model: sliding_window_inference(batch, (roi, roi), 4, model, overlap=overlap)


def inference(config: str, images: int, size: int, repeats: int) -> Result:
    """Images/s of Segmenter.predict of configs/<config>.yaml's network vs plain loops over MONAI
    AttentionUnet of the same widths (+ sliding_window_inference) and smp Unet, on the same
    `images` RGB images of size×size, CPU."""
    setup = inference_setup(config, images, size)
    arrays = setup.arrays
    tensors = [setup.normalised(a) for a in arrays]
    segmenter = setup.segmenter("cpu")
    widths = tuple(setup.model_section["model_args"]["widths"])
    monai_name = f"MONAI AttentionUnet {widths[0]}–{widths[-1]}"
    smp_peer = nearest_smp(setup.model_section)
    smp_unet = build_contender(smp_peer, NUM_CLASSES, 3).eval()
    roi, overlap = size // 2, 0.25
    slide = monai_slider(roi, overlap)

    def loop(model: nn.Module, sliding: bool) -> Callable[[], None]:
        def call() -> None:
            with torch.inference_mode():
                for x in tensors:
                    logits = slide(x[None], model) if sliding else model(x[None])
                    logits.argmax(1).numpy()

        return call

    candidates: dict[Any, Callable[[], object]] = {
        f"segattn Segmenter.predict, {config} (batch 4)": lambda: segmenter.predict(arrays, batch_size=4),
        f"segattn Segmenter.predict, {config}, slide {roi}/{overlap}": lambda: segmenter.predict(
            arrays, batch_size=4, slide=(roi, overlap)
        ),
    }
    monai = build_contender(peer(setup.model_section, "MONAI AttentionUnet"), NUM_CLASSES, 3)
    notes = []
    if monai is None or slide is None:
        notes.append(f"MONAI rows skipped: {MONAI_MISSING}.")
    else:
        monai.eval()
        candidates[f"{monai_name}, sliding_window_inference {roi}/{overlap}, plain loop"] = loop(monai, True)
        candidates[f"{monai_name}, whole image, plain loop"] = loop(monai, False)
    candidates[f"{smp_peer.name}, whole image, plain loop"] = loop(smp_unet, False)
    load_before = load_average()
    seconds = median_seconds(candidates, repeats)
    load_after = load_average()
    ours = images / seconds[next(iter(candidates))]
    rows = [[str(name), f"{images / t:.2f}", f"{ours / (images / t):.2f}×"] for name, t in seconds.items()]
    notes += [
        f"{images} RGB images {size}×{size} (uint8 arrays in memory), {NUM_CLASSES} classes, label maps out, CPU; "
        "normalisation included for segattn (its eval transform) and done beforehand for the plain loops.",
        f"MONAI's sliding_window_inference: roi {roi}×{roi}, sw_batch_size 4, overlap {overlap} (MONAI's default "
        "blending); the whole-image MONAI loop is shown too, for the network alone.",
        *timing_notes(repeats, load_before, load_after),
    ]
    series = f"Inference at {size}²"
    columns = ["pipeline", "images/s", "segattn Segmenter.predict is faster by"]
    settings = {"config": config, "images": images, "size": size, "repeats": repeats, "device": "cpu"}
    return Result(series, f"{series} on CPU", [table(columns, rows)], notes, settings, (load_before, load_after))


def run(args: argparse.Namespace) -> list[Result]:
    """`inference` on the CPU (the GPU's: gpu_inference.run)."""
    return [inference(args.config or "attunet_small", args.images or 8, args.size, args.repeats)]
