"""HD95 / ASSD against a brute-force computation over boundary point sets."""

import numpy as np
import pytest
import torch

from segattn.boundary import BoundaryMetrics, boundary_distances


def brute_boundary(region: np.ndarray) -> np.ndarray:
    """Pixels of the region with a pixel outside it among their 8 neighbours (image edge = outside)."""
    padded = np.pad(region, 1)
    inner = np.ones_like(region)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            inner &= padded[1 + dy : 1 + dy + region.shape[0], 1 + dx : 1 + dx + region.shape[1]]
    return region & ~inner


def brute_distances(pred: np.ndarray, truth: np.ndarray, spacing=(1.0, 1.0)):
    p = np.argwhere(brute_boundary(pred)) * spacing
    t = np.argwhere(brute_boundary(truth)) * spacing
    d = np.sqrt(((p[:, None, :] - t[None, :, :]) ** 2).sum(-1))
    to_truth, to_pred = d.min(1), d.min(0)
    hd95 = max(np.percentile(to_truth, 95), np.percentile(to_pred, 95))
    return hd95, (to_truth.sum() + to_pred.sum()) / (len(to_truth) + len(to_pred))


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("spacing", [(1.0, 1.0), (0.5, 2.0)])
def test_random_blobs_equal_brute_force(seed, spacing):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:40, :50]

    def blob():
        cy, cx, r = rng.uniform(10, 30), rng.uniform(10, 40), rng.uniform(4, 12)
        return (yy - cy) ** 2 + (xx - cx) ** 2 < r**2

    pred, truth = blob() | blob(), blob()
    np.testing.assert_allclose(boundary_distances(pred, truth, spacing), brute_distances(pred, truth, spacing))


def test_shifted_square_and_empty_rules():
    truth = np.zeros((20, 20), bool)
    truth[5:10, 5:10] = True
    pred = np.roll(truth, 3, axis=1)
    hd95, assd = boundary_distances(pred, truth)
    assert hd95 == pytest.approx(3.0) and 0 < assd < 3
    assert np.isnan(boundary_distances(np.zeros_like(truth), np.zeros_like(truth))[0])
    assert boundary_distances(np.zeros_like(truth), truth) == (pytest.approx(np.hypot(20, 20)),) * 2


def test_metric_averages_over_images_and_skips_unscored_classes():
    truth = torch.zeros(2, 20, 20, dtype=torch.long)
    truth[:, 5:10, 5:10] = 1
    preds = truth.clone()
    preds[1] = torch.roll(truth[1], 3, dims=1)  # image 0 perfect, image 1 shifted by 3
    metric = BoundaryMetrics(3)
    metric.update(preds, truth)
    result = metric.compute()
    assert result["HD95"][1] == pytest.approx(1.5)  # mean of 0 and 3
    assert torch.isnan(result["HD95"][2])  # class 2 in no image: not scored
    assert result["mHD95"] == pytest.approx(1.5)  # background left out, NaN class left out


def test_equals_monai_where_installed():
    monai_metrics = pytest.importorskip("monai.metrics", reason="MONAI is the optional `bench` extra")
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[:32, :32]
    truth = (yy - 16) ** 2 + (xx - 14) ** 2 < 64
    pred = (yy - 14) ** 2 / 2 + (xx - 18) ** 2 < 50 + rng.uniform(0, 1)
    theirs = monai_metrics.compute_hausdorff_distance(
        torch.from_numpy(pred)[None, None].float(), torch.from_numpy(truth)[None, None].float(), percentile=95
    )
    assert boundary_distances(pred, truth)[0] == pytest.approx(float(theirs), abs=1e-4)
