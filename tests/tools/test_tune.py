"""tools/tune.py: folds inside the train split, the variants file, a tiny search and its summary."""

import importlib.util
import json

import pytest
import tune
import yaml
from benchmarks import contenders, harness, render, tune_summary, tuning
from benchmarks.records import read

from ..conftest import REPO, needs_config_drive

VARIANTS_FILES = sorted((REPO / "configs" / "tune").glob("*.yaml"))


@pytest.fixture(autouse=True)
def from_the_repository(monkeypatch):
    """Run from the repository root (the configs' data paths are relative)."""
    monkeypatch.chdir(REPO)


@needs_config_drive
def test_folds_split_the_train_split_and_never_touch_val():
    config = contenders.load_config("drive")
    parts = tuning.fold_keys(config["data"]["train"], 3, 0)
    keys = [key for part in parts for key in part]
    assert sorted(keys) == [str(i) for i in range(21, 36)] and [len(p) for p in parts] == [5, 5, 5]
    assert parts == tuning.fold_keys(config["data"]["train"], 3, 0) != tuning.fold_keys(config["data"]["train"], 3, 1)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"name": "b", "model_arg": {}}, r"variant 'b': unknown key\(s\) \['model_arg'\]"),
        ({"name": "b", "contender": "MONAI Unet"}, "unknown contender 'MONAI Unet'"),
        ({"name": "b", "contender": "smp Unet r34", "model_args": {"gates": False}}, "not to a contender"),
        ({"name": "b", "recipe": {"model_args": {}}}, "recipe may not set model"),
        ({"name": "a"}, "names must be unique"),
        ({"name": "b", "epochs": 0}, "variant 'b': epochs must be a positive integer, got 0"),
    ],
)
def test_a_bad_variants_file_is_a_clear_error(tmp_path, entry, message):
    path = tmp_path / "variants.yaml"
    path.write_text(yaml.safe_dump([{"name": "a"}, entry]))
    with pytest.raises(SystemExit, match=message):
        tuning.read_variants(path, contenders.load_config("drive")["model"])


def test_bad_arguments_and_files_are_named_before_anything_runs(tmp_path, capsys):
    variants = tmp_path / "v.yaml"
    variants.write_text(yaml.safe_dump([{"name": "a"}]))
    broken = tmp_path / "broken.jsonl"
    broken.write_text("\nnot json\n")
    (tmp_path / "empty.jsonl").write_text("")
    for argv, named in [
        (["drive", "--variants", str(tmp_path / "missing.yaml")], "missing.yaml: no such file"),
        (["drive", "--variants", str(variants), "--steps", "0"], "--steps: expected an integer ≥ 1, got '0'"),
        (["drive", "--variants", str(variants), "--crop", "0"], "--crop: expected an integer ≥ 1, got '0'"),
        (["drive", "--variants", str(variants), "--seeds", "0", "0"], "--seeds: each seed once"),
        (["summarize", str(tmp_path / "missing.jsonl")], "no such file"),
    ]:
        with pytest.raises(SystemExit):
            tune.main(argv)
        assert named in capsys.readouterr().err, argv
    for path, named in [(broken, "broken.jsonl, line 2: not a JSON record"), (tmp_path / "empty.jsonl", "no runs")]:
        with pytest.raises(SystemExit, match=named):
            tune.main(["summarize", str(path)])


