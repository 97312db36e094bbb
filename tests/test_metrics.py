"""SegMetrics against independent numpy computations and torchmetrics."""

import warnings

import numpy as np
import pytest
import torch
from torchmetrics.classification import MulticlassJaccardIndex

from segattn import InputError, SegMetrics, segmentation_scores
from segattn.metrics import confusion_matrix

K = 5
PER_CLASS = ("IoU", "Dice", "Precision", "Recall", "Acc")
MEANS = ("mIoU", "mDice", "mPrecision", "mRecall", "mAcc", "aAcc", "fwIoU")


def numpy_confusion(pred: np.ndarray, target: np.ndarray, k: int, ignore: int = 255) -> np.ndarray:
    """An independent reference: a plain numpy confusion matrix over the non-ignored pixels."""
    keep = target != ignore
    return np.bincount(target[keep] * k + pred[keep], minlength=k * k).reshape(k, k)


def numpy_scores(cm: np.ndarray, absent: str = "nan", include_background: bool = True) -> dict:
    """The module docstring's definitions; a matrix with no pixel scores NaN throughout."""
    if not cm.sum():
        nan = np.full(len(cm), np.nan)
        return {key: nan for key in PER_CLASS} | {key: np.nan for key in MEANS}
    tp = np.diag(cm).astype(float)
    rows, cols = cm.sum(1).astype(float), cm.sum(0).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        iou, dice = tp / (rows + cols - tp), 2 * tp / (rows + cols)
        precision, recall = tp / cols, tp / rows
        if absent != "nan":
            empty = (rows + cols) == 0
            iou[empty] = dice[empty] = 1.0 if absent == "one" else 0.0
        aacc = tp.sum() / cm.sum()
        fwiou = np.sum((rows / cm.sum() * iou)[rows > 0])
    first = 0 if include_background else 1
    out = {"IoU": iou, "Dice": dice, "Precision": precision, "Recall": recall, "Acc": recall}
    for key in PER_CLASS:
        values = out[key][first:]
        out["m" + key] = np.nan if np.isnan(values).all() else np.nanmean(values)
    return out | {"aAcc": aacc, "fwIoU": fwiou}


def random_batch(seed: int, n: int = 3, size: int = 40, k: int = K, ignore_share: float = 0.1):
    g = torch.Generator().manual_seed(seed)
    target = torch.randint(0, k, (n, size, size), generator=g)
    target[torch.rand(n, size, size, generator=g) < ignore_share] = 255
    logits = torch.randn(n, k, size, size, generator=g)
    return logits, target


def assert_scores_equal(ours: dict, ref: dict):
    for key, value in ref.items():
        if key == "cm":
            continue
        np.testing.assert_allclose(ours[key].numpy(), value, rtol=0, atol=1e-6, equal_nan=True, err_msg=key)


def assert_dataset_scores_equal_numpy(batches: list, k: int = K) -> None:
    """SegMetrics updated with (logits, target) batches of any spatial rank: its confusion matrix
    and scores equal numpy's over every pixel (voxel) of every batch, 255 = ignore."""
    metric = SegMetrics(k)
    for logits, target in batches:
        metric.update(logits, target)
    pred = np.concatenate([b[0].argmax(1).numpy().ravel() for b in batches])
    target = np.concatenate([b[1].numpy().ravel() for b in batches])
    cm = numpy_confusion(pred, target, k)
    np.testing.assert_array_equal(metric.confmat.numpy(), cm)
    assert_scores_equal(metric.compute(), numpy_scores(cm))


def test_dataset_scores_equal_numpy_over_batches_with_ignore():
    assert_dataset_scores_equal_numpy([random_batch(s) for s in range(3)])


