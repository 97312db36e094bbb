import json
import time

import lightning as L
import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils

from segattn import InputError, MissingPathError
from segattn.data import CocoSegmentation, SegDataModule, SyntheticShapes
from segattn.data.base import to_tensors
from segattn.data.io import read_image, write_image
from segattn.data.sampling import EpochSampler, Transformed, evaluation_sampler, pad_collate
from segattn.data.transforms import eval_pipeline, train_pipeline


def synthetic(root, split="train"):
    return SyntheticShapes(root, split, n_train=24, n_val=8, size=64, seed=3)


def write_coco(tmp_path, annotations, images=({"id": 1, "file_name": "a.png", "width": 8, "height": 6},)):
    """A tiny COCO set: 8×6 images (black), the given annotations, categories 3 = cat, 9 = dog."""
    (tmp_path / "img").mkdir(exist_ok=True)
    for info in images:
        if info["file_name"] != "missing.png":
            write_image(tmp_path / "img" / info["file_name"], np.zeros((6, 8, 3), np.uint8))
    coco = {
        "images": list(images),
        "annotations": annotations,
        "categories": [{"id": 9, "name": "dog"}, {"id": 3, "name": "cat"}],
    }
    (tmp_path / "ann.json").write_text(json.dumps(coco))
    return tmp_path / "img", tmp_path / "ann.json"


def box(ann_id, category_id, x0, y0, x1, y1, **extra):
    polygon = [x0, y0, x1, y0, x1, y1, x0, y1]
    return {
        "id": ann_id,
        "image_id": 1,
        "category_id": category_id,
        "segmentation": [polygon],
        "area": float((x1 - x0) * (y1 - y0)),
        "iscrowd": 0,
        **extra,
    }


def test_contiguous_labels_smaller_instance_wins_and_crowd_is_ignored(tmp_path):
    crowd_mask = np.zeros((6, 8), np.uint8, order="F")
    crowd_mask[:, 6:] = 1
    rle = mask_utils.encode(crowd_mask)
    rle["counts"] = rle["counts"].decode()
    anns = [
        box(1, 9, 0, 0, 6, 6),  # a big dog
        box(2, 3, 2, 2, 4, 4),  # a small cat on it: wins
        {"id": 3, "image_id": 1, "category_id": 3, "segmentation": rle, "area": 12.0, "iscrowd": 1},
    ]
    images_dir, ann_file = write_coco(tmp_path, anns)
    ds = CocoSegmentation(images_dir, ann_file)
    assert ds.classes == ["background", "cat", "dog"]  # ascending COCO id: 3, 9
    mask = ds.load(0)["mask"]
    assert mask.dtype == np.int64
    assert (mask[:, 6:] == 255).all()
    assert mask[3, 3] == 1 and mask[0, 0] == 2
    assert set(np.unique(mask)) == {1, 2, 255}
    assert (CocoSegmentation(images_dir, ann_file, crowd="background").load(0)["mask"][:, 6:] == 0).all()
    only_dogs = CocoSegmentation(images_dir, ann_file, classes=["dog"])
    assert only_dogs.classes == ["background", "dog"]
    assert only_dogs.load(0)["mask"][3, 3] == 1  # the cat became background, the dog shows


def test_coco_errors_name_the_file_or_value(tmp_path):
    images_dir, ann_file = write_coco(
        tmp_path, [], images=({"id": 1, "file_name": "missing.png", "width": 8, "height": 6},)
    )
    with pytest.raises(MissingPathError, match=r"missing\.png"):
        CocoSegmentation(images_dir, ann_file)
    with pytest.raises(MissingPathError, match=r"nope\.json"):
        CocoSegmentation(images_dir, tmp_path / "nope.json")
    images_dir, ann_file = write_coco(tmp_path, [box(1, 9, 0, 0, 2, 2)])
    with pytest.raises(InputError, match="'horse'"):
        CocoSegmentation(images_dir, ann_file, classes=["horse"])
    for wrong, named in (
        ({"image_id": 7}, r"\(image 7\) has image_id 7, not in 'images'"),
        ({"category_id": 4}, r"\(image 1\) has category_id 4, not in 'categories'"),
    ):
        images_dir, ann_file = write_coco(tmp_path, [box(1, 9, 0, 0, 2, 2), box(5, 9, 0, 0, 2, 2) | wrong])
        with pytest.raises(InputError, match=f"ann.json: annotation 5 {named}"):
            CocoSegmentation(images_dir, ann_file)
    a_png = {"id": 1, "file_name": "a.png", "width": 8, "height": 6}
    for images, anns, named in (
        # the same file under a second id: pycocotools would keep one, and drop the other's annotations
        ((a_png, a_png | {"id": 2}), [box(1, 9, 0, 0, 2, 2)], "images lists file_name 'a.png' twice"),
        ((a_png, a_png), [box(1, 9, 0, 0, 2, 2)], "images lists id 1 twice"),
        (
            (a_png,),
            [{k: v for k, v in box(3, 9, 0, 0, 2, 2).items() if k != "segmentation"}],
            r"annotation 3 has no \['segmentation'\]",
        ),
        (({"id": 1, "file_name": "a.png"},), [], r"image 1 has no \['height', 'width'\]"),
    ):
        images_dir, ann_file = write_coco(tmp_path, anns, images=images)
        with pytest.raises(InputError, match=f"ann.json: {named}"):
            CocoSegmentation(images_dir, ann_file)
    ann_file.write_text(json.dumps({"images": [a_png], "annotations": []}))  # no "categories"
    with pytest.raises(InputError, match=r"ann\.json: no 'categories' list"):
        CocoSegmentation(images_dir, ann_file)
    images_dir, ann_file = write_coco(tmp_path, [box(1, 9, 0, 0, 2, 2)])
    (images_dir / "a.png").write_bytes(b"not an image")
    with pytest.raises(InputError, match=r"a\.png"):
        CocoSegmentation(images_dir, ann_file).load(0)


