import json

import numpy as np
import pytest
from pycocotools.coco import COCO

from segattn import InputError
from segattn.data import SyntheticShapes, make_synthetic
from segattn.data.synthetic import CATEGORIES


def test_deterministic_by_seed(tmp_path):
    a = make_synthetic(tmp_path / "a", n_train=3, n_val=2, size=64, seed=5)
    b = make_synthetic(tmp_path / "b", n_train=3, n_val=2, size=64, seed=5)
    c = make_synthetic(tmp_path / "c", n_train=3, n_val=2, size=64, seed=6)
    for rel in ("annotations/instances_train.json", "annotations/instances_val.json", "train/000001.jpg"):
        assert (a / rel).read_bytes() == (b / rel).read_bytes()
    assert (a / "train/000001.jpg").read_bytes() != (c / "train/000001.jpg").read_bytes()


def test_reuses_same_settings_and_refuses_others(tmp_path):
    root = make_synthetic(tmp_path / "s", n_train=2, n_val=1, size=64, seed=0)
    assert make_synthetic(root, n_train=2, n_val=1, size=64, seed=0) == root
    with pytest.raises(InputError, match="n_train"):
        make_synthetic(root, n_train=3, n_val=1, size=64, seed=0)


def test_coco_file_has_classes_polygons_and_overlaps(synthetic_root):
    coco = json.loads((synthetic_root / "annotations/instances_train.json").read_text())
    assert len(coco["categories"]) >= 3
    assert {a["category_id"] for a in coco["annotations"]} == {c["id"] for c in CATEGORIES}
    assert all(isinstance(a["segmentation"], list) and len(a["segmentation"][0]) >= 6 for a in coco["annotations"])
    per_image = {}
    for a in coco["annotations"]:
        per_image.setdefault(a["image_id"], []).append(a)
    assert all(2 <= len(v) <= 5 for v in per_image.values())
    api = COCO(str(synthetic_root / "annotations/instances_train.json"))
    overlapping = 0
    for anns in per_image.values():
        masks = np.stack([api.annToMask(a) for a in anns])
        overlapping += int((masks.sum(0) > 1).any())
    assert overlapping > 0, "expected some partly overlapping shapes"


@pytest.mark.parametrize("split", ["train", "val"])
def test_semantic_masks_equal_union_of_annToMask_per_class(synthetic_root, split):
    ds = SyntheticShapes(synthetic_root, split, n_train=24, n_val=8, size=64, seed=3)
    api = COCO(str(synthetic_root / f"annotations/instances_{split}.json"))
    label_of = {c["id"]: i for i, c in enumerate(sorted(api.loadCats(api.getCatIds()), key=lambda c: c["id"]), 1)}
    assert ds.classes == ["background", "circle", "square", "triangle"]
    for index, image_id in enumerate(sorted(api.getImgIds())):
        item = ds.load(index)
        info = api.imgs[image_id]
        expected = np.zeros((info["height"], info["width"]), np.int64)
        claimed = np.zeros_like(expected)
        for category_id, label in label_of.items():
            anns = api.loadAnns(api.getAnnIds(imgIds=[image_id], catIds=[category_id]))
            union = np.zeros_like(expected, dtype=bool)
            for ann in anns:
                union |= api.annToMask(ann).astype(bool)
            expected[union] = label
            claimed += union
        assert claimed.max() <= 1, "classes must not overlap in the synthetic set"
        assert item["mask"].dtype == np.int64 and item["image"].dtype == np.uint8
        assert item["image"].shape == (64, 64, 3)
        np.testing.assert_array_equal(item["mask"], expected)
        assert item["name"] == info["file_name"]
