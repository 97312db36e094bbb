"""tools/benchmark.py accuracy: the budget a user asks for is the one that runs."""

from importlib.util import find_spec

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


def test_speed_runs_every_network_under_one_precision_and_memory_format(bench):
    """`speed --precision bf16 --channels-last` (the GPU comparison with MONAI under Segmenter's own
    inference settings) trains and infers every contender under autocast on channels_last inputs."""
    table, notes = bench.speed_table([32], 2, 1, 0, "bf16", channels_last=True, device=bench.torch.device("cpu"))
    rows = [line.split(" | ") for line in table.splitlines()[2:]]
    names = [c.name for c in bench.contenders(bench.load_config("drive")["model"])]
    expected = [n for n in names if n != "MONAI AttentionUnet" or find_spec("monai")]  # MONAI: the bench extra
    assert [row[0].removeprefix("| ") for row in rows] == expected
    assert all(float(row[4]) > 0 and float(row[5]) > 0 for row in rows)  # train and infer img/s
    assert "Every network alike: autocast to bf16, float32 weights, channels_last weights and inputs." in notes


def test_the_gpu_inference_table_compares_each_monai_row_with_the_loop_it_mirrors(bench):
    rates = {
        "fp32 network alone": 10.0,
        "bf16 network alone": 30.0,
        "Segmenter.predict bf16": 24.0,
        "MONAI AttentionUnet, fp32 network alone": 8.0,
        "MONAI AttentionUnet, bf16 network alone": 20.0,
    }
    note = bench.monai_comparison(rates, 512)
    assert "fp32 network alone 1.25×; bf16 network alone 1.50×." in note
    assert "MONAI's fastest row (bf16 network alone): Segmenter.predict bf16 1.20×." in note


@needs_config_drive
def test_runs_side_by_side_score_as_runs_one_after_another(bench, capsys):
    """`accuracy --jobs 2` (two runs at a time, each in its own spawned process, as on a GPU that one
    run leaves waiting on data) gives each run the scores it gets alone: every run seeds itself."""
    tiny = bench.Contender("tiny", "attention_unet", {"widths": [8, 16, 32], "decoder_widths": [8, 16]})
    pairs = [tiny, tiny._replace(name="tiny, gates off", model_args={**tiny.model_args, "gates": False})]
    plan = bench.Plan(steps=2, crop=32, batch=2, val_images=1, workers=0)
    alone, _ = bench.train_contenders("drive", pairs, plan, [1])
    side_by_side, _ = bench.train_contenders("drive", pairs, plan, [1], jobs=2)
    assert [(r.contender, r.seed) for r in side_by_side] == [("tiny", 1), ("tiny, gates off", 1)]
    assert [r.scores for r in side_by_side] == [r.scores for r in alone]
    assert alone[0].scores != alone[1].scores  # the runs differ: the test could fail
    assert capsys.readouterr().out.count("  drive, tiny, gates off, seed 1: ") == 2


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["accuracy", "--jobs", "0"], "--jobs: expected an integer ≥ 1, got '0'"),
        (["accuracy", "--steps", "0"], "--steps: expected an integer ≥ 1, got '0'"),
        (["accuracy", "--workers", "-1"], "--workers: expected an integer ≥ 0, got '-1'"),
        (["accuracy", "--seeds", "0", "0"], "--seeds: each seed once, got [0, 0]"),
        (["speed", "--sizes", "256", "0"], "--sizes: expected an integer ≥ 1, got '0'"),
        (["inference", "--config", "nope"], "--config: no configs/nope.yaml; expected one of ["),
    ],
)
def test_bad_arguments_are_named_before_anything_runs(bench, capsys, argv, named):
    with pytest.raises(SystemExit):
        bench.main(argv)
    assert named in capsys.readouterr().err


def test_inference_config_takes_a_name_or_its_path(bench):
    assert bench.config_name("configs/drive.yaml") == bench.config_name("drive") == "drive"


def test_a_run_that_fails_in_its_process_fails_the_command(bench):
    with pytest.raises(ValueError, match="invalid literal for int"):
        list(bench.run_jobs(int, [("1",), ("x",)], jobs=2))
