"""A newcomer's first hour through the `segattn` command: the overview of the commands, where each
subcommand logs, and the one-line errors of a first config (an unknown option, a YAML slip, a
relative data path read from another folder)."""

import json
import re
import shlex
import sys

import pytest

from segattn.cli import main
from segattn.usage import COMMANDS

from ..conftest import REPO
from .test_cli import run, small_fit_args

pytestmark = pytest.mark.slow
EVERY_COMMAND = ["demo", "fit", "validate", "test", "evaluate", "infer", "serve", "export"]


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """A 1-epoch fit (2 steps) through the CLI: (run folder, data folder, its best checkpoint)."""
    root = tmp_path_factory.mktemp("newcomer")
    run(*small_fit_args(root / "run", root / "data", epochs=1))
    return root / "run", root / "data", root / "run/lightning_logs/version_0/checkpoints/best.ckpt"


def one_error_line(result) -> str:
    """The run's only stderr line that starts with `segattn: error:`; it must have exited with 2."""
    errors = [line for line in result.stderr.splitlines() if line.startswith("segattn: error:")]
    assert result.returncode == 2 and len(errors) == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    return errors[0]


@pytest.mark.parametrize("argv", [[], ["-h"], ["--help"]])
def test_no_arguments_and_help_list_every_command_first(argv, capsys):
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == (0 if argv else 2)
    out = capsys.readouterr().out
    assert out.startswith("usage: segattn <command>") and "Lightning Trainer" not in out
    listed = {line.split()[0]: line.split(maxsplit=1)[1] for line in out.splitlines() if line.startswith("  ")}
    assert list(listed) == EVERY_COMMAND and listed == COMMANDS
    assert "`segattn <command> --help`" in out


def test_a_command_keeps_its_own_help_and_a_misspelt_one_is_named(capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["segattn"])  # as the command's own, pytest's would not be
    with pytest.raises(SystemExit) as stop:
        main(["fit", "--help"])
    assert stop.value.code == 0 and "--trainer.max_epochs" in capsys.readouterr().out  # LightningCLI's
    with pytest.raises(SystemExit) as stop:
        main(["fitt"])
    assert stop.value.code == 2
    assert capsys.readouterr().err.startswith("segattn: error: fitt: unknown command; did you mean fit?")


def test_readme_unknown_option_example_is_what_the_command_prints(tmp_path, segattn):
    readme = " ".join((REPO / "README.md").read_text().split())
    command, quoted = re.search(r"`(segattn fit [^`]+)` prints `(segattn: error: [^`]+)`", readme).groups()
    (tmp_path / "configs").symlink_to(REPO / "configs")  # its relative config path, and no runs/ in the checkout
    result = segattn(*shlex.split(command)[1:], cwd=tmp_path)
    assert one_error_line(result) == quoted


def test_only_fit_counts_in_lightning_logs(fitted):
    """validate logs in a folder of its own (the README's <default_root_dir>/<command>/version_N/),
    so the next fit is version_1."""
    run_dir, data_dir, best = fitted
    args = small_fit_args(run_dir, data_dir, epochs=1)
    run("validate", *args[1:], "--ckpt_path", best)
    run(*args)
    assert sorted(p.name for p in (run_dir / "lightning_logs").iterdir()) == ["version_0", "version_1"]
    assert "<default_root_dir>/<command>/version_N/" in (REPO / "README.md").read_text()
    assert "val/mIoU" in (run_dir / "validate/version_0/metrics.csv").read_text()


def test_retired_predict_points_to_infer(fitted, segattn):
    """Lightning's predict ran the network without the Segmenter: it is gone, and says what replaces it."""
    run_dir, data_dir, best = fitted
    result = segattn("predict", *small_fit_args(run_dir, data_dir)[1:], "--ckpt_path", best)
    assert one_error_line(result) == (
        "segattn: error: predict: retired; `segattn infer --ckpt CKPT --input IMAGES --output FOLDER` writes the "
        "label maps of files, folders or globs through the Segmenter (sliding window, TTA, volumes in their own grid)"
    )


def test_relative_data_path_names_the_split_and_the_current_folder(fitted, tmp_path, segattn):
    _, data_dir, best = fitted
    elsewhere = (tmp_path / "elsewhere").resolve()
    elsewhere.mkdir()
    folder = {"class_path": "segattn.data.ImageMaskFolder",
              "init_args": {"images_dir": "data/membrane/train/images", "masks_dir": str(data_dir),
                            "classes": ["background", "membrane"]}}  # fmt: skip
    fit_config = tmp_path / "fit.yaml"
    fit_config.write_text(json.dumps({"data": {"train": folder, "val": folder}}))
    assert one_error_line(segattn("fit", "--config", fit_config, cwd=elsewhere)) == (
        "segattn: error: data.train.init_args.images_dir: data/membrane/train/images is not a folder; "
        f"relative paths are read from the current folder, {elsewhere}"
    )
    synthetic = {"root": str(data_dir), "n_train": 16, "n_val": 6, "size": 64}
    coco = {"images_dir": "synthetic/val", "ann_file": str(data_dir / "annotations/instances_val.json")}
    data = {"train": {"class_path": "segattn.data.SyntheticShapes", "init_args": synthetic},
            "val": {"class_path": "segattn.data.CocoSegmentation", "init_args": coco}}  # fmt: skip
    eval_config = tmp_path / "eval.yaml"
    eval_config.write_text(json.dumps({"data": data}))
    result = segattn("evaluate", "--ckpt", best, "--config", eval_config, cwd=elsewhere)
    assert one_error_line(result) == (
        "segattn: error: data.val.init_args.images_dir: synthetic/val: image folder not found; "
        f"relative paths are read from the current folder, {elsewhere}"
    )


def test_yaml_syntax_error_names_the_file_and_line(fitted, tmp_path, segattn):
    _, _, best = fitted
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  lr: 0.001\n  model_args: {widths: [8, 16]\ndata:\n")
    expected = f"segattn: error: {bad}, line 4, column 1: cannot read as YAML: "
    for command in (["fit", "--config", bad], ["evaluate", "--ckpt", best, "--config", bad]):
        assert one_error_line(segattn(*command)).startswith(expected)
