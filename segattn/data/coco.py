"""COCO instance annotations rasterised into semantic label maps through pycocotools."""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from pycocotools.coco import COCO

from segattn.data.base import IGNORE_INDEX, Sample, SegDataset
from segattn.data.io import read_image
from segattn.errors import InputError, MissingPathError

Crowd = Literal["ignore", "foreground", "background"]


class CocoSegmentation(SegDataset):
    """Semantic segmentation from a COCO instances file (polygons, RLE, uncompressed RLE).

    Labels are contiguous: 0 = background, then the selected categories in ascending COCO id
    order (`ds.classes` lists the names, index = label). `classes` selects categories by name or
    id; the others become background. Crowd regions are 255 (ignore, "ignore"), their class
    ("foreground") or left as background ("background").

    Overlaps, a fixed rule: crowd regions are painted first, then the instances in order of
    decreasing area (ties by annotation id), so where instances of different classes overlap
    the smaller object wins, and an instance always wins over a crowd region it overlaps.

    Item: {"image": uint8 H×W×3 RGB, "mask": int64 H×W, "name": file name}.
    """

    def __init__(
        self,
        images_dir: str | os.PathLike,
        ann_file: str | os.PathLike,
        classes: Sequence[str | int] | None = None,
        crowd: Crowd = "ignore",
        transform: Callable[..., dict] | None = None,
    ) -> None:
        super().__init__(transform)
        self.images_dir = Path(images_dir)
        ann_file = Path(ann_file)
        if not ann_file.is_file():
            raise MissingPathError(f"{ann_file}: COCO annotation file not found")
        if not self.images_dir.is_dir():
            raise MissingPathError(f"{self.images_dir}: image folder not found")
        if crowd not in ("ignore", "foreground", "background"):
            raise InputError(f"crowd: unknown value {crowd!r}; expected 'ignore', 'foreground' or 'background'")
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
            self.coco = COCO(str(ann_file))
        self.crowd = crowd
        categories = sorted(self.coco.loadCats(self.coco.getCatIds()), key=lambda c: c["id"])
        selected = select_categories(categories, classes, ann_file)
        self.label_of = {c["id"]: label for label, c in enumerate(selected, start=1)}
        self.classes = ["background", *(c["name"] for c in selected)]
        self.image_ids = sorted(self.coco.getImgIds())
        present = {p.name for p in self.images_dir.iterdir()}
        missing = [
            self.coco.imgs[i]["file_name"] for i in self.image_ids if self.coco.imgs[i]["file_name"] not in present
        ]
        if missing:
            raise MissingPathError(
                f"{ann_file}: {len(missing)} image(s) listed but not in {self.images_dir}, e.g. {missing[:3]}"
            )

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
        return {"image": image, "mask": self.label_map(info["id"]), "name": info["file_name"]}

    def label_map(self, image_id: int) -> np.ndarray:
        """The semantic mask of one image: int64 H×W, 0 = background, 255 = ignore."""
        info = self.coco.imgs[image_id]
        mask = np.zeros((info["height"], info["width"]), np.int64)
        anns = [a for a in self.coco.imgToAnns[image_id] if a["category_id"] in self.label_of]
        crowds = [a for a in anns if a.get("iscrowd", 0)]
        things = [a for a in anns if not a.get("iscrowd", 0)]
        if self.crowd == "ignore":
            for ann in crowds:
                mask[self.coco.annToMask(ann) > 0] = IGNORE_INDEX
        elif self.crowd == "foreground":
            things += crowds
        for ann in sorted(things, key=lambda a: (-float(a["area"]), a["id"])):
            mask[self.coco.annToMask(ann) > 0] = self.label_of[ann["category_id"]]
        return mask


def select_categories(categories: list[dict], wanted: Sequence[str | int] | None, ann_file: Path) -> list[dict]:
    """The categories named (or numbered) in `wanted`, in ascending id order; all when None."""
    if wanted is None:
        return categories
    by_name = {c["name"]: c for c in categories}
    by_id = {c["id"]: c for c in categories}
    chosen = []
    for key in wanted:
        category = by_id.get(key) if isinstance(key, int) else by_name.get(key)
        if category is None:
            raise InputError(f"classes: {key!r} is not a category of {ann_file}; it has {sorted(by_name)}")
        chosen.append(category)
    return sorted({c["id"]: c for c in chosen}.values(), key=lambda c: c["id"])
