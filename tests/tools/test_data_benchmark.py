"""The `data` benchmark's volume pipeline, on small drawn scans: every epoch's batches, with the
prepared-volume cache filled in its first epoch and read in the next."""

from pathlib import Path

import pytest
from benchmarks.data import draw_scans, volume_data


def test_drawn_scans_hold_an_organ_and_a_lesion(tmp_path: Path):
    scans = draw_scans(tmp_path, 2, (24, 20, 16))
    item = scans.load(1)
    assert item["image"].shape == (1, 24, 20, 16) and set(item["mask"].ravel().tolist()) == {0, 1, 2}
    assert item["spacing"] == pytest.approx((0.8, 0.8, 2.5))


def test_the_volume_pipeline_runs_with_and_without_the_cache():
    result = volume_data(workers=0, epochs=2, shape=(24, 20, 16))
    rows = result.tables[0]["rows"]
    assert [row[0] for row in rows] == ["no cache, epoch 1", "no cache, epoch 2", "cache: prepare, write, epoch 1",
                                        "cached, epoch 2"]  # fmt: skip
    assert all(row[1] == "8" for row in rows)  # 4 scans × 4 patches, batch 2