@needs_config_drive
def test_a_tiny_search_writes_runs_resumes_and_summarizes(tmp_path, capsys):
    variants, out = tmp_path / "variants.yaml", tmp_path / "runs.jsonl"
    variants.write_text(
        yaml.safe_dump(
            [
                {"name": "tiny", "model_args": {"widths": [8, 16, 32], "decoder_widths": [8, 16]}},
                {
                    "name": "tiny lr",
                    "model_args": {"widths": [8, 16, 32], "decoder_widths": [8, 16]},
                    "recipe": {"lr": 0.01},
                },
                {"name": "smp", "contender": "smp Unet r34"},
                {
                    "name": "tiny, 1 epoch",
                    "model_args": {"widths": [8, 16, 32], "decoder_widths": [8, 16]},
                    "epochs": 1,
                },
            ]
        )
    )
    args = ["drive", "--variants", variants, "--only", "tiny", "smp", "--folds", "2", "--seeds", "0"]
    args += ["--steps", "1", "--crop", "32", "--batch", "2", "--val-images", "1", "--workers", "0", "--out", out]
    with pytest.raises(SystemExit, match=r"--only-folds: \[2\] outside folds 0–1"):
        tune.main([str(a) for a in [*args, "--only-folds", "2"]])
    tune.main([str(a) for a in [*args, "--only-folds", "1"]])
    assert [json.loads(line)["fold"] for line in out.read_text().splitlines()] == [1, 1]
    tune.main([str(a) for a in [*args, "--jobs", "2"]])  # the rest, fold 0 of each variant, side by side
    records = [json.loads(line) for line in out.read_text().splitlines()]
    done = [(r["variant"], r["fold"], r["index"]) for r in records]
    assert done[:2] == [("tiny", 1, 0), ("smp", 1, 2)] and sorted(done[2:]) == [("smp", 0, 2), ("tiny", 0, 0)]
    records = sorted(records, key=lambda r: (-r["fold"], r["index"]))
    assert set(records[0]["scores"]) == {"vessel Dice", "mIoU"} and records[1]["model"] == "smp:Unet"
    gates = records[0]["alpha"]  # each gate's mean α at the last step; smp has no gates
    assert gates and all(name.startswith("gate") and 0 < a < 1 for name, a in gates.items())
    assert records[1]["alpha"] == {}
    assert "mean α at the last step: gate" in capsys.readouterr().out
    tune.main([str(a) for a in args])  # every run is in --out already: nothing is trained again
    assert len(out.read_text().splitlines()) == 4
    capsys.readouterr()
    tune.main(["summarize", str(out)])
    table = capsys.readouterr().out
    assert "| tiny | 2 |" in table and "| smp | 2 |" in table and "paired over 2 fold × seed runs" in table
    default = table_rows(table)
    assert default["tiny"][-3:-1] == ["–", "–"] and default["smp"][-3] != "–"
    assert "baseline (tiny, the first entry of the variants file)" in table
    tune.main(["summarize", str(out), "--baseline", "smp"])
    table = capsys.readouterr().out
    against_smp = table_rows(table)
    assert against_smp["smp"][-3:-1] == ["–", "–"] and "baseline (smp, given by --baseline)" in table
    smp_only = tmp_path / "smp.jsonl"
    smp_only.write_text("".join(f"{json.dumps(r)}\n" for r in records if r["variant"] == "smp"))
    tune.main(["summarize", str(smp_only)])
    assert "baseline (smp, the first of the variants file with runs here)" in capsys.readouterr().out
    smp_minus_tiny, tiny_minus_smp = (float(rows[-3].split(" ± ")[0]) for rows in (default["smp"], against_smp["tiny"]))
    assert smp_minus_tiny == pytest.approx(-tiny_minus_smp, abs=0.011)  # 2 decimals each
    with pytest.raises(SystemExit, match=r"--baseline: no runs of 'tiny lr'"):
        tune.main(["summarize", str(out), "--baseline", "tiny lr"])
    # a variant's own `epochs` overrides the search's --steps: fold 0 trains on the 7 images of fold 1,
    # 3 whole batches of 2 per epoch
    tune.main([str(a) for a in [*args[:4], "tiny, 1 epoch", *args[6:], "--only-folds", "0"]])
    own = json.loads(out.read_text().splitlines()[-1])
    assert (own["variant"], own["epochs"], own["steps"]) == ("tiny, 1 epoch", 1, 3) and records[0]["steps"] == 1
    tune.main(["summarize", str(out)])
    assert "not the budget above: tiny, 1 epoch: 1 epochs." in capsys.readouterr().out


