"""The `segattn` command: LightningCLI's fit | validate | test (segattn.commands.lightning),
and segattn's own demo, evaluate, infer and export (a module each in segattn.commands)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from segattn.cli_errors import OneLineArgumentParser, fail
from segattn.commands import demo, evaluate, export, infer, serve
from segattn.commands.lightning import SegattnCLI
from segattn.errors import InputError, TrainingDiverged
from segattn.runlogs import quiet_lightning
from segattn.usage import COMMANDS, OWN_COMMANDS, overview, unknown_command

OWN_MODULES = {"demo": demo, "evaluate": evaluate, "infer": infer, "serve": serve, "export": export}


def main(argv: Sequence[str] | None = None) -> None:
    """The `segattn` command. argv None: sys.argv, left as it is, since Lightning's DDP launcher
    starts the other ranks with the same command line. No arguments, -h or --help: the overview of
    the commands (segattn.usage; exit status 2 when no command was given); `<command> --help` is
    the command's own."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(overview())
        sys.exit(0 if args else 2)
    if not args[0].startswith("-") and args[0] not in COMMANDS:
        fail(unknown_command(args[0]))
    quiet_lightning()
    try:
        if args[0] in OWN_COMMANDS:
            if args[0] == "demo":  # it hands LightningCLI its own arguments
                sys.argv = sys.argv[:1]
            run_own_command(args)  # infer's launcher starts its other processes with sys.argv
        else:
            SegattnCLI(args=None if argv is None else args)
    except (InputError, TrainingDiverged) as exc:
        fail(own_message(exc))


def own_message(exc: Exception) -> str:
    """The error's message; for one that a DataLoader worker raised, the worker's own message:
    PyTorch re-raises it in the main process as "Caught InputError in DataLoader worker process
    1. Original Traceback (most recent call last): ..., segattn.errors.InputError: <message>"."""
    text = str(exc)
    marker = f"{type(exc).__module__}.{type(exc).__qualname__}: "
    if text.startswith("Caught ") and marker in text:
        return text.rsplit(marker, 1)[1].strip()
    return text


def run_own_command(argv: list[str]) -> None:
    """Parses and runs one of segattn's own commands. Only evaluate takes unknown tokens, and only
    `--data.<key> VALUE` overrides of its config's data section."""
    parser = OneLineArgumentParser(prog="segattn")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in OWN_COMMANDS:
        OWN_MODULES[command].add_parser(sub)
    args, overrides = parser.parse_known_args(argv)
    if overrides and (args.command != "evaluate" or not evaluate.takes_overrides(overrides)):
        parser.error(f"unrecognized arguments: {' '.join(overrides)}")
    args.data_overrides = overrides
    OWN_MODULES[args.command].run(args)


if __name__ == "__main__":
    main()
