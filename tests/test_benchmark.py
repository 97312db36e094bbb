"""tools/benchmark.py accuracy: the budget a user asks for is the one that runs."""

import pytest

from .conftest import REPO, needs_config_drive


@pytest.fixture
def bench(monkeypatch):  # not `benchmark`: pytest-benchmark's fixture has that name
    """tools/benchmark.py as a module, run from the repository root (the configs' data paths are relative)."""
    monkeypatch.syspath_prepend(str(REPO / "tools"))
    monkeypatch.chdir(REPO)
    import benchmark

    return benchmark


@needs_config_drive
def test_config_length_is_the_configs_epochs_over_whole_batches(bench):
    # configs/drive.yaml: 15 training images, batch 4 (the last, partial batch dropped), 120 epochs, 256² crops
    assert bench.config_plan("drive") == bench.Plan(120 * 3, 256, 4)


def test_config_length_refuses_a_step_count_it_would_ignore(bench):
    with pytest.raises(SystemExit, match="--steps and --config-length exclude each other"):
        bench.main(["accuracy", "--config-length", "--steps", "5"])
    with pytest.raises(SystemExit):  # argparse: --quick and --config-length are one choice
        bench.main(["accuracy", "--config-length", "--quick"])


def test_the_printed_section_is_the_one_written(bench, tmp_path, monkeypatch, capsys):
    """A run's output can be pasted into docs/benchmarks.md: it prints heading, command, machine and date
    too, exactly the text --write appends."""
    doc = tmp_path / "benchmarks.md"
    monkeypatch.setattr(bench, "DOC", doc)
    args = bench.argparse.Namespace(write=True)
    bench.report(args, "python tools/benchmark.py x --write", "Title", "| a |\n|---|\n| 1 |", ["a note"])
    printed = capsys.readouterr().out
    assert printed.startswith("## Title\n\nCommand: `python tools/benchmark.py x --write`  \nMachine: ")
    written = doc.read_text()
    assert written.startswith(bench.DOC_INTRO) and written.endswith("| 1 |\n\n- a note\n")
    assert written.removeprefix(bench.DOC_INTRO).strip() in printed
