"""The `volumes` benchmark (issue #27's speed and memory goals for 3-D): Segmenter.predict's
sliding window on a volume against MONAI's `sliding_window_inference` with the same network and
weights (CPU, fp32), with the share of voxels whose labels agree; and the peak resident memory of
`segattn infer` on one large NIfTI volume (default tiling, untrained network)."""

from __future__ import annotations

import argparse
import functools
import os
import sys
import tempfile
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import torch

from segattn import checkpoint
from segattn.inference import Segmenter
from segattn.models import build_model
from segattn.viz import default_palette

from .harness import median_seconds, timing_notes
from .machine import load_average
from .memory import child_peak
from .records import Result, table

SEGATTN = "segattn Segmenter.predict"
MONAI = "MONAI sliding_window_inference"
SPEED_COLUMNS = ["method", "volume", "window", "volumes/s", "vs MONAI", "labels equal to MONAI's"]
MEMORY_COLUMNS = ["volume", "classes", "volume MB (int16)", "label map MB", "peak RSS MB", "peak GB", "wall s"]
CLASSES = 4


def network(classes: int, widths: list[int]) -> torch.nn.Module:
    """segattn's AttentionUNet, spatial_dims 3, one input channel, seeded, untrained, eval mode."""
    torch.manual_seed(0)
    return build_model("attention_unet", num_classes=classes, in_channels=1, spatial_dims=3, widths=widths).eval()


def monai_labels(model: torch.nn.Module, volume: np.ndarray, window: int, batch: int) -> np.ndarray:
    """MONAI's sliding_window_inference (overlap 0.25, Gaussian, σ = 0.125 × side), argmax labels."""
    from monai.inferers import sliding_window_inference  # imported before the timing (speed)

    x = torch.from_numpy(volume)[None, None]
    with torch.no_grad():
        logits = sliding_window_inference(
            x, (window,) * 3, batch, model, overlap=0.25, mode="gaussian", sigma_scale=0.125
        )
    return logits.argmax(1)[0].numpy()


def speed(side: int, window: int, widths: list[int], batch: int, repeats: int, warmup: int) -> Result:
    """volumes/s of Segmenter.predict(volume, slide=((w, w, w), 0.25)) and of MONAI's loop over the
    same network and weights, interleaved medians; the share of equal argmax labels."""
    model = network(CLASSES, widths)
    names = [f"class {i}" for i in range(CLASSES)]
    segmenter = Segmenter(model, names, None, default_palette(CLASSES), 1, "cpu", "fp32")
    volume = np.random.default_rng(0).standard_normal((side, side, side)).astype(np.float32)
    slide = ((window,) * 3, 0.25)
    calls = {SEGATTN: lambda: segmenter.predict([volume], slide=slide, batch_size=batch)}
    have_monai = find_spec("monai") is not None
    if have_monai:
        import monai.inferers  # noqa: F401  (its import is not timed)

        calls[MONAI] = functools.partial(monai_labels, model, volume, window, batch)
    load_before = load_average()
    seconds = median_seconds(calls, repeats, warmup)
    load_after = load_average()
    rates = {name: 1 / s for name, s in seconds.items()}
    ours = segmenter.predict([volume], slide=slide, batch_size=batch)[0]
    agree = f"{(ours == calls[MONAI]()).mean() * 100:.2f} %" if have_monai else "–"
    reference = rates.get(MONAI)
    rows = [
        [name, f"{side}³", f"{window}³", f"{rate:.3f}", f"{rate / reference:.2f}×" if reference else "–",
         agree if name == SEGATTN else "–"]
        for name, rate in rates.items()
    ]  # fmt: skip
    notes = [
        f"One {side}³ float32 volume (standard normal, seeded), one channel, {CLASSES} classes; segattn's "
        f"AttentionUNet, spatial_dims 3, widths {widths}, seeded and untrained, eval mode: the same weights in both.",
        f"{SEGATTN}: `Segmenter(...).predict([volume], slide=(({window}, {window}, {window}), 0.25), "
        f"batch_size={batch})`, fp32 on the CPU, label maps (its inference copy folds batch norms, channels_last_3d). "
        f"{MONAI}: `sliding_window_inference(x, ({window},) * 3, {batch}, net, overlap=0.25, mode='gaussian', "
        "sigma_scale=0.125)` under no_grad, then argmax.",
        "Labels equal: the share of voxels whose label is MONAI's (segattn averages probabilities, MONAI logits).",
        *timing_notes(repeats, load_before, load_after),
    ]
    if not have_monai:
        notes.append("MONAI is not installed here: segattn's row alone.")
    notes += shared_note(load_before, load_after, "the rates are lower bounds")
    series = "3-D sliding window inference speed"
    settings = {"size": side, "window": window, "widths": widths, "sw_batch": batch, "repeats": repeats,
                "warmup": warmup}  # fmt: skip
    return Result(series, f"{series} on CPU", [table(SPEED_COLUMNS, rows)], notes, settings, (load_before, load_after))


