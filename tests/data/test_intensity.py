"""Volume intensity normalisation: specs, their checks, and the CT statistics."""

from __future__ import annotations

import json

import numpy as np
import pytest

from segattn.data.intensity import check_intensity, ct_statistics, normalize_volume
from segattn.errors import InputError

from .test_patches import Volumes


def test_zscore_whole_and_foreground():
    rng = np.random.default_rng(0)
    image = np.zeros((1, 8, 8, 8), np.float32)
    image[0, 2:6, 2:6, 2:6] = rng.normal(500, 40, (4, 4, 4))
    whole = normalize_volume(image, {"zscore": {"foreground": False}})
    assert whole.dtype == np.float32 and abs(whole.mean()) < 1e-5 and whole.std() == pytest.approx(1, abs=1e-5)
    inside = normalize_volume(image, {"zscore": {"foreground": True}})[0, 2:6, 2:6, 2:6]
    assert abs(inside.mean()) < 1e-5 and inside.std() == pytest.approx(1, abs=1e-5)
    region = np.zeros((8, 8, 8), bool)
    region[:4] = True
    given = normalize_volume(image, {"zscore": {"foreground": True}}, foreground=region)[0]
    assert abs(given[:4].mean()) < 1e-5
    flat = normalize_volume(np.full((1, 2, 2, 2), 7, np.float32), {"zscore": {"foreground": True}})
    assert np.all(flat == 0)


def test_ct_window_and_channels():
    image = np.array([-2000, -50, 40, 100, 5000], np.float32).reshape(1, 1, 1, 5)
    ct = normalize_volume(image, {"ct": {"clip": [-100, 200], "mean": 50, "std": 25}})
    np.testing.assert_allclose(ct.ravel(), [-6, -4, -0.4, 2, 6], atol=1e-6)
    window = normalize_volume(image, {"window": [40, 400]})
    np.testing.assert_allclose(window.ravel(), [-1, -0.45, 0, 0.3, 1], atol=1e-6)
    two = normalize_volume(np.concatenate([image, image]), [{"window": [40, 400]}, {"zscore": {"foreground": False}}])
    np.testing.assert_allclose(two[0], window[0])
    assert abs(two[1].mean()) < 1e-5


def test_specs_are_json_and_errors_name_the_key():
    spec = [{"ct": {"clip": [-1, 2], "mean": 0.5, "std": 1.0}}, {"zscore": {"foreground": True}}]
    assert check_intensity(json.loads(json.dumps(spec)), 2) == spec
    assert check_intensity({"window": [0, 1]}, 3) == [{"window": [0, 1]}] * 3
    cases = [
        ({"zscore": {"foreground": "yes"}}, r"intensity\.zscore\.foreground: expected true or false"),
        ({"zscore": {}}, r"intensity\.zscore: expected \{'foreground'"),
        ({"window": [40]}, r"intensity\.window: expected \[center, width\]"),
        ({"window": [40, 0]}, r"intensity\.window: width must be positive"),
        ({"ct": {"clip": [3, 1], "mean": 0, "std": 1}}, r"intensity\.ct\.clip: expected low ≤ high"),
        ({"ct": {"clip": [0, 1], "mean": "a", "std": 1}}, r"intensity\.ct\.mean: expected a number"),
        ({"ct": {"clip": [0, 1], "mean": 0, "std": -1}}, r"intensity\.ct\.std: must not be negative"),
        ({"ct": {"clip": [0, 1]}}, r"intensity\.ct: expected the keys clip, mean, std"),
        ({"gamma": 2}, r"intensity: expected one of"),
    ]
    for bad, message in cases:
        with pytest.raises(InputError, match=message) as error:
            check_intensity(bad)
        assert "\n" not in str(error.value)
    with pytest.raises(InputError, match=r"intensity\[1\]\.window"):
        check_intensity([{"window": [0, 1]}, {"window": [0]}], 2)
    with pytest.raises(InputError, match="2 specs for 3 channel"):
        check_intensity([{"window": [0, 1]}] * 2, 3)


def test_ct_statistics_exact_and_by_histogram():
    rng = np.random.default_rng(1)
    items = []
    for _ in range(3):
        image = rng.normal(60, 200, (1, 10, 10, 10)).astype(np.float32)
        mask = rng.integers(0, 3, (10, 10, 10))
        mask[0] = 255  # ignored voxels are not foreground
        items.append((image, mask))
    values = np.concatenate([im[0][(m > 0) & (m != 255)] for im, m in items]).astype(np.float64)
    exact = ct_statistics(Volumes(items))["ct"]
    np.testing.assert_allclose(exact["clip"], np.percentile(values, (0.5, 99.5)), rtol=1e-5)
    assert exact["mean"] == pytest.approx(values.mean()) and exact["std"] == pytest.approx(values.std())
    binned = ct_statistics(Volumes(items), bins=4096, value_range=(-1024, 3072))["ct"]
    assert binned["mean"] == pytest.approx(exact["mean"]) and binned["std"] == pytest.approx(exact["std"])
    inverted = np.percentile(values, (0.5, 99.5), method="inverted_cdf")
    np.testing.assert_allclose(binned["clip"], inverted, atol=4096 / 4096)  # one bin
    json.dumps(binned)
    check_intensity({"ct": binned})
    with pytest.raises(InputError, match="no foreground voxel"):
        ct_statistics(Volumes([(items[0][0], np.zeros((10, 10, 10), np.int64))]))
