"""Validation of a COCO instances dict, as json.load read it, before pycocotools indexes it.

`check_instances` raises an InputError of one line that names the annotation file, the entry
(image id, annotation id with its image id, or category id), the key and the value, and what was
expected. Nothing is coerced: "480" is not a height and true is not an id (JSON booleans are
refused wherever a number belongs). What passes is safe to index and to rasterise: pycocotools
crashes the process on NaN or infinite polygon coordinates and exhausts memory on huge ones.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from segattn.errors import InputError

REQUIRED = {
    "images": ("id", "file_name", "height", "width"),
    "annotations": ("id", "image_id", "category_id", "segmentation", "area"),
    "categories": ("id", "name"),
}
NUMBER_TYPES = {int, float}  # exact types: bool, a subclass of int, is not a number here
RUN_CHARACTERS = 6  # compressed RLE: longer runs overflow the 32-bit arithmetic of pycocotools' decoder


class Invalid(Exception):
    """A problem of one entry; `check_each` adds the file and the entry's name."""


def check_instances(dataset: Any, ann_file: Path) -> None:
    """Raises an InputError naming the first entry that pycocotools would index wrongly, crash or
    run out of memory on, or that would fail or be misread later (see the module docstring).

    Images: integer id, non-empty file_name, integer height and width ≥ 1; ids and file names
    unique (pycocotools keeps the last of two, so the other's annotations would vanish).
    Categories: integer id, non-empty name, both unique (a repeated name makes class names and
    selecting by name ambiguous). Annotations: integer id, image_id and category_id of a listed
    image and category, iscrowd 0 or 1 where given, area a finite number ≥ 0, and a segmentation
    that `check_segmentation` accepts for the image's size.
    """
    if not isinstance(dataset, dict):
        raise InputError(
            f"{ann_file}: expected a JSON object with images, annotations, categories, got {type(dataset).__name__}"
        )
    for section, keys in REQUIRED.items():
        entries = dataset.get(section)
        if entries is None:
            raise InputError(
                f"{ann_file}: no {section!r} list; a COCO instances file has images, annotations, categories"
            )
        if not isinstance(entries, list):
            raise InputError(f"{ann_file}: expected a list under {section!r}, got {type(entries).__name__}")
        for position, entry in enumerate(entries):
            if not isinstance(entry, dict):
                raise InputError(f"{ann_file}: {section}[{position}] is {short(entry)}; expected an object")
            missing = [key for key in keys if key not in entry]
            if missing:
                raise InputError(f"{ann_file}: {section[:-1]} {short(entry.get('id', entry))} has no {missing}")
    images, categories = dataset["images"], dataset["categories"]
    check_each(images, check_image, lambda image: f"image {short(image['id'])}", ann_file)
    check_unique(images, "images", "id", ann_file)
    check_unique(images, "images", "file_name", ann_file)
    check_each(categories, check_category, lambda category: f"category {short(category['id'])}", ann_file)
    check_unique(categories, "categories", "id", ann_file)
    check_unique(categories, "categories", "name", ann_file)
    sizes = {image["id"]: (image["height"], image["width"]) for image in images}
    category_ids = {category["id"] for category in categories}
    check_each(
        dataset["annotations"],
        lambda ann: check_annotation(ann, sizes, category_ids),
        lambda ann: f"annotation {short(ann['id'])} (image {short(ann['image_id'])})",
        ann_file,
    )
    check_unique(dataset["annotations"], "annotations", "id", ann_file)  # pycocotools keeps the last


def check_each(entries: list[dict], check: Callable[[dict], None], name: Callable[[dict], str], ann_file: Path) -> None:
    """Runs `check` on each entry; its Invalid becomes an InputError naming the file and the entry."""
    entry: dict = {}
    try:
        for entry in entries:
            check(entry)
    except Invalid as problem:
        raise InputError(f"{ann_file}: {name(entry)} {problem}") from None


def check_unique(entries: list[dict], section: str, key: str, ann_file: Path) -> None:
    """Raises an InputError naming the value of `key` that two entries share (and their ids)."""
    first_of: dict = {}
    for entry in entries:
        first = first_of.setdefault(entry[key], entry)
        if first is not entry:
            ids = "" if key == "id" else f" (ids {first['id']} and {entry['id']})"
            raise InputError(f"{ann_file}: {section} lists {key} {entry[key]!r} twice{ids}")


