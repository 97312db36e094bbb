"""Colours, overlays, attention maps and training curves."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from segattn.atomic import atomic_write
from segattn.errors import InputError
from segattn.labels import IGNORE_INDEX


def default_palette(num_classes: int) -> list[list[int]]:
    """K RGB colours: black for class 0 (background), then the PASCAL VOC bit-interleaved colours."""
    palette = []
    for label in range(num_classes):
        rgb, c = [0, 0, 0], label
        for shift in range(7, -1, -1):
            for channel in range(3):
                rgb[channel] |= ((c >> channel) & 1) << shift
            c >>= 3
        palette.append(rgb)
    return palette


def colorize(mask: np.ndarray, palette: list[list[int]]) -> np.ndarray:
    """Label map H×W → RGB uint8 H×W×3; ignore (255) and unknown labels are white."""
    lut = np.full((256, 3), 255, np.uint8)
    lut[: len(palette)] = np.asarray(palette, np.uint8)[:256]
    return lut[np.clip(mask, 0, IGNORE_INDEX).astype(np.uint8)]


def overlay(image: np.ndarray, mask: np.ndarray, palette: list[list[int]], alpha: float = 0.5) -> np.ndarray:
    """Blends the coloured mask over an RGB or grey image (uint8; 16-bit is scaled for display)
    where the label is not 0."""
    rgb = to_display(image)
    colours = colorize(mask, palette).astype(np.float32)
    blended = (1 - alpha) * rgb.astype(np.float32) + alpha * colours
    out = np.where((mask > 0)[..., None], blended, rgb.astype(np.float32))
    return out.round().astype(np.uint8)


def plot_confusion(confmat: np.ndarray, classes: list[str], path: str | os.PathLike, title: str = "") -> None:
    """Saves the row-normalised confusion matrix (rows = truth, each row sums to 1) as a PNG."""
    from matplotlib.figure import Figure  # not pyplot: leaves a notebook's backend alone

    rows = confmat.sum(axis=1, keepdims=True)
    normalised = np.divide(confmat, rows, out=np.zeros(confmat.shape, float), where=rows > 0)
    size = max(4.0, 0.45 * len(classes) + 2)
    fig = Figure(figsize=(size + 1, size))
    ax = fig.subplots()
    image = ax.imshow(normalised, vmin=0, vmax=1, cmap="Blues")
    ax.set_xticks(range(len(classes)), classes, rotation=90)
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("prediction")
    ax.set_ylabel("truth")
    if len(classes) <= 20:
        for (i, j), value in np.ndenumerate(normalised):
            ax.text(
                j, i, f"{value:.2f}", ha="center", va="center", fontsize=7, color="white" if value > 0.5 else "black"
            )
    fig.colorbar(image, ax=ax, fraction=0.046)
    ax.set_title(title or "confusion matrix (rows normalised)")
    fig.tight_layout()
    save_figure(fig, path)


def side_by_side(image: np.ndarray, truth: np.ndarray, pred: np.ndarray, palette: list[list[int]]) -> np.ndarray:
    """One RGB uint8 strip: image | truth | prediction (ignore shown white), 4-pixel gaps."""
    rgb = to_display(image)
    gap = np.full((rgb.shape[0], 4, 3), 255, np.uint8)
    return np.concatenate([rgb, gap, colorize(truth, palette), gap, colorize(pred, palette)], axis=1)


def to_display(image: np.ndarray) -> np.ndarray:
    """An H×W×C uint8/uint16 image as RGB uint8 (16-bit scaled by its own range)."""
    if image.dtype != np.uint8:
        lo, hi = np.percentile(image, (1, 99))
        image = (np.clip((image.astype(np.float32) - lo) / max(hi - lo, 1), 0, 1) * 255).astype(np.uint8)
    if image.ndim == 2 or image.shape[2] == 1:
        image = np.repeat(image.reshape(*image.shape[:2], 1), 3, axis=2)
    return image


def heatmap(alpha: np.ndarray) -> np.ndarray:
    """An h×w map with values in [0, 1] as RGB uint8 (matplotlib's viridis)."""
    from matplotlib import colormaps

    return (colormaps["viridis"](np.clip(alpha, 0, 1))[..., :3] * 255).astype(np.uint8)


def attention_grid(image: np.ndarray, maps: dict[str, np.ndarray], alpha: float = 0.6) -> np.ndarray:
    """One RGB uint8 strip: the image, then each gate's attention α (h_i×w_i in [0, 1], upsampled
    to the image's size) as a heatmap blended over it, in the order of `maps`; 4-pixel gaps."""
    import cv2

    rgb = to_display(image)
    height, width = rgb.shape[:2]
    panels = [rgb]
    for coefficients in maps.values():
        resized = cv2.resize(coefficients.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
        panels.append(((1 - alpha) * rgb + alpha * heatmap(resized)).round().astype(np.uint8))
    gap = np.full((height, 4, 3), 255, np.uint8)
    return np.concatenate([p for panel in panels for p in (panel, gap)][:-1], axis=1)


def validation_row(
    image: np.ndarray, truth: np.ndarray, pred: np.ndarray, maps: dict[str, np.ndarray], palette: list[list[int]]
) -> np.ndarray:
    """One RGB uint8 strip: image | truth | prediction | each gate's α over the image.

    image: H×W×C (C = 1, 3, or more: the first channel is shown), any dtype (a normalised float
    image is scaled by its own range); truth, pred: H×W labels; maps: {gate: α h_i×w_i}."""
    if image.ndim == 3 and image.shape[2] not in (1, 3):
        image = image[..., :1]
    strip = side_by_side(image, truth, pred, palette)
    if not maps:
        return strip
    gates = attention_grid(image, maps)[:, image.shape[1] + 4 :]  # without the image panel again
    gap = np.full((strip.shape[0], 4, 3), 255, np.uint8)
    return np.concatenate([strip, gap, gates], axis=1)


def read_metrics_csv(path: str | os.PathLike) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Lightning's CSVLogger file (metrics.csv) as {metric: (steps int64, values float64)}, one
    entry per metric with the rows where it was logged (the file interleaves step and epoch rows)."""
    import csv

    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or "step" not in rows[0]:
        raise InputError(f"{path}: not a Lightning CSVLogger metrics file (no 'step' column)")
    curves = {}
    for key in rows[0]:
        if key in ("step", "epoch"):
            continue
        points = [(int(row["step"]), float(row[key])) for row in rows if row[key] not in ("", None)]
        if points:
            steps, values = zip(*points, strict=True)
            curves[key] = (np.asarray(steps, np.int64), np.asarray(values, np.float64))
    return curves


def plot_curves(path: str | os.PathLike, keys: list[str] | None = None, out: str | os.PathLike | None = None):
    """Training curves from a CSVLogger metrics.csv against the optimiser step: losses in one
    panel, scores (mIoU, IoU, aAcc, ...) in another, each gate's mean α (train/alpha/<gate>) in a
    third. `keys`, e.g. ["train/loss_step", "val/loss", "val/mIoU"], default: every loss, mIoU and
    gate α logged. Saves a PNG to `out` if given; returns the matplotlib Figure (a notebook shows
    it as a cell's value)."""
    from matplotlib.figure import Figure  # not pyplot: leaves a notebook's backend alone

    curves = read_metrics_csv(path)
    keys = keys or [k for k in curves if k.endswith(("loss_step", "loss", "mIoU")) or "/alpha/" in k]
    missing = [k for k in keys if k not in curves]
    if missing:
        raise InputError(f"{path}: no metric {missing}; it holds {sorted(curves)}")

    def panel_of(key: str) -> str:
        return "loss" if "loss" in key else "gate mean α" if "/alpha/" in key else "score"

    panels = [panel for panel in ("loss", "score", "gate mean α") if any(panel_of(k) == panel for k in keys)]
    fig = Figure(figsize=(5 * len(panels), 3.5))
    axes = fig.subplots(1, len(panels), squeeze=False)
    for ax, panel in zip(axes[0], panels, strict=True):
        for key in keys:
            if panel_of(key) == panel:
                steps, values = curves[key]
                ax.plot(steps, values, marker="o" if len(steps) < 30 else None, markersize=3, label=key)
        ax.set_xlabel("step")
        ax.set_ylabel(panel)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    if out is not None:
        save_figure(fig, out)
    return fig


def save_figure(fig: Any, path: str | os.PathLike) -> None:
    """Saves a matplotlib figure atomically, in the format its suffix names, at 120 dpi."""
    with atomic_write(path) as temporary:
        fig.savefig(temporary, dpi=120, format=Path(path).suffix.lstrip(".") or "png")
