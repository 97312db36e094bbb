"""HD95 / ASSD on volumes in millimetres: brute force over surface point sets, known geometry."""

import itertools

import numpy as np
import pytest
import torch

from segattn import InputError
from segattn.boundary import BoundaryMetrics, boundary_distances, case_distances

ANISOTROPIC = (3.0, 0.8, 0.8)


def brute_surface(region: np.ndarray) -> np.ndarray:
    """Elements with an element outside the region among their 3^d − 1 neighbours (edge = outside)."""
    padded = np.pad(region, 1)
    inner = np.ones_like(region)
    for offset in itertools.product((-1, 0, 1), repeat=region.ndim):
        inner &= padded[tuple(slice(1 + o, 1 + o + n) for o, n in zip(offset, region.shape, strict=True))]
    return region & ~inner


def brute_distances(pred: np.ndarray, truth: np.ndarray, spacing) -> tuple[float, float]:
    """Every pairwise distance between the two surfaces, in spacing units; HD95 the larger of the
    two directed 95th percentiles."""
    p = np.argwhere(brute_surface(pred)) * np.asarray(spacing)
    t = np.argwhere(brute_surface(truth)) * np.asarray(spacing)
    d = np.sqrt(((p[:, None, :] - t[None, :, :]) ** 2).sum(-1))
    to_truth, to_pred = d.min(1), d.min(0)
    hd95 = max(np.percentile(to_truth, 95), np.percentile(to_pred, 95))
    return hd95, (to_truth.sum() + to_pred.sum()) / (len(to_truth) + len(to_pred))


def random_blobs(rng, shape=(10, 14, 16), count=2) -> np.ndarray:
    grid = np.indices(shape)
    region = np.zeros(shape, bool)
    for _ in range(count):
        centre, radii = rng.uniform(2, np.array(shape) - 2), rng.uniform(1.5, 5, size=3)
        region |= sum(((g - c) / r) ** 2 for g, c, r in zip(grid, centre, radii, strict=True)) < 1
    return region


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), ANISOTROPIC])
def test_random_volumes_equal_brute_force(seed, spacing):
    rng = np.random.default_rng(seed)
    pred, truth = random_blobs(rng), random_blobs(rng, count=1)
    pred[rng.random(pred.shape) < 0.02] ^= True  # speckle: isolated surface voxels, holes
    np.testing.assert_allclose(boundary_distances(pred, truth, spacing), brute_distances(pred, truth, spacing))


@pytest.mark.parametrize(("axis", "gap"), [(0, 3), (2, 5), (1, 1)])
def test_parallel_planes_are_their_offset_in_mm_apart(axis, gap):
    """One-voxel-thick planes are their own surfaces; each voxel's nearest is straight across."""
    pred, truth = np.zeros((9, 11, 13), bool), np.zeros((9, 11, 13), bool)
    pred[(slice(None),) * axis + (2,)] = True
    truth[(slice(None),) * axis + (2 + gap,)] = True
    hd95, assd = boundary_distances(pred, truth, ANISOTROPIC)
    assert hd95 == pytest.approx(gap * ANISOTROPIC[axis]) and assd == pytest.approx(gap * ANISOTROPIC[axis])


def test_nested_cubes_equal_offset_in_mm_on_every_axis():
    """A cube inside another, 2 mm in from every face (1 voxel along D at 2 mm, 4 along H and W at
    0.5 mm): every inner surface voxel is 2 mm from the outer surface, and every outer one at
    least 2 mm from the inner, at most 2·√3 (a corner)."""
    spacing = (2.0, 0.5, 0.5)
    outer, inner = np.zeros((8, 30, 30), bool), np.zeros((8, 30, 30), bool)
    outer[1:7, 2:28, 2:28] = True
    inner[2:6, 6:24, 6:24] = True
    hd95, assd = boundary_distances(inner, outer, spacing)
    np.testing.assert_allclose((hd95, assd), brute_distances(inner, outer, spacing))
    assert 2.0 <= assd < hd95 <= 2.0 * np.sqrt(3)


def test_empty_regions_ignore_voxels_and_spacing_checks():
    truth = np.zeros((4, 6, 8), bool)
    truth[1:3, 2:4, 2:6] = True
    assert np.isnan(boundary_distances(np.zeros_like(truth), np.zeros_like(truth), ANISOTROPIC)).all()
    diagonal = np.linalg.norm(np.multiply(truth.shape, ANISOTROPIC))
    assert boundary_distances(np.zeros_like(truth), truth, ANISOTROPIC) == (pytest.approx(diagonal),) * 2
    labels = truth.astype(np.int64)
    pred = np.roll(labels, 1, axis=2)
    ignored = labels.copy()
    ignored[:, :, 5:] = 255  # ignored voxels belong to no region, predicted or true
    hd95, assd = case_distances(pred, ignored, 2, ANISOTROPIC)
    scored = ignored != 255
    expected = brute_distances((pred == 1) & scored, (ignored == 1) & scored, ANISOTROPIC)
    assert (hd95[1], assd[1]) == pytest.approx(expected)
    with pytest.raises(InputError, match="spacing: expected 3 positive sizes"):
        boundary_distances(truth, truth, (1.0, 1.0))
    with pytest.raises(InputError, match="spacing: expected 3 positive sizes"):
        boundary_distances(truth, truth, (1.0, 0.0, 1.0))


def test_metric_on_volume_batches_with_anisotropic_spacing():
    rng = np.random.default_rng(4)
    truth = np.stack([random_blobs(rng), random_blobs(rng)]).astype(np.int64)
    pred = np.stack([random_blobs(rng), np.zeros_like(truth[1], bool)]).astype(np.int64)
    metric = BoundaryMetrics(3, spacing=ANISOTROPIC)
    metric.update(torch.from_numpy(pred), torch.from_numpy(truth))
    result = metric.compute()
    first = brute_distances(pred[0] == 1, truth[0] == 1, ANISOTROPIC)
    diagonal = np.linalg.norm(np.multiply(truth.shape[1:], ANISOTROPIC))  # case 2: nothing predicted
    assert result["HD95"][1] == pytest.approx((first[0] + diagonal) / 2)
    assert result["ASSD"][1] == pytest.approx((first[1] + diagonal) / 2)
    assert torch.isnan(result["HD95"][2]) and result["mHD95"] == pytest.approx(result["HD95"][1])
    with pytest.raises(InputError, match="spacing: expected 2 positive sizes"):
        metric.update(torch.from_numpy(pred[:, 0]), torch.from_numpy(truth[:, 0]))
