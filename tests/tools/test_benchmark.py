"""tools/benchmark.py and its package: the budget a user asks for is the one that runs; each run is
a record; docs/benchmarks.md is rendered from the records alone."""

import json
from importlib.util import find_spec

import benchmark
import pytest
from benchmarks import accuracy, gpu_inference, render, training, volumes
from benchmarks.cli import config_name
from benchmarks.contenders import Contender, contender_names
from benchmarks.goals import GOALS, goal_rows
from benchmarks.records import append, read, table

from ..conftest import REPO, needs_config_drive


@pytest.fixture(autouse=True)
def from_the_repository(monkeypatch):
    """Run from the repository root (the configs' data paths are relative)."""
    monkeypatch.chdir(REPO)


@needs_config_drive
def test_config_length_is_the_configs_epochs_over_whole_batches():
    # configs/drive.yaml: 15 training images, batch 4 (the last, partial batch dropped), 120 epochs, 256² crops
    assert accuracy.config_plan("drive") == training.Plan(120 * 3, 256, 4)


def test_config_length_refuses_a_step_count_it_would_ignore():
    with pytest.raises(SystemExit, match="--steps and --config-length exclude each other"):
        benchmark.main(["accuracy", "--config-length", "--steps", "5"])
    with pytest.raises(SystemExit):  # argparse: --quick and --config-length are one choice
        benchmark.main(["accuracy", "--config-length", "--quick"])