def test_coco_file_with_100k_annotations_loads_and_rasterises(tmp_path):
    """1,000 images × 100 boxes: loading is linear in the annotations (the time is printed; the
    bound only catches a hang or a quadratic scan, tools/benchmark.py data reports the figure)."""
    images = [{"id": i, "file_name": f"{i}.png", "width": 8, "height": 6} for i in range(1, 1001)]
    anns = [
        box(image["id"] * 100 + k, 9 if k % 2 else 3, k % 6, 0, k % 6 + 2, 3) | {"image_id": image["id"]}
        for image in images
        for k in range(100)
    ]
    images_dir, ann_file = write_coco(tmp_path, anns, images=images)
    start = time.perf_counter()
    ds = CocoSegmentation(images_dir, ann_file, classes=["dog"], skip_empty=True)
    seconds = time.perf_counter() - start
    print(f"CocoSegmentation: 100,000 annotations, 1,000 images loaded in {seconds:.2f} s")
    assert seconds < 60 and len(ds) == 1000
    dogs = [a["segmentation"][0] for a in anns if a["image_id"] == 1000 and a["category_id"] == 9]
    expected = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(dogs, 6, 8)))
    np.testing.assert_array_equal(ds.load(999)["mask"], expected)


def test_wrong_image_size_is_an_error(tmp_path):
    images_dir, ann_file = write_coco(tmp_path, [box(1, 9, 0, 0, 2, 2)])
    write_image(images_dir / "a.png", np.zeros((5, 8, 3), np.uint8))
    with pytest.raises(InputError, match=r"8×5.*8×6"):
        CocoSegmentation(images_dir, ann_file).load(0)


def test_train_pipeline_keeps_labels_exact(synthetic_root):
    item = synthetic(synthetic_root).load(0)
    pipeline = train_pipeline(48, "imagenet", 3, "natural")
    pipeline.set_random_seed(0)
    for _ in range(10):
        out = to_tensors(pipeline, item)
        assert out["image"].shape == (3, 48, 48) and out["image"].dtype == torch.float32
        assert out["mask"].shape == (48, 48) and out["mask"].dtype == torch.int64
        assert set(out["mask"].unique().tolist()) <= set(np.unique(item["mask"]).tolist()) | {255}


def test_eval_pipeline_keeps_size_and_mask(synthetic_root):
    item = synthetic(synthetic_root).load(1)
    out = to_tensors(eval_pipeline("imagenet", 3), item)
    assert out["image"].shape == (3, 64, 64)
    np.testing.assert_array_equal(out["mask"].numpy(), item["mask"])


def batches(datamodule, count=2):
    loader = datamodule.train_dataloader()
    return [b for _, b in zip(range(count), loader, strict=False)]


def small_datamodule(root, num_workers=0):
    return SegDataModule(synthetic(root), synthetic(root, "val"), crop_size=48, batch_size=4, num_workers=num_workers)


def test_training_batches_reproducible_by_seed(synthetic_root):
    L.seed_everything(1)
    first = batches(small_datamodule(synthetic_root))
    L.seed_everything(1)
    second = batches(small_datamodule(synthetic_root))
    L.seed_everything(2)
    other = batches(small_datamodule(synthetic_root))
    for a, b in zip(first, second, strict=True):
        assert torch.equal(a["image"], b["image"]) and torch.equal(a["mask"], b["mask"])
    assert not torch.equal(first[0]["image"], other[0]["image"])


def test_batches_do_not_depend_on_the_number_of_workers(synthetic_root):
    L.seed_everything(1)
    in_process = batches(small_datamodule(synthetic_root), count=6)
    L.seed_everything(1)
    in_workers = batches(small_datamodule(synthetic_root, 2), count=6)
    for a, b in zip(in_process, in_workers, strict=True):
        assert a["name"] == b["name"] and torch.equal(a["image"], b["image"])


