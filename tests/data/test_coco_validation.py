"""COCO annotation files are validated when read: every malformed entry is a one-line InputError
raised by CocoSegmentation's constructor, naming the file, the entry and the value (segattn.data.coco_checks)."""

import json
import math
import re

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from segattn import InputError
from segattn.data import CocoSegmentation

SQUARE = [0, 0, 4, 0, 4, 4, 0, 4]


def annotation(ann_id=5, **fields):
    """A valid annotation of image 1 (8×6) and category 9 ("dog"), with `fields` replaced."""
    return {
        "id": ann_id,
        "image_id": 1,
        "category_id": 9,
        "segmentation": [SQUARE],
        "area": 16.0,
        "iscrowd": 0,
    } | fields


def write_set(tmp_path, annotations=(), images=None, categories=None):
    """Writes ann.json and black 8×6 PNGs for its images into tmp_path; returns (images dir, file)."""
    images = images or [{"id": 1, "file_name": "a.png", "height": 6, "width": 8}]
    categories = categories or [{"id": 9, "name": "dog"}, {"id": 3, "name": "cat"}]
    (tmp_path / "img").mkdir(exist_ok=True)
    for image in images:
        if isinstance(image.get("file_name"), str) and image["file_name"]:
            Image.fromarray(np.zeros((6, 8, 3), np.uint8)).save(tmp_path / "img" / image["file_name"])
    coco = {"images": images, "annotations": list(annotations), "categories": categories}
    (tmp_path / "ann.json").write_text(json.dumps(coco))  # NaN and Infinity are written as such
    return tmp_path / "img", tmp_path / "ann.json"


def refused(tmp_path, message, **entries):
    """Asserts that constructing the set raises an InputError holding `message` after the file."""
    images_dir, ann_file = write_set(tmp_path, **entries)
    with pytest.raises(InputError, match=re.escape(f"ann.json: {message}")) as error:
        CocoSegmentation(images_dir, ann_file)
    assert "\n" not in str(error.value)


OUTSIDE = "(the 8×6 image extended by its size on each side)"


@pytest.mark.parametrize(
    ("polygon", "named"),
    [
        ([0, 0, 4, 0, 4, 4, math.nan, 4], f"segmentation[1][6] = nan; expected a finite x in -8..16 {OUTSIDE}"),
        ([0, 0, 4, math.inf, 4, 4], f"segmentation[1][3] = inf; expected a finite y in -6..12 {OUTSIDE}"),
        ([0, 0, -math.inf, 0, 4, 4], "segmentation[1][2] = -inf; expected a finite x in -8..16"),
        ([0, 0, 1e9, 0, 4, 4], "segmentation[1][2] = 1000000000.0; expected a finite x in -8..16"),
        ([0, 0, 4, 0, 16.5, 4], "segmentation[1][4] = 16.5; expected a finite x in -8..16"),
        ([0, -6.5, 4, 0, 4, 4], "segmentation[1][1] = -6.5; expected a finite y in -6..12"),
    ],
)
def test_non_finite_or_far_outside_coordinates(tmp_path, polygon, named):
    """NaN or infinity crash pycocotools (a segmentation fault); 1e9 exhausts memory."""
    refused(tmp_path, f"annotation 5 (image 1) has {named}", annotations=[annotation(segmentation=[SQUARE, polygon])])


@pytest.mark.parametrize(
    ("segmentation", "named"),
    [
        ([], "segmentation []; expected polygons"),
        ([[]], "segmentation[0] of 0 numbers; expected x, y pairs of 3 or more points"),
        ([[0, 0, 4, 0]], "segmentation[0] of 4 numbers"),  # pycocotools would read 4 numbers as a box
        ([[0, 0, 4, 0, 4]], "segmentation[0] of 5 numbers"),
        ([SQUARE, 7], "segmentation[1] of 7; expected x, y pairs"),
        ([[0, 0, 4, 0, 4, "4", 0, 4]], "segmentation[0][5] = '4'; expected a number"),
        ([[0, 0, 4, 0, 4, True, 0, 4]], "segmentation[0][5] = True; expected a number"),
        ([[0, 0, 4, 0, 4, [4], 0, 4]], "segmentation[0][5] = [4]; expected a number"),
        ([[0, 0, 4, 0, 4, None, 0, 4]], "segmentation[0][5] = None; expected a number"),
    ],
)
def test_malformed_polygons(tmp_path, segmentation, named):
    refused(tmp_path, f"annotation 5 (image 1) has {named}", annotations=[annotation(segmentation=segmentation)])


