"""tools/benchmark.py accuracy: the budget a user asks for is the one that runs."""

import pytest

from .conftest import REPO

DRIVE = REPO.parent / "shared" / "data" / "drive"  # configs/drive.yaml's relative ../shared/data


@pytest.fixture
def benchmark(monkeypatch):
    """tools/benchmark.py as a module, run from the repository root (the configs' data paths are relative)."""
    monkeypatch.syspath_prepend(str(REPO / "tools"))
    monkeypatch.chdir(REPO)
    import benchmark

    return benchmark


@pytest.mark.skipif(not DRIVE.is_dir(), reason=f"DRIVE not found at {DRIVE} (configs/drive.yaml's path)")
def test_config_length_is_the_configs_epochs_over_whole_batches(benchmark):
    # configs/drive.yaml: 15 training images, batch 4 (the last, partial batch dropped), 100 epochs, 256² crops
    assert benchmark.config_plan("drive") == benchmark.Plan(100 * 3, 256, 4)


def test_config_length_refuses_a_step_count_it_would_ignore(benchmark):
    with pytest.raises(SystemExit, match="--steps and --config-length exclude each other"):
        benchmark.main(["accuracy", "--config-length", "--steps", "5"])
    with pytest.raises(SystemExit):  # argparse: --quick and --config-length are one choice
        benchmark.main(["accuracy", "--config-length", "--quick"])