def shared_note(load_before: float, load_after: float, effect: str) -> list[str]:
    """The note a run under a 1-minute load above 2 gets: the machine was shared meanwhile."""
    if max(load_before, load_after) <= 2:
        return []
    return [f"The load was above 2: other processes (other engineers' test runs on this shared machine) used the "
            f"CPU meanwhile; {effect}."]  # fmt: skip


def volume_checkpoint(path: Path, widths: list[int]) -> None:
    """An untrained 3-D network of `widths`, 4 classes, no intensity spec, as `segattn infer` reads."""
    args = {"widths": widths, "spatial_dims": 3}
    names = [f"class {i}" for i in range(CLASSES)]
    record = checkpoint.make_record("attention_unet", args, 1, names, default_palette(CLASSES), None)
    checkpoint.save(path, network(CLASSES, widths).state_dict(), record)


def synthetic_nifti(path: Path, side: int) -> None:
    """A side³ int16 NIfTI of smooth ramps (uncompressed .nii: writing it takes seconds)."""
    import nibabel as nib

    ramp = np.arange(side, dtype=np.int16) % 1000
    data = (ramp[:, None, None] + ramp[None, :, None] - ramp[None, None, :]).astype(np.int16)
    nib.save(nib.Nifti1Image(data, np.eye(4)), str(path))


def memory(side: int, widths: list[int]) -> Result:
    """Peak RSS of `segattn infer` (CPU, default tiling, --workers 0) on one side³ int16 NIfTI."""
    mb = 1e6
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        volume_checkpoint(folder / "model.ckpt", widths)
        synthetic_nifti(folder / "scan.nii", side)
        infer = [sys.executable, "-m", "segattn.cli", "infer", "--ckpt", str(folder / "model.ckpt"), "--input",
                 str(folder / "scan.nii"), "--output", str(folder / "out"), "--device", "cpu", "--workers", "0",
                 "--overwrite"]  # fmt: skip
        load_before = load_average()
        seconds, peak = child_peak(infer)
        load_after = load_average()
    voxels = side**3
    rows = [[f"{side}³", str(CLASSES), f"{voxels * 2 / mb:,.0f}", f"{voxels / mb:,.0f}", f"{peak / mb:,.0f}",
             f"{peak / 1e9:.2f}", f"{seconds:,.0f}"]]  # fmt: skip
    notes = [
        f"`segattn infer --device cpu --workers 0` in a subprocess on one synthetic {side}³ int16 NIfTI (.nii), "
        f"default tiling (a volume over 2²² voxels: 128³ windows, overlap 0.25, Gaussian), batch size 8; "
        f"AttentionUNet spatial_dims 3, widths {widths}, {CLASSES} classes, untrained (memory, not accuracy).",
        "Peak RSS: the child's maximum resident set (os.wait4's ru_maxrss): reading, normalising, inference and "
        "writing the label volume (.nii.gz) included.",
        f"1-minute load average before / after: {load_before:.2f} / {load_after:.2f} ({os.cpu_count()} cores); "
        "load changes wall time, not memory.",
    ]
    notes += shared_note(load_before, load_after, "the wall time is longer, the memory the same")
    if side != 512:
        notes.append(f"Run at {side}³ for time on a shared 2-core machine; the goal's command is `--memory-size 512`.")
    series = "3-D volume inference memory"
    settings = {"memory_size": side, "memory_widths": widths, "classes": CLASSES}
    return Result(series, f"{series} on CPU", [table(MEMORY_COLUMNS, rows)], notes, settings, (load_before, load_after))


def run(args: argparse.Namespace) -> list[Result]:
    """`volumes`: the speed part, then the memory part (--parts picks)."""
    results = []
    if "speed" in args.parts:
        results.append(speed(args.size, args.window, args.widths, args.sw_batch, args.repeats, args.warmup))
    if "memory" in args.parts:
        results.append(memory(args.memory_size, args.memory_widths))
    return results