def short(value: Any, limit: int = 60) -> str:
    """repr(value), cut to `limit` characters (a long polygon or RLE string stays one short line)."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 1]}…"


def check_integer(entry: dict, key: str, minimum: int | None = None) -> None:
    value = entry[key]
    if type(value) is not int or (minimum is not None and value < minimum):
        expected = "an integer" if minimum is None else f"an integer ≥ {minimum}"
        raise Invalid(f"has {key} {short(value)}; expected {expected}")


def check_text(entry: dict, key: str) -> None:
    if not isinstance(entry[key], str) or not entry[key]:
        raise Invalid(f"has {key} {short(entry[key])}; expected a non-empty string")


def check_image(image: dict) -> None:
    check_integer(image, "id")
    check_text(image, "file_name")
    check_integer(image, "height", 1)
    check_integer(image, "width", 1)


def check_category(category: dict) -> None:
    check_integer(category, "id")
    check_text(category, "name")


def check_annotation(ann: dict, sizes: dict[int, tuple[int, int]], category_ids: set[int]) -> None:
    for key in ("id", "image_id", "category_id"):
        check_integer(ann, key)
    if ann["image_id"] not in sizes:
        raise Invalid(f"has image_id {ann['image_id']}, not in 'images'")
    if ann["category_id"] not in category_ids:
        raise Invalid(f"has category_id {ann['category_id']}, not in 'categories'")
    iscrowd = ann.get("iscrowd", 0)
    if type(iscrowd) is not int or iscrowd not in (0, 1):
        raise Invalid(f"has iscrowd {short(iscrowd)}; expected 0 or 1")
    area = ann["area"]
    if type(area) not in NUMBER_TYPES or not (math.isfinite(area) and area >= 0):
        raise Invalid(f"has area {short(area)}; expected a finite number ≥ 0")
    check_segmentation(ann["segmentation"], *sizes[ann["image_id"]])


def check_segmentation(segmentation: Any, height: int, width: int) -> None:
    """Raises Invalid unless `segmentation` is a non-empty list of polygons [x1, y1, x2, y2, ...]
    of 3 or more points, each coordinate finite and inside the image extended by its own size on
    each side (x in [-W, 2W], y in [-H, 2H]: real polygons stray a little outside), or an RLE
    {"size": [H, W], "counts": ...} of the image's size whose counts, a compressed string or a
    list of integers ≥ 0, add up to H·W pixels."""
    if isinstance(segmentation, dict):
        check_rle(segmentation, height, width)
        return
    if not isinstance(segmentation, list) or not segmentation:
        raise Invalid(
            f"has segmentation {short(segmentation)}; expected polygons [[x1, y1, x2, y2, x3, y3, ...], ...] "
            "or an RLE {'size': [height, width], 'counts': ...}"
        )
    sides = (width, height)
    for k, polygon in enumerate(segmentation):
        if not isinstance(polygon, list) or len(polygon) < 6 or len(polygon) % 2:
            count = f"{len(polygon)} numbers" if isinstance(polygon, list) else short(polygon)
            raise Invalid(f"has segmentation[{k}] of {count}; expected x, y pairs of 3 or more points")
        if not set(map(type, polygon)) <= NUMBER_TYPES:
            i, value = next((i, v) for i, v in enumerate(polygon) if type(v) not in NUMBER_TYPES)
            raise Invalid(f"has segmentation[{k}][{i}] = {short(value)}; expected a number")
        xs, ys = polygon[0::2], polygon[1::2]
        # min and max may pass a NaN over, but it makes the sum NaN; an infinity fails the bounds
        inside = -width <= min(xs) and max(xs) <= 2 * width and -height <= min(ys) and max(ys) <= 2 * height
        if not (inside and math.isfinite(sum(polygon))):
            i = next(i for i, v in enumerate(polygon) if not -sides[i % 2] <= v <= 2 * sides[i % 2])
            raise Invalid(
                f"has segmentation[{k}][{i}] = {polygon[i]!r}; expected a finite {'xy'[i % 2]} in "
                f"{-sides[i % 2]}..{2 * sides[i % 2]} (the {width}×{height} image extended by its size on each side)"
            )


def check_rle(rle: dict, height: int, width: int) -> None:
    if "size" not in rle or "counts" not in rle:
        raise Invalid(f"has segmentation {short(rle)}; expected an RLE {{'size': [height, width], 'counts': ...}}")
    size = rle["size"]
    if not (isinstance(size, list) and list(map(type, size)) == [int, int] and size == [height, width]):
        raise Invalid(f"has segmentation size {short(size)}; expected the image's [height, width] [{height}, {width}]")
    counts = rle["counts"]
    if isinstance(counts, str):
        runs = compressed_runs(counts)
    elif isinstance(counts, list) and set(map(type, counts)) <= {int} and min(counts, default=0) >= 0:
        runs = counts
    else:
        raise Invalid(f"has segmentation counts {short(counts)}; expected a compressed RLE string or integers ≥ 0")
    if sum(runs) != height * width:
        raise Invalid(
            f"has segmentation counts that cover {sum(runs)} pixels; expected {height}×{width} = {height * width}"
        )


def compressed_runs(counts: str) -> list[int]:
    """The run lengths in pycocotools' compressed RLE string: each run is stored in 5-bit groups
    as characters from '0' (0x20 = another group follows, 0x10 on the last = negative), and from
    the third run on as its difference to the run two before. Raises Invalid for a character
    outside '0'..'o', a run cut off or longer than RUN_CHARACTERS characters, a negative run."""
    invalid = Invalid(f"has segmentation counts {short(counts)}; expected a compressed RLE string of runs ≥ 0")
    runs: list[int] = []
    value = groups = 0
    for char in counts:
        code = ord(char) - ord("0")
        if not 0 <= code < 64 or groups == RUN_CHARACTERS:
            raise invalid
        value |= (code & 0x1F) << 5 * groups
        groups += 1
        if code & 0x20:
            continue
        if code & 0x10:
            value -= 1 << 5 * groups
        value += runs[-2] if len(runs) > 2 else 0
        if value < 0:
            raise invalid
        runs.append(value)
        value = groups = 0
    if groups:
        raise invalid
    return runs
