"""SegMetrics on volumes (N×K×D×H×W logits, N×D×H×W targets) against plain numpy."""

import numpy as np
import pytest
import torch

from segattn import SegMetrics, segmentation_scores
from tests.test_metrics import (
    MEANS,
    PER_CLASS,
    assert_dataset_scores_equal_numpy,
    nanmean,
    numpy_confusion,
    numpy_scores,
)

K = 4


def random_volumes(seed: int, n: int = 2, shape=(6, 10, 12), k: int = K, ignore_share: float = 0.1):
    g = torch.Generator().manual_seed(seed)
    target = torch.randint(0, k, (n, *shape), generator=g)
    target[torch.rand(n, *shape, generator=g) < ignore_share] = 255
    return torch.randn(n, k, *shape, generator=g), target


def test_dataset_averaging_over_volume_batches_equals_numpy():
    batches = [random_volumes(s) for s in range(3)]
    assert_dataset_scores_equal_numpy(batches, K)
    logits, target = batches[0]  # a volume scores as its slices do: one matrix over all voxels
    slices = segmentation_scores(logits.transpose(1, 2).flatten(0, 1), target.flatten(0, 1), K)
    for key, value in segmentation_scores(logits, target, K).items():
        torch.testing.assert_close(value, slices[key], equal_nan=True)


@pytest.mark.parametrize("absent", ["nan", "one", "zero"])
@pytest.mark.parametrize("include_background", [True, False])
def test_case_averaging_equals_numpy_per_volume_means(absent, include_background):
    logits, target = random_volumes(3, n=4, k=K)
    logits = torch.cat([logits, torch.full_like(logits[:, :1], -100)], dim=1)  # class 4: absent from the split
    target[1] = torch.where(target[1] == 2, 255, target[1])  # class 2: absent from one case's truth
    target[3] = 255  # a case with nothing to score: NaN throughout, left out
    preds = logits.argmax(1)
    per_case = [
        numpy_scores(numpy_confusion(p.numpy().ravel(), t.numpy().ravel(), K + 1), absent, include_background)
        for p, t in zip(preds, target, strict=True)
    ]
    metric = SegMetrics(K + 1, averaging="case", absent=absent, include_background=include_background)
    metric.update(logits[:2], target[:2])
    metric.update(preds[2:], target[2:])  # labels as well as logits
    ours = metric.compute()
    for key in (*PER_CLASS, *MEANS):
        expected = nanmean([s[key] for s in per_case])
        np.testing.assert_allclose(ours[key].numpy(), expected, atol=1e-6, equal_nan=True, err_msg=key)
    assert ours["IoU"][4].isnan() if absent == "nan" else ours["IoU"][4] == (absent == "one")
    as_image = segmentation_scores(logits, target, K + 1, 255, "image", absent, include_background)
    for key, value in as_image.items():  # "case" is "image" under its volume name
        torch.testing.assert_close(ours[key], value, equal_nan=True, msg=key)