def test_persistent_workers_see_each_epoch(synthetic_root):
    """The training loader keeps its workers across epochs, and still gives each epoch its own order and
    augmentation, equal to those loaded in the main process."""

    def two_epochs(workers):
        L.seed_everything(1)
        loader = small_datamodule(synthetic_root, workers).train_dataloader()
        images = []
        for epoch in (0, 1):
            loader.sampler.set_epoch(epoch)  # as Lightning does before each epoch
            images.append(torch.cat([batch["image"] for batch in loader]))
        return loader, images

    loader, in_workers = two_epochs(2)
    _, in_process = two_epochs(0)
    assert loader.persistent_workers and not torch.equal(in_workers[0], in_workers[1])
    assert all(torch.equal(a, b) for a, b in zip(in_workers, in_process, strict=True))


def test_augmentation_follows_seed_epoch_and_index(synthetic_root):
    """The same image at two indices, or in two epochs, is augmented differently; the same
    (seed, epoch, index) always gives the same item, whatever was drawn before."""
    dataset = Transformed(_Repeat(synthetic(synthetic_root)), train_pipeline(32, "imagenet", 3, "natural"), seed=7)
    first = dataset[0, 1]["image"]
    assert not torch.equal(dataset[0, 0]["image"], first)
    assert not torch.equal(dataset[1, 1]["image"], first)
    assert torch.equal(dataset[0, 1]["image"], first) and torch.equal(dataset[1]["image"], first)  # bare: epoch 0


def test_epoch_sampler_deals_each_sample_once_and_matches_one_process():
    """2 processes × batch 2 see, batch by batch, the samples of 1 process × batch 4; none twice."""
    dataset = Transformed(_Repeat(None, length=11), transform=None)
    one = EpochSampler(dataset, seed=5)
    ranks = [EpochSampler(dataset, seed=5, num_replicas=2, rank=r) for r in (0, 1)]
    for epoch in (0, 1):
        for sampler in (one, *ranks):
            sampler.set_epoch(epoch)
        keys = [list(s) for s in (one, *ranks)]
        assert {e for keys_of in keys for e, _ in keys_of} == {epoch}  # every key carries its epoch
        order, *per_rank = [[index for _, index in keys_of] for keys_of in keys]
        assert not set(per_rank[0]) & set(per_rank[1]) and len(per_rank[0]) == len(per_rank[1]) == 5
        for step in range(2):
            together = per_rank[0][2 * step : 2 * step + 2] + per_rank[1][2 * step : 2 * step + 2]
            assert sorted(together) == sorted(order[4 * step : 4 * step + 4])
    assert order != sorted(order)
    evaluation = [list(evaluation_sampler(dataset, "val", 2, r)) for r in (0, 1)]
    assert sorted(evaluation[0] + evaluation[1]) == list(range(11))
    with pytest.raises(InputError, match=r"data\.val: 11 images cannot feed 12 processes"):
        evaluation_sampler(dataset, "val", 12, 0)


class _Repeat:
    """Image 0 of a data set, `length` times."""

    def __init__(self, ds, length=4):
        self.ds = ds
        self.length = length

    def __len__(self):
        return self.length

    def load(self, index):
        return self.ds.load(0)


def test_datamodule_checks_its_inputs(synthetic_root):
    train, val = synthetic(synthetic_root), synthetic(synthetic_root, "val")
    with pytest.raises(InputError, match="normalize"):
        SegDataModule(train, val, normalize={"mean": [0.5], "std": [0.5]})
    with pytest.raises(InputError, match="splits must be disjoint"):
        SegDataModule(train, synthetic(synthetic_root))
    with pytest.raises(InputError, match="batch_size"):
        SegDataModule(train, val, batch_size=0)
    dm = SegDataModule(train, val)
    assert dm.classes == train.classes and dm.in_channels == 3
    with pytest.raises(InputError, match=r"data\.test"):
        dm.test_dataloader()


def test_read_image_errors_name_the_file(tmp_path):
    with pytest.raises(MissingPathError, match=r"nothing\.png"):
        read_image(tmp_path / "nothing.png")
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8 truncated")
    with pytest.raises(InputError, match=r"bad\.jpg"):
        read_image(tmp_path / "bad.jpg")


def test_pad_collate_batches_different_sizes_and_ignores_the_padding():
    items = [
        {"image": torch.ones(3, 4, 6), "mask": torch.zeros(4, 6, dtype=torch.int64), "name": "a"},
        {"image": torch.ones(3, 5, 3), "mask": torch.ones(5, 3, dtype=torch.int64), "name": "b"},
    ]
    batch = pad_collate(items)
    assert batch["image"].shape == (2, 3, 5, 6) and batch["mask"].shape == (2, 5, 6)
    assert (batch["mask"][0, 4] == 255).all() and (batch["mask"][1, :, 3:] == 255).all()
    assert (batch["image"][0, :, 4] == 0).all() and (batch["image"][1, :, :5, :3] == 1).all()
    assert batch["name"] == ["a", "b"]
