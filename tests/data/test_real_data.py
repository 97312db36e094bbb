"""Integration tests on the real data sets in ../shared/data (skipped where it is absent)."""

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

from segattn.data.config import load_datamodule

from ..conftest import REPO

CONFIGS = ["membrane", "drive", "camvid", "coco"]


@pytest.fixture(scope="module")
def datamodule(shared_data):
    """name → the SegDataModule of configs/<name>.yaml, each built once."""
    built = {}

    def get(name):
        if name not in built:
            built[name] = load_datamodule(REPO / "configs" / f"{name}.yaml")
        return built[name]

    return get


@pytest.mark.parametrize("name", CONFIGS)
def test_each_set_loads_through_its_config(datamodule, name):
    dm = datamodule(name)
    expected = {"membrane": (24, 6, 2), "drive": (15, 5, 2), "camvid": (367, 101, 11), "coco": (80, 80, 81)}[name]
    assert (len(dm.datasets["train"]), len(dm.datasets["val"]), len(dm.classes)) == expected
    item = dm.datasets["val"].load(0)
    assert item["mask"].dtype == np.int64 and item["mask"].shape == item["image"].shape[:2]
    assert set(np.unique(item["mask"])) <= set(range(len(dm.classes))) | {255}
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape[1:] == (dm.in_channels, 256, 256) and batch["mask"].shape[1:] == (256, 256)


def test_membrane_maps_to_zero_and_one(datamodule, shared_data):
    ds_all = [datamodule("membrane").datasets[s] for s in ("train", "val")]
    for ds in ds_all:
        for i in range(len(ds)):
            item = ds.load(i)
            raw = np.array(Image.open(shared_data / "membrane/masks" / item["name"]))
            np.testing.assert_array_equal(item["mask"], (raw == 0).astype(np.int64))  # membrane = 1
            assert item["image"].shape == (512, 512, 1)


def test_drive_outside_field_of_view_is_ignored(datamodule, shared_data):
    ds = datamodule("drive").datasets["val"]
    for i in range(len(ds)):
        item = ds.load(i)
        key = item["name"].split("_")[0]
        fov = np.array(Image.open(shared_data / f"drive/training/mask/{key}_training_mask.gif")) > 0
        vessels = np.array(Image.open(shared_data / f"drive/training/1st_manual/{key}_manual1.gif")) > 0
        assert (item["mask"][~fov] == 255).all()
        np.testing.assert_array_equal(item["mask"][fov], vessels[fov].astype(np.int64))


def test_camvid_void_becomes_ignore(datamodule, shared_data):
    ds = datamodule("camvid").datasets["val"]
    for i in range(0, len(ds), 10):
        item = ds.load(i)
        raw = np.array(Image.open(shared_data / "camvid/valannot" / item["name"].replace(".jpg", ".png")))
        expected = np.where(raw == 11, 255, raw).astype(np.int64)
        np.testing.assert_array_equal(item["mask"], expected)


@pytest.mark.parametrize("overlap", ["smaller_on_top", "annotation_order"])
def test_coco_val_equals_independent_pycocotools_rasterisation(shared_data, overlap):
    from segattn.data import CocoSegmentation

    ann_file = shared_data / "coco_tiny/annotations/instances_val2017.json"
    ds = CocoSegmentation(shared_data / "coco_tiny/val2017", ann_file, crowd="ignore", overlap=overlap)
    api = COCO(str(ann_file))
    label_of = {cid: i for i, cid in enumerate(sorted(api.getCatIds()), start=1)}
    assert len(ds) == len(api.getImgIds()) == 80
    crowd_images = 0
    for index in range(len(ds)):
        item = ds.load(index)
        info = next(i for i in api.imgs.values() if i["file_name"] == item["name"])
        anns = api.loadAnns(api.getAnnIds(imgIds=[info["id"]]))
        expected = np.zeros((info["height"], info["width"]), np.int64)
        for ann in (a for a in anns if a["iscrowd"]):  # crowd first: ignore
            expected[api.annToMask(ann) > 0] = 255
        things = [a for a in anns if not a["iscrowd"]]
        order = (
            sorted(things, key=lambda a: a["id"])
            if overlap == "annotation_order"
            else sorted(things, key=lambda a: (-a["area"], a["id"]))
        )
        for ann in order:
            expected[api.annToMask(ann) > 0] = label_of[ann["category_id"]]
        crowd_images += any(a["iscrowd"] for a in anns)
        np.testing.assert_array_equal(item["mask"], expected, err_msg=item["name"])
    assert crowd_images > 0, "coco_tiny val holds crowd annotations; the test must cover them"
