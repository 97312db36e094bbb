"""Colours and overlays for label maps."""

from __future__ import annotations

import numpy as np

from segattn.data.base import IGNORE_INDEX


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
    """Blends the coloured mask over an RGB (or grey) uint8 image where the label is not 0."""
    rgb = image if image.ndim == 3 and image.shape[2] == 3 else np.repeat(image.reshape(*image.shape[:2], 1), 3, 2)
    colours = colorize(mask, palette).astype(np.float32)
    blended = (1 - alpha) * rgb.astype(np.float32) + alpha * colours
    out = np.where((mask > 0)[..., None], blended, rgb.astype(np.float32))
    return out.round().astype(np.uint8)
