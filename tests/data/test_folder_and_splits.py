"""ImageMaskFolder, splits, normalisation and hostile input, on small files made here."""

import json

import albumentations as A
import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from segattn import InputError, MissingPathError
from segattn.data import CocoSegmentation, ImageMaskFolder, SegDataModule
from segattn.data.base import to_tensors
from segattn.data.io import read_image, write_image
from segattn.data.splits import select
from segattn.data.transforms import eval_pipeline, serialize, train_pipeline

CLASSES = ["background", "thing"]


def save_mask(path, mask):
    Image.fromarray(mask).save(path)


def make_folder(tmp_path, n=4, size=(6, 8), mask_values=(0, 255), suffix=".png", mask_suffix=".png"):
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir(exist_ok=True)
    masks.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        write_image(images / f"s{i}{suffix}", rng.integers(0, 256, (*size, 3), dtype=np.uint8))
        save_mask(masks / f"s{i}{mask_suffix}", rng.choice(np.array(mask_values, np.uint8), size))
    return images, masks


def test_pairs_by_stem_and_maps_values(tmp_path):
    images, masks = make_folder(tmp_path, suffix=".jpg")
    ds = ImageMaskFolder(images, masks, CLASSES, value_map={0: 0, 255: 1})
    assert len(ds) == 4 and ds.keys == ["s0", "s1", "s2", "s3"]
    item = ds.load(2)
    raw = np.array(Image.open(masks / "s2.png"))
    np.testing.assert_array_equal(item["mask"], (raw == 255).astype(np.int64))
    assert item["image"].shape == (6, 8, 3) and item["name"] == "s2.jpg"


def test_pairs_by_pattern_with_roi(tmp_path):
    for folder in ("img", "gt", "fov"):
        (tmp_path / folder).mkdir()
    for key in ("21", "22"):
        write_image(tmp_path / f"img/{key}_training.tif", np.full((5, 5, 3), 9, np.uint8))
        Image.fromarray(np.full((5, 5), 255, np.uint8)).save(tmp_path / f"gt/{key}_manual1.gif")
        fov = np.zeros((5, 5), np.uint8)
        fov[1:4, 1:4] = 255
        Image.fromarray(fov).save(tmp_path / f"fov/{key}_training_mask.gif")
    ds = ImageMaskFolder(
        tmp_path / "img", tmp_path / "gt", CLASSES, image_pattern="{id}_training.tif",
        mask_pattern="{id}_manual1.gif", value_map={0: 0, 255: 1}, roi_dir=tmp_path / "fov",
        roi_pattern="{id}_training_mask.gif", split={"files": ["22"]},
    )  # fmt: skip
    assert ds.keys == ["22"]
    mask = ds.load(0)["mask"]
    assert (mask[1:4, 1:4] == 1).all() and (mask[0] == 255).all() and (mask[:, 4] == 255).all()


def test_unmapped_values_name_file_and_values(tmp_path):
    images, masks = make_folder(tmp_path, mask_values=(0, 7))
    with pytest.raises(InputError, match=r"s0\.png.*\[7\]"):
        ImageMaskFolder(images, masks, CLASSES, value_map={0: 0, 255: 1}).load(0)
    with pytest.raises(InputError, match=r"\[7\]"):  # no map: values must be class indices or 255
        ImageMaskFolder(images, masks, CLASSES).load(0)
    with pytest.raises(InputError, match="value_map"):
        ImageMaskFolder(images, masks, CLASSES, value_map={0: 5})


def test_binary_0_255_masks_are_never_read_as_ignore(tmp_path):
    images, masks = make_folder(tmp_path)
    with pytest.raises(InputError, match=r"\{0: 0, 255: 1\}"):  # no map: 255 is refused, not taken as ignore
        ImageMaskFolder(images, masks, CLASSES).load(0)
    mask = ImageMaskFolder(images, masks, CLASSES, value_map={0: 0, 255: 1}).load(0)["mask"]
    assert set(np.unique(mask)) == {0, 1}


def test_size_mismatch_names_both_files(tmp_path):
    images, masks = make_folder(tmp_path)
    save_mask(masks / "s1.png", np.zeros((7, 8), np.uint8))
    with pytest.raises(InputError, match=r"s1\.png.*8×7.*8×6"):
        ImageMaskFolder(images, masks, CLASSES, value_map={0: 0, 255: 1}).load(1)


