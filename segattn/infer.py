"""`segattn infer`: label maps for a folder or glob of images, written as palette PNGs.

DataLoader workers read and transform images, the device computes, and a writer thread saves
results, so the three overlap. Outputs that exist are skipped unless `overwrite`.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from segattn.data.io import read_image, write_image, write_label_map
from segattn.errors import InputError
from segattn.inference import Segmenter, expand_inputs
from segattn.viz import overlay


def output_paths(image: Path, output: Path) -> dict[str, Path]:
    return {
        "mask": output / f"{image.stem}.png",
        "overlay": output / f"{image.stem}_overlay.jpg",
        "probs": output / f"{image.stem}_probs.npy",
    }


def run_infer(
    segmenter: Segmenter,
    inputs: str | os.PathLike | list[str | os.PathLike],
    output: str | os.PathLike,
    batch_size: int = 8,
    overlay_images: bool = False,
    probs: bool = False,
    workers: int = 2,
    overwrite: bool = False,
    **predict_options: Any,
) -> dict[str, float]:
    """Writes `<stem>.png` label maps (palette PNG: pixel value = class index) into `output`, and
    `<stem>_overlay.jpg` / `<stem>_probs.npy` (float16 K×H×W) on request. Returns counts and
    images per second."""
    images = [Path(p) for p in expand_inputs(inputs)]
    output = Path(output)
    if output.exists() and not output.is_dir():
        raise InputError(f"output {output}: exists and is not a folder; expected a folder for the label maps")
    output.mkdir(parents=True, exist_ok=True)
    stems: dict[str, Path] = {}
    for image in images:
        if image.stem in stems:
            raise InputError(f"{stems[image.stem]} and {image} would both write {image.stem}.png; rename one")
        stems[image.stem] = image
    todo = [p for p in images if overwrite or not output_paths(p, output)["mask"].exists()]
    start = time.perf_counter()
    pending: list[Future] = []
    with ThreadPoolExecutor(max_workers=1) as writer:
        results = segmenter.predict_iter(
            todo, batch_size=batch_size, return_probs=probs, workers=workers, **predict_options
        )
        for path, result in tqdm(zip(todo, results, strict=True), total=len(todo), unit="img", desc="infer"):
            pending.append(writer.submit(write_outputs, path, output, result, segmenter, overlay_images, probs))
        for future in pending:
            future.result()  # re-raises a failed write
    seconds = time.perf_counter() - start
    return {
        "written": len(todo),
        "skipped": len(images) - len(todo),
        "seconds": seconds,
        "images_per_second": len(todo) / seconds if todo and seconds > 0 else float("nan"),
    }


def write_outputs(
    image: Path, output: Path, result: np.ndarray, segmenter: Segmenter, overlay_images: bool, probs: bool
) -> None:
    paths = output_paths(image, output)
    labels = result.argmax(axis=0).astype(np.uint8) if probs else result
    if probs:
        np.save(paths["probs"], result.astype(np.float16))
    write_label_map(paths["mask"], labels, segmenter.palette)
    if overlay_images:
        write_image(paths["overlay"], overlay(read_image(image, segmenter.in_channels), labels, segmenter.palette))
