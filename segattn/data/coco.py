"""COCO instance annotations rasterised into semantic label maps through pycocotools."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from pycocotools.coco import COCO

from segattn.data.base import Sample, SegDataset
from segattn.data.coco_checks import check_instances
from segattn.data.io import read_image, read_mask, write_label_map
from segattn.data.splits import SplitSpec, select
from segattn.errors import InputError, MissingPathError, check_choice
from segattn.labels import IGNORE_INDEX

GREYS = [[value] * 3 for value in range(256)]  # the label cache's palette: label = grey level
Crowd = Literal["ignore", "foreground", "background"]
Overlap = Literal["smaller_on_top", "annotation_order", "ignore"]
MAX_CLASSES = IGNORE_INDEX - 1  # labels 1..254 after background 0; 255 is the ignore label


class CocoSegmentation(SegDataset):
    """Semantic segmentation from a COCO instances file (polygons, RLE, uncompressed RLE).

    Labels are contiguous: 0 = background, then the selected categories in ascending COCO id
    order (`ds.classes` lists the names, index = label). `classes` selects categories by name or
    id; the others become background. Instances with area < `min_area` (the file's "area") are
    left out (background). Crowd regions are 255 (ignore, "ignore"), their class ("foreground")
    or left as background ("background"). `skip_empty` drops images with no selected instance.

    Overlaps (`overlap`), a fixed, deterministic rule:
      "smaller_on_top"    instances painted by decreasing area (ties: annotation id), so the
                          smaller object wins where instances overlap (default);
      "annotation_order"  painted in annotation id order, the later wins;
      "ignore"            like "smaller_on_top", then pixels claimed by instances of two
                          different classes become 255.
    Crowd regions are painted first in every rule, so an instance wins over a crowd region.

    `cache_dir`: label maps are written there as PNG on first use, under a key made of the
    annotation file's SHA-1 and these settings, so later epochs do not rasterise again.
    `split` selects images by file name (see `segattn.data.splits`).

    The file is validated as it is read, before any worker starts (`segattn.data.coco_checks`):
    a malformed entry is an InputError naming the file, the entry and the value. At most
    MAX_CLASSES (254) categories may be selected, as 255 is the ignore label.

    Item: {"image": uint8 H×W×3 RGB, "mask": int64 H×W, "name": file name}.
    """

    def __init__(
        self,
        images_dir: str | os.PathLike,
        ann_file: str | os.PathLike,
        classes: Sequence[str | int] | None = None,
        crowd: Crowd = "ignore",
        min_area: float = 0,
        overlap: Overlap = "smaller_on_top",
        skip_empty: bool = False,
        cache_dir: str | os.PathLike | None = None,
        split: SplitSpec | None = None,
        transform: Callable[..., dict] | None = None,
    ) -> None:
        super().__init__(transform)
        self.images_dir = Path(images_dir)
        ann_file = Path(ann_file)
        if not ann_file.is_file():
            raise MissingPathError(f"{ann_file}: COCO annotation file not found", ann_file)
        if not self.images_dir.is_dir():
            raise MissingPathError(f"{self.images_dir}: image folder not found", self.images_dir)
        check_choice("crowd", crowd, Crowd)
        check_choice("overlap", overlap, Overlap)
        if isinstance(min_area, bool) or not isinstance(min_area, (int, float)) or not 0 <= min_area < math.inf:
            raise InputError(f"min_area: expected a finite number ≥ 0, got {min_area!r}")
        self.coco = read_coco(ann_file)
        self.crowd, self.min_area, self.overlap = crowd, min_area, overlap
        categories = sorted(self.coco.loadCats(self.coco.getCatIds()), key=lambda c: c["id"])
        selected = select_categories(categories, classes, ann_file)
        if len(selected) > MAX_CLASSES:
            raise InputError(
                f"{ann_file}: {len(selected)} categories selected, at most {MAX_CLASSES}: labels are 1..n after "
                f"background 0, and {IGNORE_INDEX} is the ignore label (select fewer with classes)"
            )
        self.label_of = {c["id"]: label for label, c in enumerate(selected, start=1)}
        self.classes = ["background", *(c["name"] for c in selected)]
        by_name = self.checked_images(ann_file)
        if skip_empty:
            by_name = {n: i for n, i in by_name.items() if any(not a.get("iscrowd", 0) for a in self.annotations(i))}
        self.keys = select(list(by_name), split, str(ann_file))
        self.image_ids = [by_name[k] for k in self.keys]
        self.cache = self.cache_folder(ann_file, cache_dir, [c["id"] for c in selected]) if cache_dir else None

    def checked_images(self, ann_file: Path) -> dict[str, int]:
        """{file name: image id}; every listed file must lie inside images_dir and exist."""
        root = self.images_dir.resolve()
        by_name, missing = {}, []
        for image_id, info in self.coco.imgs.items():
            name = info["file_name"]
            path = (self.images_dir / name).resolve()
            if not path.is_relative_to(root):
                raise InputError(f"{ann_file}: image {image_id} has file_name {name!r}, outside {self.images_dir}")
            if not path.is_file():
                missing.append(name)
            by_name[name] = image_id
        if missing:
            raise MissingPathError(
                f"{ann_file}: {len(missing)} image(s) listed but not in {self.images_dir}, e.g. {missing[:3]}"
            )
        return by_name

    def cache_folder(self, ann_file: Path, cache_dir: str | os.PathLike, category_ids: list[int]) -> Path:
        digest = hashlib.sha1(ann_file.read_bytes()).hexdigest()[:16]
        settings = json.dumps([category_ids, self.crowd, self.min_area, self.overlap])
        key = hashlib.sha1(f"{digest}{settings}".encode()).hexdigest()[:16]
        folder = Path(cache_dir) / f"{ann_file.stem}-{key}"
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    @property
    def image_paths(self) -> list[Path]:
        return [self.images_dir / key for key in self.keys]

    def __len__(self) -> int:
        return len(self.image_ids)

    def load(self, index: int) -> Sample:
        info = self.coco.imgs[self.image_ids[index]]
        path = self.images_dir / info["file_name"]
        image = read_image(path)
        if image.shape[:2] != (info["height"], info["width"]):
            raise InputError(
                f"{path}: image is {image.shape[1]}×{image.shape[0]} but the annotation file says "
                f"{info['width']}×{info['height']}"
            )
        return {"image": image, "mask": self.cached_label_map(info["id"]), "name": info["file_name"]}

    def cached_label_map(self, image_id: int) -> np.ndarray:
        if self.cache is None:
            return self.label_map(image_id)
        path = self.cache / f"{image_id}.png"
        if path.is_file():
            return read_mask(path).astype(np.int64)
        mask = self.label_map(image_id)
        # atomic (a concurrent reader never sees half a file), and exact: a label the PNG cannot
        # hold is refused, never wrapped
        write_label_map(path, mask, GREYS)
        return mask

    def annotations(self, image_id: int) -> list[dict]:
        """The image's annotations of selected categories with area ≥ min_area."""
        return [
            a for a in self.coco.imgToAnns[image_id] if a["category_id"] in self.label_of and a["area"] >= self.min_area
        ]

    def label_map(self, image_id: int) -> np.ndarray:
        """The semantic mask of one image: int64 H×W, 0 = background, 255 = ignore."""
        info = self.coco.imgs[image_id]
        mask = np.zeros((info["height"], info["width"]), np.int64)
        anns = self.annotations(image_id)
        crowds = [a for a in anns if a.get("iscrowd", 0)]
        things = [a for a in anns if not a.get("iscrowd", 0)]
        if self.crowd == "ignore":
            for ann in crowds:
                mask[self.coco.annToMask(ann) > 0] = IGNORE_INDEX
        elif self.crowd == "foreground":
            things += crowds
        if self.overlap == "annotation_order":
            things.sort(key=lambda a: a["id"])
        else:
            things.sort(key=lambda a: (-a["area"], a["id"]))
        first_label = np.zeros_like(mask) if self.overlap == "ignore" else None
        for ann in things:
            pixels = self.coco.annToMask(ann) > 0
            label = self.label_of[ann["category_id"]]
            mask[pixels] = label
            if first_label is not None:
                clash = pixels & (first_label > 0) & (first_label != label)
                first_label[pixels & (first_label == 0)] = label
                first_label[clash] = -1
        if first_label is not None:
            mask[first_label == -1] = IGNORE_INDEX
        return mask


def read_coco(ann_file: Path) -> COCO:
    """The file read and validated by `check_instances` before pycocotools indexes it."""
    try:
        with open(ann_file, "rb") as file:
            dataset = json.load(file)
    except ValueError as exc:  # not JSON, or not UTF-8
        raise InputError(f"{ann_file}: not a COCO instances file ({type(exc).__name__}: {exc})") from exc
    check_instances(dataset, ann_file)
    coco = COCO()
    coco.dataset = dataset
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
        coco.createIndex()
    return coco


def select_categories(categories: list[dict], wanted: Sequence[str | int] | None, ann_file: Path) -> list[dict]:
    """The categories named (str) or numbered (int, not bool) in `wanted`, in ascending id order;
    all when None."""
    if wanted is None:
        return categories
    if isinstance(wanted, str):  # would be read letter by letter
        raise InputError(f"classes: {wanted!r} is one string; expected a list of category names or ids")
    by_name = {c["name"]: c for c in categories}
    by_id = {c["id"]: c for c in categories}
    chosen = []
    for key in wanted:
        if type(key) not in (str, int):
            raise InputError(f"classes: {key!r} is a {type(key).__name__}; expected a category name or integer id")
        category = by_id.get(key) if isinstance(key, int) else by_name.get(key)
        if category is None:
            raise InputError(f"classes: {key!r} is not a category of {ann_file}; it has {sorted(by_name)}")
        chosen.append(category)
    return sorted({c["id"]: c for c in chosen}.values(), key=lambda c: c["id"])