@pytest.mark.parametrize(
    ("segmentation", "named"),
    [
        (
            {"size": [60, 80], "counts": [4800]},
            "segmentation size [60, 80]; expected the image's [height, width] [6, 8]",
        ),
        ({"size": [8, 6], "counts": [48]}, "segmentation size [8, 6]; expected"),
        ({"size": ["6", 8], "counts": [48]}, "segmentation size ['6', 8]; expected"),
        ({"size": [6, 8], "counts": [1, 2]}, "segmentation counts that cover 3 pixels; expected 6×8 = 48"),
        ({"size": [6, 8], "counts": [40, 10]}, "segmentation counts that cover 50 pixels; expected 6×8 = 48"),
        ({"size": [6, 8], "counts": [50, -2]}, "segmentation counts [50, -2]; expected a compressed RLE string or"),
        ({"size": [6, 8], "counts": [48.0]}, "segmentation counts [48.0]; expected"),
        ({"size": [6, 8], "counts": [True, 47]}, "segmentation counts [True, 47]; expected"),
        ({"size": [6, 8], "counts": None}, "segmentation counts None; expected"),
        ({"size": [6, 8], "counts": "zzzzzz"}, "segmentation counts 'zzzzzz'; expected a compressed RLE string"),
        ({"size": [6, 8], "counts": "0P"}, "segmentation counts '0P'; expected a compressed"),  # cut off in a run
        ({"size": [6, 8], "counts": "PPPPPP0"}, "segmentation counts 'PPPPPP0'; expected"),  # a run of 7 characters
        ({"size": [6, 8], "counts": "0O"}, "segmentation counts '0O'; expected"),  # a run of -1
        ({"size": [6, 8], "counts": "0:0"}, "segmentation counts that cover 10 pixels; expected 6×8 = 48"),
        ({"counts": [48]}, "segmentation {'counts': [48]}; expected an RLE {'size': [height, width], 'counts'"),
        (5, "segmentation 5; expected polygons"),
        ("abc", "segmentation 'abc'; expected polygons"),
        (None, "segmentation None; expected polygons"),
    ],
)
def test_malformed_rle_or_segmentation(tmp_path, segmentation, named):
    ann = annotation(segmentation=segmentation, iscrowd=1)
    refused(tmp_path, f"annotation 5 (image 1) has {named}", annotations=[ann])


@pytest.mark.parametrize("area", [-1.0, -0.001, math.nan, math.inf, "12", True, None])
def test_area_negative_non_finite_or_not_a_number(tmp_path, area):
    """A negative area used to leave the instance out silently (below min_area): its pixels became background."""
    named = f"annotation 5 (image 1) has area {area!r}; expected a finite number ≥ 0"
    refused(tmp_path, named, annotations=[annotation(area=area)])


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"id": "5"}, "annotation '5' (image 1) has id '5'; expected an integer"),
        ({"id": 5.0}, "annotation 5.0 (image 1) has id 5.0; expected an integer"),
        ({"image_id": "1"}, "annotation 5 (image '1') has image_id '1'; expected an integer"),
        ({"image_id": True}, "annotation 5 (image True) has image_id True; expected an integer"),
        ({"category_id": "9"}, "annotation 5 (image 1) has category_id '9'; expected an integer"),
        ({"iscrowd": 2}, "annotation 5 (image 1) has iscrowd 2; expected 0 or 1"),
        ({"iscrowd": True}, "annotation 5 (image 1) has iscrowd True; expected 0 or 1"),
        ({"iscrowd": "0"}, "annotation 5 (image 1) has iscrowd '0'; expected 0 or 1"),
        ({"iscrowd": 0.0}, "annotation 5 (image 1) has iscrowd 0.0; expected 0 or 1"),
    ],
)
def test_annotation_fields_of_the_wrong_type(tmp_path, fields, named):
    refused(tmp_path, named, annotations=[annotation(**fields)])


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"height": "6"}, "image 1 has height '6'; expected an integer ≥ 1"),
        ({"width": 0}, "image 1 has width 0; expected an integer ≥ 1"),
        ({"height": -6}, "image 1 has height -6; expected an integer ≥ 1"),
        ({"height": True}, "image 1 has height True; expected an integer ≥ 1"),
        ({"width": 8.0}, "image 1 has width 8.0; expected an integer ≥ 1"),
        ({"id": "1"}, "image '1' has id '1'; expected an integer"),
        ({"id": False}, "image False has id False; expected an integer"),
        ({"file_name": ""}, "image 1 has file_name ''; expected a non-empty string"),
        ({"file_name": 7}, "image 1 has file_name 7; expected a non-empty string"),
    ],
)
def test_image_fields_of_the_wrong_type(tmp_path, fields, named):
    images = [{"id": 1, "file_name": "a.png", "height": 6, "width": 8} | fields]
    refused(tmp_path, named, images=images)


