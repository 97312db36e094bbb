"""Reading images from disk with errors that name the file."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from segattn.errors import InputError, MissingPathError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif", ".webp")


def read_image(path: str | os.PathLike, channels: int = 3) -> np.ndarray:
    """Reads an image as uint8 H×W×3 RGB (channels=3) or H×W×1 grey (channels=1)."""
    path = Path(path)
    if not path.is_file():
        raise MissingPathError(f"{path}: image file not found")
    flag = cv2.IMREAD_COLOR if channels == 3 else cv2.IMREAD_GRAYSCALE
    image = cv2.imread(str(path), flag)
    if image is None:
        raise InputError(f"{path}: cannot decode as an image (corrupt or unsupported format)")
    if channels == 3:
        return np.ascontiguousarray(image[..., ::-1])
    return image[..., None]


def write_label_map(path: str | os.PathLike, mask: np.ndarray, palette: list[list[int]]) -> None:
    """Saves an H×W label map (values 0–255) as a palette PNG: pixel values are the labels,
    and viewers show the palette's colours."""
    if mask.min() < 0 or mask.max() > 255:
        raise InputError(f"{path}: a palette PNG holds labels 0..255, got {mask.min()}..{mask.max()}")
    image = Image.fromarray(mask.astype(np.uint8), mode="P")
    flat = [v for colour in palette[:256] for v in colour]
    image.putpalette(flat + [255] * (768 - len(flat)))
    image.save(path)


def write_image(path: str | os.PathLike, image: np.ndarray) -> None:
    """Saves an RGB uint8 H×W×3 image (format from the suffix)."""
    if not cv2.imwrite(str(path), np.ascontiguousarray(image[..., ::-1])):
        raise InputError(f"{path}: could not write the image (unknown suffix or unwritable folder)")