def test_absent_class_class_only_in_truth_and_all_ignore_image():
    g = torch.Generator().manual_seed(5)
    target = torch.randint(0, 3, (3, 16, 16), generator=g)  # classes 0–2 only
    target[0, :4] = 3  # class 3: only in the truth, never predicted
    target[2] = 255  # an all-ignore image
    preds = torch.randint(0, 3, (3, 16, 16), generator=g)  # class 4: in neither
    cm = numpy_confusion(preds.numpy().ravel(), target.numpy().ravel(), K)
    for absent in ("nan", "one", "zero"):
        for include_background in (True, False):
            ours = segmentation_scores(preds, target, K, absent=absent, include_background=include_background)
            assert_scores_equal(ours, numpy_scores(cm, absent, include_background))
    ours = segmentation_scores(preds, target, K)
    assert torch.isnan(ours["IoU"][4]) and ours["IoU"][3] == 0 and torch.isnan(ours["Precision"][3])


def nanmean(values) -> float | np.ndarray:
    """np.nanmean over axis 0 without its warning: NaN where every value is NaN."""
    values = np.asarray(values, float)
    counts = (~np.isnan(values)).sum(0)
    with np.errstate(invalid="ignore"):
        return np.where(counts > 0, np.nansum(values, 0) / counts, np.nan)


@pytest.mark.parametrize("absent", ["nan", "one", "zero"])
def test_image_averaging_equals_numpy_per_image_means(absent):
    logits, target = random_batch(9, n=4, k=4)
    logits = torch.cat([logits, torch.full_like(logits[:, :1], -100)], dim=1)  # class 4: absent from the split
    target[1] = torch.where(target[1] == 2, 255, target[1])  # class 2 absent from one image's truth
    target[3] = 255  # an image with nothing to score: NaN throughout, left out
    preds = logits.argmax(1)
    per_image = [
        numpy_scores(numpy_confusion(p.numpy().ravel(), t.numpy().ravel(), 5), absent)
        for p, t in zip(preds, target, strict=True)
    ]
    assert all(np.isnan(per_image[3][key]).all() for key in (*PER_CLASS, *MEANS))
    metric = SegMetrics(5, averaging="image", absent=absent)
    metric.update(preds[:2], target[:2])
    metric.update(preds[2:], target[2:])
    ours = metric.compute()
    for key in (*PER_CLASS, *MEANS):
        expected = nanmean([s[key] for s in per_image])
        np.testing.assert_allclose(ours[key].numpy(), expected, atol=1e-6, equal_nan=True, err_msg=key)
    without_empty = segmentation_scores(preds[:3], target[:3], 5, averaging="image", absent=absent)
    for key, value in without_empty.items():
        torch.testing.assert_close(ours[key], value, equal_nan=True, msg=key)
    assert ours["IoU"][4].isnan() if absent == "nan" else ours["IoU"][4] == (absent == "one")


def test_reduce_zero_label_matches_mmsegmentation_rule():
    g = torch.Generator().manual_seed(2)
    raw = torch.randint(0, K + 1, (2, 20, 20), generator=g)  # 0 = "other", 1..K = classes
    raw[0, :3] = 255
    preds = torch.randint(0, K, (2, 20, 20), generator=g)
    reduced = raw.clone()  # MMSegmentation: 0 → 255, then −1, and 254 → 255
    reduced[reduced == 0] = 255
    reduced = reduced - 1
    reduced[reduced == 254] = 255
    cm = numpy_confusion(preds.numpy().ravel(), reduced.numpy().ravel(), K)
    assert_scores_equal(segmentation_scores(preds, raw, K, reduce_zero_label=True), numpy_scores(cm))


def test_labels_and_logits_give_the_same_scores():
    logits, target = random_batch(7)
    from_logits = segmentation_scores(logits, target, K)
    from_labels = segmentation_scores(logits.argmax(1), target, K)
    for key, value in from_logits.items():
        torch.testing.assert_close(value, from_labels[key], equal_nan=True)


