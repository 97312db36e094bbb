import numpy as np
import pytest
import torch
from torchmetrics.classification import MulticlassJaccardIndex

from segattn import InputError, SegMetrics, segmentation_scores

K = 5


def numpy_scores(pred: np.ndarray, target: np.ndarray, k: int, ignore: int = 255) -> dict:
    """An independent reference: a plain numpy confusion matrix over the non-ignored pixels."""
    keep = target != ignore
    cm = np.zeros((k, k), np.int64)
    np.add.at(cm, (target[keep], pred[keep]), 1)
    tp = np.diag(cm).astype(float)
    rows, cols = cm.sum(1).astype(float), cm.sum(0).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = tp / (rows + cols - tp)
        dice = 2 * tp / (rows + cols)
        acc = tp / rows
    freq = rows / cm.sum()
    return {
        "cm": cm,
        "IoU": iou,
        "Dice": dice,
        "Acc": acc,
        "mIoU": np.nanmean(iou),
        "aAcc": tp.sum() / cm.sum(),
        "fwIoU": np.sum(freq[rows > 0] * iou[rows > 0]),
    }


def random_batch(seed: int, n: int = 3, size: int = 40, k: int = K):
    g = torch.Generator().manual_seed(seed)
    target = torch.randint(0, k, (n, size, size), generator=g)
    target[torch.rand(n, size, size, generator=g) < 0.1] = 255
    logits = torch.randn(n, k, size, size, generator=g)
    return logits, target


def assert_close(ours: torch.Tensor, ref, **kw):
    np.testing.assert_allclose(ours.numpy(), ref, rtol=1e-9, atol=1e-12, equal_nan=True, **kw)


def test_matches_numpy_confusion_matrix_over_batches_with_ignore():
    metric = SegMetrics(K)
    batches = [random_batch(s) for s in range(3)]
    for logits, target in batches:
        metric.update(logits, target)
    pred = np.concatenate([b[0].argmax(1).numpy().ravel() for b in batches])
    target = np.concatenate([b[1].numpy().ravel() for b in batches])
    ref = numpy_scores(pred, target, K)
    result = metric.compute()
    np.testing.assert_array_equal(metric.confmat.numpy(), ref["cm"])
    for key in ("IoU", "Dice", "Acc", "mIoU", "aAcc", "fwIoU"):
        assert_close(result[key], ref[key], err_msg=key)


def test_labels_and_logits_give_the_same_scores():
    logits, target = random_batch(7)
    from_logits = segmentation_scores(logits, target, K)
    from_labels = segmentation_scores(logits.argmax(1), target, K)
    for key, value in from_logits.items():
        assert torch.equal(value, from_labels[key]) or torch.allclose(value, from_labels[key], equal_nan=True)


def test_absent_classes_are_nan_and_left_out_of_the_mean():
    target = torch.tensor([[[0, 0, 1, 255]]])
    pred = torch.tensor([[[0, 1, 1, 3]]])  # class 2 nowhere; class 3 only where ignored
    result = segmentation_scores(pred, target, 4)
    assert torch.isnan(result["IoU"][2]) and torch.isnan(result["IoU"][3])
    assert result["IoU"][0] == pytest.approx(1 / 2) and result["IoU"][1] == pytest.approx(1 / 2)
    assert result["mIoU"] == pytest.approx(0.5)
    ref = numpy_scores(pred.numpy().ravel(), target.numpy().ravel(), 4)
    assert_close(result["IoU"], ref["IoU"])


def test_class_only_in_prediction_scores_zero():
    result = segmentation_scores(torch.tensor([[[0, 2]]]), torch.tensor([[[0, 0]]]), 3)
    assert result["IoU"][2] == 0 and torch.isnan(result["Acc"][2])


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
    with pytest.raises(InputError, match="shape"):
        segmentation_scores(torch.zeros(1, 2, 3), torch.zeros(1, 2, 2), 3)


def test_all_ignore_gives_nan_not_an_error():
    result = segmentation_scores(torch.zeros(1, 4, 4), torch.full((1, 4, 4), 255), 2)
    assert torch.isnan(result["mIoU"]) and torch.isnan(result["aAcc"]) and torch.isnan(result["fwIoU"])
