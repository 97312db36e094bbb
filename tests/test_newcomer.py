"""A newcomer's first hour through the `segattn` command: the overview of the commands, where each
subcommand logs, and the one-line errors of a first config (an unknown option, a YAML slip, a
relative data path read from another folder)."""

import sys

import pytest

from segattn.cli import main
from segattn.usage import COMMANDS

pytestmark = pytest.mark.slow
EVERY_COMMAND = ["demo", "fit", "validate", "test", "predict", "evaluate", "infer", "export"]


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