def test_corrupt_image_and_unpaired_files_and_empty_folders(tmp_path):
    images, masks = make_folder(tmp_path)
    (images / "s3.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(InputError, match=r"s3\.png"):
        ImageMaskFolder(images, masks, CLASSES, value_map={0: 0, 255: 1}).load(3)
    save_mask(masks / "extra.png", np.zeros((6, 8), np.uint8))
    with pytest.raises(InputError, match="extra"):
        ImageMaskFolder(images, masks, CLASSES)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no image files"):
        ImageMaskFolder(empty, masks, CLASSES)
    with pytest.raises(MissingPathError, match="nowhere"):
        ImageMaskFolder(tmp_path / "nowhere", masks, CLASSES)
    with pytest.raises(InputError, match=r"matches no file"):
        ImageMaskFolder(images, masks, CLASSES, image_pattern="{id}_training.tif", mask_pattern="{id}.png")


def test_image_kinds_grey16_rgba_gif(tmp_path):
    grey16 = (np.arange(30, dtype=np.uint16) * 2000).reshape(5, 6)
    write_image(tmp_path / "g16.png", grey16)
    assert read_image(tmp_path / "g16.png", channels=1).dtype == np.uint16
    np.testing.assert_array_equal(read_image(tmp_path / "g16.png", channels=1)[..., 0], grey16)
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 10
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    rgb = read_image(tmp_path / "a.png")
    assert rgb.shape == (4, 4, 3) and (rgb[..., 0] == 200).all() and (rgb[..., 1:] == 0).all()
    Image.fromarray(np.full((3, 3), 77, np.uint8)).save(tmp_path / "g.gif")
    assert (read_image(tmp_path / "g.gif") == 77).all() and read_image(tmp_path / "g.gif").shape == (3, 3, 3)


@pytest.mark.parametrize(
    ("spec", "check"),
    [
        ({"window": [1000, 2000]}, lambda x: x.min() == -1 and x.max() == 1),
        ({"percentile": [0, 100]}, lambda x: np.isclose(x.min(), -1) and np.isclose(x.max(), 1)),
        ("zscore", lambda x: abs(x.mean()) < 1e-4 and abs(x.std() - 1) < 1e-3),
    ],
)
def test_normalisations_for_16_bit_data(spec, check):
    image = (np.linspace(0, 60000, 64 * 64).reshape(64, 64, 1)).astype(np.uint16)
    item = {"image": image, "mask": np.zeros((64, 64), np.int64), "name": "x"}
    out = to_tensors(eval_pipeline(spec, 1), item)["image"].numpy()
    assert out.dtype == np.float32 and out.shape == (1, 64, 64) and check(out)
    trained = to_tensors(train_pipeline(32, spec, 1, "medical"), item)
    assert trained["image"].shape == (1, 32, 32)


def test_16_bit_images_under_an_8_bit_normalisation_are_refused():
    item = {"image": np.full((8, 8, 3), 4000, np.uint16), "mask": np.zeros((8, 8), np.int64), "name": "scan.png"}
    for pipeline in (eval_pipeline("imagenet", 3), train_pipeline(8, "imagenet", 3, "natural")):
        with pytest.raises(InputError, match=r"scan.png: 16-bit pixels \(up to 4000\).*zscore"):
            to_tensors(pipeline, item)
    explicit = {"mean": [0.5] * 3, "std": [0.2] * 3, "max_pixel_value": 65535}
    assert to_tensors(eval_pipeline(explicit, 3), item)["image"].max() < 1


def test_unknown_normalisation_is_named():
    with pytest.raises(InputError, match="normalize"):
        eval_pipeline({"windw": [1, 2]}, 1)
    with pytest.raises(InputError, match="imagenet"):
        eval_pipeline("imagenet", 1)


@pytest.mark.parametrize("preset", ["natural", "medical", "none"])
def test_every_preset_keeps_labels_exact(preset):
    rng = np.random.default_rng(1)
    mask = rng.integers(0, 5, (90, 70))
    mask[:5] = 255
    item = {"image": rng.integers(0, 256, (90, 70, 3), dtype=np.uint8), "mask": mask, "name": "x"}
    pipeline = train_pipeline(64, "imagenet", 3, preset)
    pipeline.set_random_seed(0)
    for _ in range(20):
        out = to_tensors(pipeline, item)
        assert out["mask"].shape == (64, 64) and set(out["mask"].unique().tolist()) <= {0, 1, 2, 3, 4, 255}


def test_splits_are_disjoint_and_cover():
    keys = [f"k{i}" for i in range(23)]
    for spec in ({"ratio": 0.8, "seed": 3}, {"fold": 1, "folds": 5, "seed": 3}):
        train = select(keys, {**spec, "subset": "train"}, "x")
        val = select(keys, {**spec, "subset": "val"}, "x")
        assert not set(train) & set(val) and sorted(train + val) == sorted(keys)
    folds = [set(select(keys, {"fold": k, "folds": 5, "subset": "val"}, "x")) for k in range(5)]
    assert set().union(*folds) == set(keys) and sum(map(len, folds)) == len(keys)
    assert select(keys, {"ratio": 0.8, "seed": 3, "subset": "val"}, "x") == select(
        keys, {"ratio": 0.8, "seed": 3, "subset": "val"}, "x"
    )
    with pytest.raises(InputError, match="nope"):
        select(keys, {"files": ["nope"]}, "x")
    with pytest.raises(InputError, match="exactly one"):
        select(keys, {"ratio": 0.5, "files": ["k1"]}, "x")
    with pytest.raises(InputError, match="subset"):
        select(keys, {"ratio": 0.5}, "x")


def test_pipeline_from_albumentations_serialised_form_in_config(tmp_path):
    images, masks = make_folder(tmp_path, n=4, size=(40, 40))
    train = ImageMaskFolder(images, masks, CLASSES, value_map={0: 0, 255: 1}, split={"ratio": 0.5, "subset": "train"})
    val = ImageMaskFolder(images, masks, CLASSES, value_map={0: 0, 255: 1}, split={"ratio": 0.5, "subset": "val"})
    spec = json.loads(json.dumps(serialize(train_pipeline(24, "zscore", 3, "none"))))
    dm = SegDataModule(train, val, train_transform=spec, normalize="zscore", batch_size=2)
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (2, 3, 24, 24)
    # evaluation would normalise by ImageNet's statistics (data.normalize's default), training per image
    with pytest.raises(InputError, match=r"train_transform \(else data.normalize 'imagenet'\).*image_per_channel"):
        SegDataModule(train, val, train_transform=spec)
    for unused, named in [
        ({"crop_size": 999}, "data.crop_size 999: unused, since data.train_transform give"),
        ({"augment": "medical"}, "data.augment 'medical': unused"),
        ({"eval_transform": serialize(eval_pipeline("zscore", 3)), "normalize": "zscore"},
         "data.normalize 'zscore': unused, since data.train_transform and eval_transform give"),
    ]:  # fmt: skip
        with pytest.raises(InputError, match=named):
            SegDataModule(train, val, train_transform=spec, **unused)
    raw = serialize(A.Compose([A.HorizontalFlip(), A.RandomCrop(24, 24)]))
    with pytest.raises(InputError, match="no normalisation step"):
        SegDataModule(train, val, train_transform=raw)
    with pytest.raises(InputError, match="train_transform"):
        SegDataModule(train, val, train_transform={"transform": {"__class_fullname__": "NoSuchTransform"}})
    spec["transform"]["transforms"][-1]["heigth"] = 24  # a typo: Albumentations would only warn
    with pytest.raises(InputError, match=r"data\.train_transform: Argument\(s\) 'heigth' are not valid"):
        SegDataModule(train, val, train_transform=spec, normalize="zscore")


def coco_file(tmp_path, file_name="a.png", segmentation=None, extra_anns=()):
    (tmp_path / "img").mkdir(exist_ok=True)
    write_image(tmp_path / "img/a.png", np.zeros((6, 8, 3), np.uint8))
    seg = segmentation or [[0, 0, 4, 0, 4, 4, 0, 4]]
    anns = [{"id": 1, "image_id": 1, "category_id": 5, "segmentation": seg, "area": 16.0, "iscrowd": 0}, *extra_anns]
    coco = {
        "images": [{"id": 1, "file_name": file_name, "width": 8, "height": 6}],
        "annotations": anns,
        "categories": [{"id": 5, "name": "box"}, {"id": 7, "name": "dot"}],
    }
    (tmp_path / "ann.json").write_text(json.dumps(coco))
    return tmp_path / "img", tmp_path / "ann.json"


def test_coco_file_name_escaping_the_folder_is_refused(tmp_path):
    (tmp_path / "secret.png").write_bytes(b"")
    images, ann = coco_file(tmp_path, file_name="../secret.png")
    with pytest.raises(InputError, match=r"\.\./secret\.png.*outside"):
        CocoSegmentation(images, ann)


def test_coco_uncompressed_rle_min_area_skip_empty_and_overlap_ignore(tmp_path):
    fortran = np.zeros((6, 8), np.uint8)
    fortran[4:, 6:] = 1
    counts, flat, value, run = [], fortran.flatten(order="F"), 0, 0
    for v in flat:  # uncompressed RLE: run lengths of 0s and 1s, column-major
        if v == value:
            run += 1
        else:
            counts.append(run)
            value, run = v, 1
    counts.append(run)
    dot = {"id": 2, "image_id": 1, "category_id": 7, "segmentation": {"counts": counts, "size": [6, 8]},
           "area": 4.0, "iscrowd": 0}  # fmt: skip
    overlapping = {"id": 3, "image_id": 1, "category_id": 7, "segmentation": [[2, 2, 6, 2, 6, 6, 2, 6]],
                   "area": 16.0, "iscrowd": 0}  # fmt: skip
    images, ann = coco_file(tmp_path, extra_anns=[dot, overlapping])
    mask = CocoSegmentation(images, ann, overlap="annotation_order").load(0)["mask"]
    assert (mask[4:, 6:] == 2).all() and mask[0, 0] == 1 and mask[3, 3] == 2
    ignore = CocoSegmentation(images, ann, overlap="ignore").load(0)["mask"]
    assert (ignore[2:4, 2:4] == 255).all() and ignore[0, 0] == 1 and ignore[5, 5] == 2
    assert (CocoSegmentation(images, ann, min_area=5, overlap="annotation_order").load(0)["mask"][4:, 6:] != 2).any()
    assert len(CocoSegmentation(images, ann, classes=["box"], skip_empty=True)) == 1


def test_coco_cache_is_reused_and_keyed_by_settings(tmp_path):
    images, ann = coco_file(tmp_path)
    first = CocoSegmentation(images, ann, cache_dir=tmp_path / "cache")
    mask = first.load(0)["mask"]
    cached = list((tmp_path / "cache").rglob("*.png"))
    assert len(cached) == 1
    Image.fromarray(np.full((6, 8), 1, np.uint8)).save(cached[0])  # a later run reads the cache
    assert (CocoSegmentation(images, ann, cache_dir=tmp_path / "cache").load(0)["mask"] == 1).all()
    other = CocoSegmentation(images, ann, cache_dir=tmp_path / "cache", crowd="background").load(0)["mask"]
    np.testing.assert_array_equal(other, mask)  # other settings: another key, rasterised afresh
    assert len(list((tmp_path / "cache").rglob("*.png"))) == 2


def test_value_map_config_for_label_png_folders(tmp_path):
    """COCO-Stuff style: raw ids with gaps → contiguous ids, unlabelled → ignore."""
    images, masks = make_folder(tmp_path, n=2, mask_values=(0, 92, 182, 255))
    value_map = {0: 0, 92: 1, 182: 2, 255: 255}
    ds = ImageMaskFolder(images, masks, ["a", "b", "c"], value_map=value_map)
    raw = np.array(Image.open(masks / "s0.png"))
    expected = np.vectorize(value_map.get)(raw)
    np.testing.assert_array_equal(ds.load(0)["mask"], expected)
    assert torch.from_numpy(ds.load(0)["mask"]).dtype == torch.int64


def test_cocostuff_config_maps_raw_ids_to_171_contiguous_classes(tmp_path):
    from segattn.data.config import load_datamodule

    from ..conftest import REPO

    config = yaml.safe_load((REPO / "configs/cocostuff.yaml").read_text())
    value_map = config["data"]["train"]["init_args"]["value_map"]
    classes = config["data"]["train"]["init_args"]["classes"]
    assert len(classes) == 171 and classes[0] == "person" and classes[-1] == "wood"
    assert sorted(v for v in value_map.values() if v != 255) == list(range(171))
    assert value_map[255] == 255 and 11 not in value_map and value_map[181] == 170
    images, masks = make_folder(tmp_path, n=4, mask_values=(0, 91, 181, 255))
    for split in ("train", "val"):
        config["data"][split]["init_args"] |= {"images_dir": str(images), "masks_dir": str(masks)}
    config["data"]["train"]["init_args"]["split"] = {"ratio": 0.5, "subset": "train"}
    config["data"]["val"]["init_args"]["split"] = {"ratio": 0.5, "subset": "val"}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    dm = load_datamodule(tmp_path / "c.yaml")
    raw = np.array(Image.open(masks / dm.datasets["val"].image_paths[0].name))
    mapped = dm.datasets["val"].load(0)["mask"]
    np.testing.assert_array_equal(mapped[raw == 91], 80)  # id 92 "banner", the first stuff class
    np.testing.assert_array_equal(mapped[raw == 255], 255)
    assert set(np.unique(mapped)) <= {0, 80, 170, 255}