def table_rows(table: str) -> dict[str, list[str]]:
    """variant → the cells after its name, of a Markdown table printed by `summarize`."""
    lines = [line.split("|") for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    return {cells[1].strip(): [cell.strip() for cell in cells[2:-1]] for cells in lines[1:]}


@pytest.mark.parametrize("records", sorted((REPO / "docs" / "tune").glob("*.jsonl")), ids=lambda p: p.stem)
def test_every_recorded_run_is_the_network_its_variants_file_builds_now(records):
    """docs/tune/<variants file>-<what>.jsonl came from configs/tune/<variants file>.yaml (the longest
    such prefix): each variant must still build the network its runs recorded (same parameter count),
    whatever the data set's config has become since, or the docs' commands no longer reproduce their tables."""
    stem = max((p.stem for p in VARIANTS_FILES if records.stem.startswith(f"{p.stem}-")), key=len)
    config = contenders.load_config(stem.split("-")[0])
    variants = {
        v.contender.name: v.contender for v in tuning.read_variants(REPO / f"configs/tune/{stem}.yaml", config["model"])
    }
    data = config["data"]["train"]["init_args"]
    classes, channels = len(data["classes"]), data.get("channels", 3)  # membrane's slices are grey
    built = {}
    for line in records.read_text().splitlines():
        run = json.loads(line)
        name = run["variant"]
        if name not in built:
            built[name] = contenders.build_contender(variants[name], classes, channels)  # None: MONAI not installed
        if built[name] is not None:
            assert harness.millions(built[name]) == pytest.approx(run["params"], abs=1e-6), f"{records.name}: {name}"
    assert any(net is not None for net in built.values())


@pytest.mark.parametrize("path", VARIANTS_FILES, ids=lambda p: p.stem)
def test_every_variants_file_builds_every_network(path):
    """A search stops on an entry whose network or recipe does not build (check_variants), before any
    training; this finds such an entry before a GPU session is spent on it. MONAI's entries are
    checked where MONAI is installed (.[bench])."""
    config = contenders.load_config(path.stem.split("-")[0])
    data = config["data"]["train"]["init_args"]
    classes, channels = data["classes"], data.get("channels", 3)
    variants = tuning.read_variants(path, config["model"])
    if importlib.util.find_spec("monai") is None:
        variants = [v for v in variants if v.contender.model != contenders.MONAI]
    tuning.check_variants(config, variants, classes, channels)
    broken = variants[0]._replace(contender=variants[0].contender._replace(model_args={"decoder_convs": 0}))
    with pytest.raises(SystemExit, match=f"variant {variants[0].contender.name!r}: .*decoder_convs"):
        tuning.check_variants(config, [broken], classes, channels)


# searches whose files grew after their study was written (later studies added variants to them)
GREW = {"drive-arch-100epochs-256", "drive-arch-100steps-128"}
BASELINES = {"drive-arch-race-256": "MONAI AttentionUnet"}  # the study's --baseline


@pytest.mark.parametrize(
    "runs", [p for p in sorted((REPO / "docs" / "tune").glob("*.jsonl")) if p.stem not in GREW], ids=lambda p: p.stem
)
def test_the_studies_show_their_searches_as_tune_summarize_prints_them(runs):
    """docs/benchmarks.md's recipe-search studies (docs/results/studies.jsonl) hold `python tools/tune.py
    summarize FILE` of their docs/tune file, word for word: the page's tables are those runs."""
    studies = "\n\n".join(render.body(record) for record in read(REPO / "docs" / "results" / "studies.jsonl"))
    printed = tune_summary.summary(tuning.read_records([runs]), BASELINES.get(runs.stem))
    assert " ".join(printed.split()) in " ".join(studies.split())
