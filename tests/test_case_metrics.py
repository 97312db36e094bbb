"""The per-case table against numpy: Dice/IoU from plain confusion matrices, HD95/ASSD by brute force."""

import csv
import json
import math

import numpy as np
import pytest
import torch

from segattn import InputError
from segattn.case_metrics import METRICS, case_metrics, write_case_csv, write_case_summary
from tests.test_boundary_volumes import ANISOTROPIC, brute_distances, random_blobs
from tests.test_metrics import numpy_confusion, numpy_scores

K = 4  # class 3 is in no case: absent from the split


def make_cases():
    rng = np.random.default_rng(0)
    cases = []
    for i, spacing in enumerate([ANISOTROPIC, (1.5, 1.0, 1.0), None]):
        truth = random_blobs(rng).astype(np.int64) + random_blobs(rng, count=1)  # 0, 1, 2 (2 = overlap)
        pred = random_blobs(rng).astype(np.int64) * (1 + (rng.random(truth.shape) < 0.3))
        if i == 1:
            truth[truth == 2] = 1  # class 2: absent from this case's truth, present in its prediction
        if i == 2:
            truth[truth == 2] = 0
            pred[pred == 2] = 0  # class 2: in neither map of this case
        truth[rng.random(truth.shape) < 0.05] = 255
        cases.append((f"case_{i}", pred, truth, spacing))
    flat = np.zeros((20, 24), np.uint8)  # a 2-D case (H×W) in the same table, as a tensor
    flat[5:12, 6:15] = 1
    cases.append(("slice", torch.from_numpy(np.roll(flat, 2, axis=0)), torch.from_numpy(flat), (0.7, 0.7)))
    return cases


def expected_values(pred, truth, spacing, absent="nan"):
    pred, truth = np.asarray(pred).astype(np.int64), np.asarray(truth).astype(np.int64)
    spacing = spacing or (1.0,) * truth.ndim
    overlap = numpy_scores(numpy_confusion(pred.ravel(), truth.ravel(), K), absent)
    scored = truth != 255
    rows = []
    for c in range(1, K):
        p, t = (pred == c) & scored, (truth == c) & scored
        if not p.any() and not t.any():
            distances = (np.nan, np.nan)
        elif not p.any() or not t.any():
            distances = (np.linalg.norm(np.multiply(truth.shape, spacing)),) * 2
        else:
            distances = brute_distances(p, t, spacing)
        rows.append([overlap["Dice"][c], overlap["IoU"][c], *distances])
    return np.array(rows).T  # METRICS × classes 1..K−1


@pytest.mark.parametrize("absent", ["nan", "one", "zero"])
def test_table_and_summary_equal_numpy(absent):
    cases = make_cases()
    table = case_metrics(cases, ["background", "liver", "tumour", "vessel"], absent=absent)
    assert table.names == ["case_0", "case_1", "case_2", "slice"] and table.classes == ["liver", "tumour", "vessel"]
    expected = np.stack([expected_values(p, t, s, absent) for _, p, t, s in cases])
    np.testing.assert_allclose(table.values, expected, rtol=1e-9, equal_nan=True)
    dice_absent = table.values[2, 0, 1]  # case_2, Dice, tumour: in neither map
    assert math.isnan(dice_absent) if absent == "nan" else dice_absent == (absent == "one")
    assert math.isnan(table.values[2, 2, 1])  # ... so its HD95 is not scored, whatever `absent`
    assert table.values[1, 2, 1] == pytest.approx(np.linalg.norm(np.multiply((10, 14, 16), (1.5, 1.0, 1.0))))
    summary = table.summary()
    for m, metric in enumerate(METRICS):
        for j, name in enumerate(table.classes):
            column = expected[:, m, j]
            kept = column[~np.isnan(column)]
            assert summary[metric][name]["count"] == len(kept)
            mean, std = summary[metric][name]["mean"], summary[metric][name]["std"]
            np.testing.assert_allclose(mean, kept.mean() if len(kept) else np.nan, equal_nan=True)
            np.testing.assert_allclose(std, kept.std(ddof=1) if len(kept) > 1 else np.nan, equal_nan=True)
    assert summary["HD95"]["vessel"]["count"] == 0 and math.isnan(summary["HD95"]["vessel"]["mean"])
    assert summary["Dice"]["vessel"]["count"] == (0 if absent == "nan" else 4)


def test_csv_and_json_files(tmp_path):
    table = case_metrics(make_cases(), 4, include_background=True)
    write_case_csv(table, tmp_path / "cases.csv")
    write_case_summary(table, tmp_path / "summary.json")
    with open(tmp_path / "cases.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["case", "class", "Dice", "IoU", "HD95_mm", "ASSD_mm"]
    assert len(rows) == 1 + 4 * 4 + 3 * 4  # cases × classes, then mean, std, count × classes
    assert rows[1][:2] == ["case_0", "0"] and [r[0] for r in rows[-12::4]] == ["mean", "std", "count"]
    np.testing.assert_allclose([float(v) for v in rows[1 + 4 + 2][2:]], table.values[1, :, 2], equal_nan=True)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["cases"] == table.names and summary["classes"] == ["0", "1", "2", "3"]
    assert summary["summary"]["HD95"]["3"] == {"mean": None, "std": None, "count": 0}
    assert summary["summary"]["Dice"]["1"]["mean"] == pytest.approx(table.summary()["Dice"]["1"]["mean"])
    assert not list(tmp_path.glob(".*.tmp"))


def test_bad_cases_are_named():
    pred = np.zeros((4, 5, 6), np.int64)
    with pytest.raises(InputError, match="case 'a': spacing: expected 3 positive sizes"):
        case_metrics([("a", pred, pred, (1.0, 1.0))], 2)
    with pytest.raises(InputError, match=r"case 'b': prediction .* and reference .*: expected one shape"):
        case_metrics([("b", pred, pred[0], None)], 2)
    with pytest.raises(InputError, match="case 'c': reference: expected integer labels"):
        case_metrics([("c", pred, pred.astype(float), None)], 2)
    with pytest.raises(InputError, match="case 'd': target: label 5"):
        case_metrics([("d", pred, pred + 5, None)], 2)
    with pytest.raises(InputError, match="unique"):
        case_metrics([("e", pred, pred, None), ("e", pred, pred, None)], 2)
    empty = case_metrics([], 3)
    assert empty.values.shape == (0, 4, 2) and empty.summary()["Dice"]["1"]["count"] == 0