def test_equals_torchmetrics_jaccard_where_defined():
    logits, target = random_batch(11)
    ours = segmentation_scores(logits, target, K)["IoU"]
    theirs = MulticlassJaccardIndex(num_classes=K, average=None, ignore_index=255)(logits, target)
    torch.testing.assert_close(ours.float(), theirs.float())


def test_out_of_range_labels_are_named():
    with pytest.raises(InputError, match="label 7"):
        segmentation_scores(torch.zeros(1, 2, 2, dtype=torch.long), torch.tensor([[[0, 7], [0, 255]]]), 3)
    with pytest.raises(InputError, match="preds: label 4"):
        segmentation_scores(torch.full((1, 2, 2), 4), torch.zeros(1, 2, 2, dtype=torch.long), 3)
    zeros = torch.zeros(1, 2, 2, dtype=torch.long)
    with pytest.raises(InputError, match="label -1"):
        segmentation_scores(zeros, torch.full((1, 2, 2), -1), 3)
    with pytest.raises(InputError, match="shape"):
        segmentation_scores(torch.zeros(1, 2, 3, dtype=torch.long), zeros, 3)
    with pytest.raises(InputError, match="ignore_index 1"):
        SegMetrics(3, ignore_index=1).update(zeros, zeros)
    with pytest.raises(InputError, match="absent"):
        SegMetrics(3, absent="maybe")


def test_bad_ignore_index_target_shape_and_confusion_matrices_are_named():
    with pytest.raises(InputError, match=r"ignore_index -100: expected None or a label ≥ num_classes \(2\)"):
        SegMetrics(2, ignore_index=-100)
    target = torch.zeros(1, 4, 4, dtype=torch.long)
    with pytest.raises(InputError, match=r"ignore_index -1: expected None"):
        segmentation_scores(target, target, 2, ignore_index=-1)
    with pytest.raises(
        InputError, match=r"preds \(1, 2, 4, 4\) torch.float32: expected logits .* target is \(1, 1, 4, 4\)"
    ):
        SegMetrics(2).update(torch.zeros(1, 2, 4, 4), target[:, None])
    metric = SegMetrics(2)
    for bad, named in [
        (torch.ones(1, 3, 3, dtype=torch.long), r"integer N×2×2 matrices, got torch.int64 \(1, 3, 3\)"),
        (torch.ones(1, 2, 2), r"integer N×2×2 matrices, got torch.float32"),
        (torch.full((1, 2, 2), -1), "counts must be 0 or more, got -1"),
    ]:
        with pytest.raises(InputError, match=named):
            metric.update_confusion(bad)
    with pytest.raises(InputError, match="not both"):
        metric.update(target, target, confusion=torch.ones(1, 2, 2, dtype=torch.long))


def test_logits_of_another_class_count_and_float_labels_are_refused():
    # Three-class logits whose last channel never wins would otherwise score as two classes.
    logits = torch.zeros(1, 3, 4, 4)
    logits[:, 2] = -1
    target = torch.zeros(1, 4, 4, dtype=torch.long)
    with pytest.raises(InputError, match="3 classes, expected 2"):
        SegMetrics(num_classes=2).update(logits, target)
    with pytest.raises(InputError, match=r"target: expected integer labels, got torch\.float32"):
        SegMetrics(num_classes=2).update(torch.zeros(1, 4, 4, dtype=torch.long), torch.full((1, 4, 4), 0.7))
    with pytest.raises(InputError, match=r"preds \(1, 4, 4\) torch.float32: expected logits"):
        segmentation_scores(torch.full((1, 4, 4), 0.7), target, 2)