def test_a_tiny_run_writes_its_record_and_the_page_shows_what_it_printed(tmp_path, monkeypatch, capsys):
    """`speed --precision bf16 --channels-last --write` (every contender under autocast on channels_last
    inputs, as Segmenter runs on a GPU), at 32² for seconds: the record holds the command, the machine
    and the figures as rows; the page rendered from the records shows the section the run printed."""
    monkeypatch.setattr(benchmark, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(benchmark, "DOC", tmp_path / "benchmarks.md")
    argv = ["speed", "--sizes", "32", "--batch", "2", "--repeats", "1", "--warmup", "0", "--precision", "bf16"]
    benchmark.main([*argv, "--channels-last", "--write"])
    printed = capsys.readouterr().out
    [record] = read(tmp_path / "results" / "speed.jsonl")
    command = "python tools/benchmark.py " + " ".join(argv) + " --channels-last --write"
    assert record["command"] == command and record["benchmark"] == "speed" and record["kind"] == "benchmark"
    assert record["machine"]["cores"] >= 1 and record["machine"]["torch"] and record["machine"]["cpu"]
    assert record["when"].endswith("Z") and record["wall_s"] > 0 and set(record["load"]) == {"before", "after"}
    assert record["settings"]["precision"] == "bf16" and record["settings"]["channels_last"] is True
    [figures] = record["tables"]
    expected = [n for n in contender_names() if n != "MONAI AttentionUnet" or find_spec("monai")]  # the bench extra
    assert [row[0] for row in figures["rows"]] == expected
    at = [figures["columns"].index(column) for column in ("train img/s", "infer img/s")]
    assert all(float(row[i]) > 0 for row in figures["rows"] for i in at)
    alike = "Every network alike: autocast to bf16, float32 weights, channels_last weights and inputs."
    assert alike in record["notes"]
    section = printed.split("\nappended to ")[0]
    variant = "--sizes 32 --batch 2 --precision bf16 --channels-last"  # --repeats, --warmup: the same measurement
    assert section.startswith(f"## Speed and memory at 32² on CPU, bf16 + channels_last, `{variant}`")
    assert f"Command: `{command}`  \nMachine: " in section
    assert section.removeprefix("## ") in (tmp_path / "benchmarks.md").read_text()


def test_the_gpu_inference_table_compares_each_monai_row_with_the_loop_it_mirrors():
    rates = {
        "fp32 network alone": 10.0,
        "bf16 network alone": 30.0,
        "Segmenter.predict bf16": 24.0,
        "MONAI AttentionUnet, fp32 network alone": 8.0,
        "MONAI AttentionUnet, bf16 network alone": 20.0,
    }
    note = gpu_inference.monai_comparison(rates, 512)
    assert "fp32 network alone 1.25×; bf16 network alone 1.50×." in note
    assert "MONAI's fastest row (bf16 network alone): Segmenter.predict bf16 1.20×." in note


@needs_config_drive
def test_runs_side_by_side_score_as_runs_one_after_another(capsys):
    """`accuracy --jobs 2` (two runs at a time, each in its own spawned process, as on a GPU that one
    run leaves waiting on data) gives each run the scores it gets alone: every run seeds itself."""
    tiny = Contender("tiny", "attention_unet", {"widths": [8, 16, 32], "decoder_widths": [8, 16]})
    pairs = [tiny, tiny._replace(name="tiny, gates off", model_args={**tiny.model_args, "gates": False})]
    plan = training.Plan(steps=2, crop=32, batch=2, val_images=1, workers=0)
    alone, _ = training.train_contenders("drive", pairs, plan, [1])
    side_by_side, _ = training.train_contenders("drive", pairs, plan, [1], jobs=2)
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
def test_bad_arguments_are_named_before_anything_runs(capsys, argv, named):
    with pytest.raises(SystemExit):
        benchmark.main(argv)
    assert named in capsys.readouterr().err


def test_inference_config_takes_a_name_or_its_path():
    assert config_name("configs/drive.yaml") == config_name("drive") == "drive"


def test_a_run_that_fails_in_its_process_fails_the_command():
    with pytest.raises(ValueError, match="invalid literal for int"):
        list(training.run_jobs(int, [("1",), ("x",)], jobs=2))


def test_the_committed_page_is_its_records_rendered(tmp_path):
    """docs/benchmarks.md is what `python tools/benchmark.py render` makes of docs/results/*.jsonl, byte
    for byte, and rendering is deterministic: the page cannot drift from its records."""
    page = render.render()
    assert page == render.render()
    assert page == (REPO / "docs" / "benchmarks.md").read_text(), "run `python tools/benchmark.py render`"
    render.write(doc=tmp_path / "page.md")
    assert (tmp_path / "page.md").read_text() == page


def accuracy_record(when: str, gpu: str | None, drive: dict[str, str], train_s: str = "50") -> dict:
    """A `accuracy` record of the DRIVE table with these vessel Dice cells."""
    rows = [[name, "7.00", dice, "60.00", train_s] for name, dice in drive.items()]
    cpu = {"cpu": "Test CPU", "cores": 2, "gpu": gpu, "torch": "2", "python": "3", "text": f"{gpu or 'Test CPU'}"}
    caption = "**drive**: 100 steps"
    return {
        "kind": "benchmark", "benchmark": "accuracy", "series": "Accuracy under one training budget (full)",
        "variant": "", "title": f"Accuracy under one training budget (full) on {'GPU' if gpu else 'CPU'}",
        "when": when, "command": "python tools/benchmark.py accuracy --write", "machine": cpu, "load": None,
        "wall_s": None, "settings": {}, "notes": [f"a note of {when}"], "text": "",
        "tables": [table(["network", "params (M)", "vessel Dice", "mIoU", "train s"], rows, caption=caption)],
    }  # fmt: skip


def test_the_newest_run_per_machine_kind_is_shown_and_the_goals_are_computed_from_records(tmp_path):
    results = tmp_path / "results"
    old = accuracy_record("2026-01-01T00:00:00Z", None, {"segattn": "80.00", "MONAI AttentionUnet": "70.00"})
    new = accuracy_record("2026-02-01T00:00:00Z", None, {"segattn": "60.00", "MONAI AttentionUnet": "70.50"})
    gpu = accuracy_record("2026-01-15T00:00:00Z", "Test GPU 80GB", {"segattn": "75.00", "smp Unet r34": "71.00"})
    for record in (new, gpu, old):  # the file's order is not the date's
        append(results / "accuracy.jsonl", record)
    page = render.render(results)
    assert "a note of 2026-02-01T00:00:00Z" in page and "a note of 2026-01-15T00:00:00Z" in page
    assert "a note of 2026-01-01T00:00:00Z" not in page
    assert "### Accuracy under one training budget (full) on GPU (Test GPU 80GB)" in page
    assert "/accuracy.jsonl: 1, not shown here" in page
    goal = "| DRIVE vessel Dice ≥ best contender + 1.0 at ≤ its training time | "
    goal += "`accuracy`: Accuracy under one training budget (full)"
    rows = [line for line in page.splitlines() if line.startswith(goal)]
    assert rows == [
        f"{goal}, CPU, 2026-02-01 | -10.50 points: segattn 60.00, MONAI AttentionUnet 70.50; train s 50 against 50 "
        "| ≥ +1.0 points | not met |",
        f"{goal}, Test GPU 80GB, 2026-01-15 | +4.00 points: segattn 75.00, smp Unet r34 71.00; train s 50 against 50 "
        "| ≥ +1.0 points | **met** |",
    ]
    # no CamVid table: no figure, not a pass
    assert "| CamVid val mIoU ≥ best contender | `accuracy`: no record of" in page
    slower = accuracy_record("2026-03-01", None, {"segattn": "80.00", "MONAI AttentionUnet": "70.00"}, train_s="90")
    slower["tables"][0]["rows"][1][-1] = "60"
    append(results / "accuracy.jsonl", slower)
    assert "train s 90 against 60 | ≥ +1.0 points | not met |" in render.render(results)  # ahead, but slower
    json.loads((results / "accuracy.jsonl").read_text().splitlines()[-1])  # one record a line


def test_a_tiny_volumes_run_records_both_rates_and_the_label_agreement(tmp_path, monkeypatch):
    """`volumes --parts speed` on a 24³ volume with 12³ windows, for seconds: Segmenter.predict's rate,
    and where MONAI is installed (not in CI) its sliding_window_inference's, the ratio and the share
    of equal labels (the same network and weights: untrained logits are close, the labels nearly all equal)."""
    monkeypatch.setattr(benchmark, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(benchmark, "DOC", tmp_path / "benchmarks.md")
    argv = ["volumes", "--parts", "speed", "--size", "24", "--window", "12", "--widths", "4", "8"]
    benchmark.main([*argv, "--sw-batch", "2", "--repeats", "1", "--warmup", "0", "--write"])
    [record] = read(tmp_path / "results" / "volumes.jsonl")
    assert record["series"] == "3-D sliding window inference speed" and record["settings"]["window"] == 12
    [figures] = record["tables"]
    rows = {row[0]: dict(zip(figures["columns"], row, strict=True)) for row in figures["rows"]}
    assert float(rows[volumes.SEGATTN]["volumes/s"]) > 0 and rows[volumes.SEGATTN]["volume"] == "24³"
    if find_spec("monai") is None:
        assert list(rows) == [volumes.SEGATTN] and rows[volumes.SEGATTN]["labels equal to MONAI's"] == "–"
        pytest.skip("MONAI is not installed (the bench extra): segattn's half tested alone")
    assert float(rows[volumes.MONAI]["volumes/s"]) > 0 and rows[volumes.MONAI]["vs MONAI"] == "1.00×"
    assert float(rows[volumes.SEGATTN]["labels equal to MONAI's"].removesuffix(" %")) > 99
    page = (tmp_path / "benchmarks.md").read_text()
    assert "| 3-D sliding window volumes/s ≥ 1.3× MONAI sliding_window_inference (CPU) | `volumes`: 3-D" in page


def test_the_volume_goals_read_the_ratio_and_the_peak():
    cpu = {"cpu": "Test CPU", "cores": 2, "gpu": None, "torch": "2", "python": "3", "text": "Test CPU"}
    speed_rows = [[volumes.SEGATTN, "96³", "48³", "0.500", "1.25×", "99.9 %"],
                  [volumes.MONAI, "96³", "48³", "0.400", "1.00×", "–"]]  # fmt: skip
    speed_record = {"series": "3-D sliding window inference speed", "machine": cpu, "when": "2026-12-05",
                    "variant": "", "tables": [table(volumes.SPEED_COLUMNS, speed_rows)]}  # fmt: skip
    peak = ["512³", "4", "268", "134", "3,500", "3.50", "200"]
    memory_record = {"series": "3-D volume inference memory", "machine": cpu, "when": "2026-12-05", "variant": "",
                     "tables": [table(volumes.MEMORY_COLUMNS, [peak])]}  # fmt: skip
    smaller = {**memory_record, "variant": "--memory-size 256"}
    smaller["tables"] = [table(volumes.MEMORY_COLUMNS, [["256³", *peak[1:]]])]
    goals = [goal for goal in GOALS if goal.benchmark == "volumes"]  # the speed goal, then the memory one
    rows = goal_rows(goals, {"volumes": [speed_record, memory_record]})
    assert [row[2:] for row in rows] == [
        ["1.25× (smallest over 1 input size(s))", "≥ 1.3×", "not met"],
        ["3.5 GB (512³)", "< 6 GB", "**met**"],
    ]
    assert goal_rows(goals[-1:], {"volumes": [smaller]})[0][-1] == "no figure"  # 256³ is not the goal's figure
