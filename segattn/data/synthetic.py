"""A procedurally drawn COCO-format data set for the demo and the tests.

Each image holds textured, partly overlapping shapes of three classes (circle: stripes,
square: checks, triangle: dots, each in a random colour) on a textured background. The
annotations are polygons in an ordinary COCO instances file, so the data goes through the same
pycocotools path as real COCO. Shapes of the same class may overlap (the later one is drawn on
top, its polygon whole); shapes of different classes never share a pixel, so the semantic mask
of class c is exactly the union of `annToMask` over the instances of c.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Literal, get_args

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from segattn.data.coco import CocoSegmentation
from segattn.errors import InputError, check_choice

CATEGORIES = [
    {"id": 1, "name": "circle", "supercategory": "shape"},
    {"id": 2, "name": "square", "supercategory": "shape"},
    {"id": 3, "name": "triangle", "supercategory": "shape"},
]
Split = Literal["train", "val"]
SPLITS = get_args(Split)
PARAMS_FILE = "synthetic.json"


def make_synthetic(
    root: str | os.PathLike,
    n_train: int = 400,
    n_val: int = 100,
    size: int = 128,
    seed: int = 0,
) -> Path:
    """Writes the data set under `root` and returns `root`; deterministic by `seed`.

    Layout: `root/{train,val}/NNNNNN.jpg` (size×size RGB, JPEG quality 95) and
    `root/annotations/instances_{train,val}.json`. Image i of a split depends only on
    (seed, split, i). If `root` already holds a set made with the same arguments it is reused;
    one made with other arguments is an error. The set is written to a temporary folder and
    renamed into place, so concurrent callers (DDP ranks) never see half a data set.
    """
    root = Path(root)
    params = {"n_train": n_train, "n_val": n_val, "size": size, "seed": seed}
    if n_train < 1 or n_val < 1 or size < 32:
        raise InputError(f"make_synthetic: expected n_train, n_val ≥ 1 and size ≥ 32, got {params}")
    if (root / PARAMS_FILE).exists():
        existing = json.loads((root / PARAMS_FILE).read_text())
        if existing != params:
            raise InputError(
                f"{root} holds a synthetic set made with {existing}, not {params}; delete it or choose another root"
            )
        return root
    if root.exists() and any(root.iterdir()):
        raise InputError(f"{root} exists and is not a synthetic data set; choose another root")
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.parent))
    try:
        for split_index, split in enumerate(SPLITS):
            count = n_train if split == "train" else n_val
            write_split(tmp, split, split_index, count, size, seed)
        (tmp / PARAMS_FILE).write_text(json.dumps(params))
        try:
            if root.exists():
                root.rmdir()  # empty, checked above
            tmp.rename(root)
        except OSError:
            if not (root / PARAMS_FILE).exists():  # not another process that finished first
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root


def write_split(root: Path, split: str, split_index: int, count: int, size: int, seed: int) -> None:
    (root / split).mkdir(parents=True)
    (root / "annotations").mkdir(exist_ok=True)
    images, annotations = [], []
    for i in range(count):
        rng = np.random.default_rng([seed, split_index, i])
        image_id = i + 1
        file_name = f"{image_id:06d}.jpg"
        image, instances = draw_image(rng, size)
        cv2.imwrite(str(root / split / file_name), image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
        images.append({"id": image_id, "file_name": file_name, "width": size, "height": size})
        for category_id, polygon, rle in instances:
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": category_id,
                    "segmentation": [polygon],
                    "area": float(mask_utils.area(rle)),
                    "bbox": [round(float(v), 2) for v in mask_utils.toBbox(rle)],
                    "iscrowd": 0,
                }
            )
    coco = {
        "info": {"description": f"segattn synthetic shapes, {split} split", "version": "1"},
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": CATEGORIES,
    }
    (root / "annotations" / f"instances_{split}.json").write_text(json.dumps(coco))


def draw_image(rng: np.random.Generator, size: int) -> tuple[np.ndarray, list]:
    """Returns (RGB uint8 size×size×3, [(category_id, polygon, rle), ...] in drawing order)."""
    image = background(rng, size)
    occupied = np.zeros((size, size), np.int64)  # category id per pixel, 0 = free
    instances = []
    target = int(rng.integers(2, 6))
    for _ in range(40):  # placement attempts
        if len(instances) == target:
            break
        category_id = int(rng.integers(1, len(CATEGORIES) + 1))
        polygon = shape_polygon(rng, category_id, size)
        rle = mask_utils.frPyObjects([polygon], size, size)[0]
        mask = mask_utils.decode(rle).astype(bool)
        others = occupied[mask]
        if mask.sum() < 40 or np.any((others != 0) & (others != category_id)):
            continue  # too small, or touches a shape of another class
        image[mask] = texture(rng, category_id, size)[mask]
        occupied[mask] = category_id
        instances.append((category_id, polygon, rle))
    return image, instances


def shape_polygon(rng: np.random.Generator, category_id: int, size: int) -> list[float]:
    """A COCO polygon [x0, y0, x1, y1, ...] of the class's shape, randomly placed and rotated."""
    radius = rng.uniform(0.12, 0.3) * size
    cx, cy = rng.uniform(radius * 0.5, size - radius * 0.5, 2)
    vertices = {1: 24, 2: 4, 3: 3}[category_id]
    angles = rng.uniform(0, 2 * np.pi) + np.arange(vertices) * 2 * np.pi / vertices
    xs = np.clip(cx + radius * np.cos(angles), 0, size)
    ys = np.clip(cy + radius * np.sin(angles), 0, size)
    return [round(float(v), 2) for xy in zip(xs, ys, strict=True) for v in xy]


def texture(rng: np.random.Generator, category_id: int, size: int) -> np.ndarray:
    """A size×size×3 uint8 fill: stripes (circle), checks (square) or dots (triangle)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    period = rng.uniform(5, 9)
    if category_id == 1:
        theta = rng.uniform(0, np.pi)
        pattern = np.sin(2 * np.pi * (xx * np.cos(theta) + yy * np.sin(theta)) / period) > 0
    elif category_id == 2:
        pattern = ((xx // (period / 2)) + (yy // (period / 2))) % 2 == 0
    else:
        pattern = np.hypot((xx % period) - period / 2, (yy % period) - period / 2) < period / 4
    light, dark = rng.integers(150, 256, 3), rng.integers(0, 110, 3)
    fill = np.where(pattern[..., None], light, dark).astype(np.float32)
    return np.clip(fill + rng.normal(0, 8, (size, size, 3)), 0, 255).astype(np.uint8)


def background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Smooth coloured noise with fine grain: a texture with no edges of its own."""
    coarse = rng.uniform(0, 1, (6, 6, 3)).astype(np.float32)
    smooth = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
    base = rng.uniform(60, 190, 3)
    image = base + 70 * (smooth - 0.5) + rng.normal(0, 10, (size, size, 3))
    return np.clip(image, 0, 255).astype(np.uint8)


class SyntheticShapes(CocoSegmentation):
    """One split of the synthetic set, made by `make_synthetic` on first use and then read
    through the ordinary COCO path. The arguments are those of `make_synthetic`."""

    def __init__(
        self,
        root: str | os.PathLike,
        split: Split = "train",
        n_train: int = 400,
        n_val: int = 100,
        size: int = 128,
        seed: int = 0,
        transform: Callable[..., dict] | None = None,
    ) -> None:
        check_choice("split", split, Split)
        root = make_synthetic(root, n_train, n_val, size, seed)
        super().__init__(root / split, root / "annotations" / f"instances_{split}.json", transform=transform)