@pytest.mark.parametrize(
    ("category", "named"),
    [
        ({"id": "9", "name": "dog"}, "category '9' has id '9'; expected an integer"),
        ({"id": True, "name": "dog"}, "category True has id True; expected an integer"),
        ({"id": 9, "name": ""}, "category 9 has name ''; expected a non-empty string"),
        ({"id": 9, "name": None}, "category 9 has name None; expected a non-empty string"),
        ({"id": 9, "name": "cat"}, "categories lists name 'cat' twice (ids 3 and 9)"),
    ],
)
def test_category_fields_of_the_wrong_type_or_a_repeated_name(tmp_path, category, named):
    """Two categories named alike would repeat a class name (in checkpoints too) and make
    selecting by name ambiguous."""
    refused(tmp_path, named, categories=[{"id": 3, "name": "cat"}, category])


def test_an_entry_that_is_not_an_object(tmp_path):
    refused(tmp_path, "annotations[1] is 5; expected an object", annotations=[annotation(), 5])


@pytest.mark.parametrize("key", [True, 1.5, None, ["dog"]])
def test_classes_entries_other_than_a_name_or_an_id(tmp_path, key):
    """True == 1 in Python: it would have selected category 1."""
    images_dir, ann_file = write_set(tmp_path, categories=[{"id": 1, "name": "dog"}, {"id": 3, "name": "cat"}])
    message = f"classes: {key!r} is a {type(key).__name__}; expected a category name or integer id"
    with pytest.raises(InputError, match=re.escape(message)):
        CocoSegmentation(images_dir, ann_file, classes=["cat", key])


def many_categories(count):
    return [{"id": i, "name": f"class{i}"} for i in range(1, count + 1)]


def test_more_selected_categories_than_labels_below_ignore_is_refused(tmp_path):
    """Label 255 is the ignore label, and the uint8 label cache would wrap 256 to 0."""
    images_dir, ann_file = write_set(tmp_path, categories=many_categories(255))
    with pytest.raises(InputError, match=r"ann\.json: 255 categories selected, at most 254: .*255 is the ignore label"):
        CocoSegmentation(images_dir, ann_file)
    ds = CocoSegmentation(images_dir, ann_file, classes=list(range(2, 256)))
    assert len(ds.classes) == 255 and ds.classes[-1] == "class255"


def test_254_classes_round_trip_through_the_label_cache(tmp_path):
    images_dir, ann_file = write_set(
        tmp_path, annotations=[annotation(category_id=254)], categories=many_categories(254)
    )
    ds = CocoSegmentation(images_dir, ann_file, cache_dir=tmp_path / "cache")
    first, cached = ds.load(0)["mask"], ds.load(0)["mask"]  # rasterised and written, then read back
    assert first.max() == 254 and np.array_equal(first, cached)
    assert len(list(ds.cache.glob("*.png"))) == 1