@pytest.mark.parametrize("averaging", ["dataset", "image"])
@pytest.mark.parametrize("absent", ["nan", "one", "zero"])
def test_no_scored_pixel_gives_nan_and_a_warning_whatever_absent(absent, averaging):
    """An all-ignore evaluation (Lightning's sanity check may see one) is NaN, not 1.0 or 0.0:
    the absent rule is for classes absent from a split that has scored pixels."""
    labels, ignored = torch.zeros(2, 4, 4, dtype=torch.long), torch.full((2, 4, 4), 255)
    with pytest.warns(UserWarning, match=r"no pixel was scored: every target pixel was ignore_index \(255\)"):
        result = segmentation_scores(labels, ignored, 2, averaging=averaging, absent=absent)
    assert all(value.isnan().all() for value in result.values()), result
    with warnings.catch_warnings(record=True) as caught:  # torchmetrics adds "compute ... before update"
        warnings.simplefilter("always")
        untouched = SegMetrics(2, averaging=averaging, absent=absent).compute()
    assert any("no pixel was scored" in str(w.message) for w in caught)
    assert all(value.isnan().all() for value in untouched.values())
    with warnings.catch_warnings():  # one scored pixel: no warning, and the absent rule applies
        warnings.simplefilter("error")
        ignored[0, 0, 0] = 0
        scored = segmentation_scores(labels, ignored, 2, averaging=averaging, absent=absent)
    expected = numpy_scores(numpy_confusion(labels.numpy().ravel(), ignored.numpy().ravel(), 2), absent)
    assert_scores_equal(scored, expected)
    assert scored["mIoU"] == (1.0 if absent != "zero" else 0.5)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_logits_are_named_not_scored_as_a_class(bad):
    logits, target = random_batch(4, n=2, size=8)
    logits[1, 2, 3, :3] = bad
    named = r"preds: 3 of 640 logits \(2, 5, 8, 8\) are NaN or infinite"
    with pytest.raises(InputError, match=named):
        SegMetrics(K).update(logits, target)
    with pytest.raises(InputError, match=named):
        confusion_matrix(logits.half(), target, K, per_image=True)


def _ddp_worker(rank: int, world: int, port: int, out: str) -> None:
    torch.distributed.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    metric = SegMetrics(K)
    for seed in range(rank, 6, world):  # the two ranks see disjoint halves of the batches
        metric.update(*random_batch(seed))
    result = metric.compute()
    if rank == 0:
        torch.save({k: v.clone() for k, v in result.items()}, out)
    torch.distributed.destroy_process_group()


def test_two_process_gloo_ddp_equals_one_process(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    torch.multiprocessing.spawn(_ddp_worker, args=(2, port, str(tmp_path / "ddp.pt")), nprocs=2, join=True)
    distributed = torch.load(tmp_path / "ddp.pt")
    single = SegMetrics(K)
    for seed in range(6):
        single.update(*random_batch(seed))
    for key, value in single.compute().items():
        torch.testing.assert_close(distributed[key], value, equal_nan=True, rtol=0, atol=1e-12)


def test_update_confusion_counts_as_an_update_and_refreshes_compute():
    """evaluate_dataset feeds confusion matrices: torchmetrics must see an update (no "compute before
    update" warning) and drop its cached result, so a second compute includes the new images."""
    g = torch.Generator().manual_seed(7)
    pred, target = torch.randint(0, 3, (2, 8, 8), generator=g), torch.randint(0, 3, (2, 8, 8), generator=g)
    cms = [torch.from_numpy(numpy_confusion(p.numpy(), t.numpy(), 3))[None] for p, t in zip(pred, target, strict=True)]
    metric = SegMetrics(3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        metric.update_confusion(cms[0])
        first = metric.compute()["mIoU"]
    metric.update_confusion(cms[1])
    both = numpy_scores(numpy_confusion(pred.numpy(), target.numpy(), 3))["mIoU"]
    assert float(metric.compute()["mIoU"]) == pytest.approx(both) and float(first) != pytest.approx(both)


def test_update_without_preds_target_or_confusion_is_a_clear_error():
    with pytest.raises(InputError, match="expected preds and target, or confusion="):
        SegMetrics(3).update(torch.zeros(1, 4, 4, dtype=torch.long))