def test_the_label_cache_never_stores_a_label_that_would_wrap(tmp_path, monkeypatch):
    images_dir, ann_file = write_set(tmp_path, annotations=[annotation()])
    ds = CocoSegmentation(images_dir, ann_file, cache_dir=tmp_path / "cache")
    labels = np.arange(48, dtype=np.int64).reshape(6, 8) * 7  # up to 329: past uint8
    monkeypatch.setattr(ds, "label_map", lambda image_id: labels)
    np.testing.assert_array_equal(ds.load(0)["mask"], labels)  # rasterised, then cached
    monkeypatch.setattr(ds, "label_map", None)  # the second read can only come from the cache
    np.testing.assert_array_equal(ds.load(0)["mask"], labels)
    monkeypatch.setattr(ds, "label_map", lambda image_id: labels - 1)
    (ds.cache / "1.png").unlink()
    with pytest.raises(
        InputError, match=r"1\.png: a PNG label map holds integer labels 0\.\.65535, got int64 -1\.\.328"
    ):
        ds.load(0)
    assert not list(ds.cache.iterdir())


def test_polygons_straying_a_little_outside_load_and_rasterise_as_pycocotools_does(tmp_path):
    """Real COCO polygons stray slightly outside the image (x = 640.5 for a width of 640); the
    bounds themselves (-W and 2W, -H and 2H) are accepted too. Compared with pycocotools'
    annToMask on the same file, crowd regions (a compressed RLE) first as 255."""
    crowd = np.zeros((6, 8), np.uint8)
    crowd[:, 6:] = 1
    rle = mask_utils.encode(np.asfortranarray(crowd))
    anns = [
        annotation(1, segmentation=[[-0.4, -0.3, 8.5, -0.2, 8.4, 6.5]], area=30.0),
        annotation(2, category_id=3, segmentation=[[-8, -6, 16, -6, -8, 12]], area=48.0),
        annotation(3, segmentation={"size": [6, 8], "counts": rle["counts"].decode()}, area=12.0, iscrowd=1),
        annotation(4, segmentation=[[2, 2, 5.5, 2, 5.5, 4.5], [0.5, 4, 2, 4, 1, 6.2]], area=5.0),
    ]
    images_dir, ann_file = write_set(tmp_path, annotations=anns)
    mask = CocoSegmentation(images_dir, ann_file).load(0)["mask"]
    api = COCO(str(ann_file))
    expected = np.zeros((6, 8), np.int64)
    expected[api.annToMask(api.anns[3]) > 0] = 255
    for ann_id, label in ((2, 1), (1, 2), (4, 2)):  # by decreasing area: cat 1, then dog 2
        expected[api.annToMask(api.anns[ann_id]) > 0] = label
    np.testing.assert_array_equal(mask, expected)
    assert set(np.unique(mask)) >= {1, 2, 255}


def test_the_real_coco_tiny_files_still_load(shared_data):
    for split in ("train2017", "val2017"):
        ann_file = shared_data / f"coco_tiny/annotations/instances_{split}.json"
        ds = CocoSegmentation(shared_data / f"coco_tiny/{split}", ann_file)
        assert len(ds) == 80 and len(ds.classes) == 81


def test_settings_and_ids_that_would_be_misread_are_refused(tmp_path):
    """A NaN min_area would drop every instance, a plain string of classes be read letter by letter,
    and pycocotools would keep one of two annotations sharing an id."""
    images = tmp_path / "images"
    images.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(images / "a.png")
    square = [[1, 1, 5, 1, 5, 5, 1, 5]]
    ann = {"id": 1, "image_id": 1, "category_id": 1, "segmentation": square, "area": 16.0, "iscrowd": 0}
    data = {
        "images": [{"id": 1, "file_name": "a.png", "height": 8, "width": 8}],
        "annotations": [ann, dict(ann)],
        "categories": [{"id": 1, "name": "dog"}],
    }
    (tmp_path / "ann.json").write_text(json.dumps(data))
    with pytest.raises(InputError, match="annotations lists id 1 twice"):
        CocoSegmentation(images, tmp_path / "ann.json")
    data["annotations"][1]["id"] = 2
    (tmp_path / "ann.json").write_text(json.dumps(data))
    with pytest.raises(InputError, match=r"min_area: expected a finite number ≥ 0, got nan"):
        CocoSegmentation(images, tmp_path / "ann.json", min_area=float("nan"))
    with pytest.raises(InputError, match="classes: 'dog' is one string"):
        CocoSegmentation(images, tmp_path / "ann.json", classes="dog")
