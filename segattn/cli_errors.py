"""The command line's one-line errors where a library would answer with its own: the argument
parser's (an unknown option names the nearest known ones), a config file's YAML syntax (the file,
line and column), and a configured data path that does not exist (its split and key)."""

from __future__ import annotations

import argparse
import difflib
import os
import re
import sys
from pathlib import Path
from typing import Any, NoReturn

import yaml
from jsonargparse import Namespace
from lightning.pytorch.cli import LightningArgumentParser

from segattn.errors import InputError, MissingPathError

# argparse's for a flag, jsonargparse's for a key in a config file or a --model '{...}' value
UNKNOWN_OPTIONS = re.compile(r"unrecognized arguments: (.*)|Subcommand '\w+' does not accept option '([^']+)'")
SPLITS = ("train", "val", "test")


def fail(message: str) -> NoReturn:
    """Prints `segattn: error: <message>` on stderr and exits with status 2."""
    print(f"segattn: error: {message}", file=sys.stderr)
    sys.exit(2)


class OneLineErrorParser(LightningArgumentParser):
    """Reports a config or argument error as one line that names the key, instead of the usage,
    and a data set's missing path with the data split and key that give it."""

    def error(self, message: str, ex: Exception | None = None) -> NoReturn:
        if not self.exit_on_error:
            super().error(message, ex)
        parser = getattr(ex, "subcommand_parser", None) or self
        fail(unknown_options(message, parser) or " ".join(line.strip() for line in message.strip().splitlines()))

    def instantiate(self, cfg: Namespace, *args: Any, **kwargs: Any) -> Namespace:
        try:
            return super().instantiate(cfg, *args, **kwargs)
        except MissingPathError as exc:
            key = data_path_key(exc.path, cfg.get("data"))
            if key is None:
                raise
            raise MissingPathError(keyed_message(exc, key), exc.path) from exc


class OneLineArgumentParser(argparse.ArgumentParser):
    """argparse for segattn's own commands, its errors as one line (`segattn: error: ...`); an
    abbreviated option is unknown, not silently read as the option it begins."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        fail(f"{self.prog.removeprefix('segattn ')}: {message}" if " " in self.prog else message)


def unknown_options(message: str, parser: argparse.ArgumentParser) -> str | None:
    """For each option that an unknown-option message of the parser names, as it was given (a flag
    with its --, a config file's key without), "<option>: unknown option; did you mean <the
    nearest known ones>?"; None for any other message."""
    match = UNKNOWN_OPTIONS.fullmatch(message.strip())
    if match is None:
        return None
    dashes = "" if match[2] else "--"
    keys = [match[2]] if match[2] else [t[2:].split("=", 1)[0] for t in match[1].split() if t.startswith("--")]
    if not keys:  # values alone, no option
        return None
    known = option_keys(parser)
    nearest = {key: difflib.get_close_matches(key, known, n=2, cutoff=0.75) for key in keys}
    clauses = [
        f"{dashes}{key}: unknown option"
        + (f"; did you mean {' or '.join(dashes + k for k in close)}?" if close else "")
        for key, close in nearest.items()
    ]
    if not any(nearest.values()):
        clauses.append("`segattn <command> --help` lists the options")
    return "; ".join(clauses)


def option_keys(parser: argparse.ArgumentParser) -> list[str]:
    """The long options of a parser and of its subcommands' parsers, without the leading --."""
    keys = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            keys.update(key for sub in action.choices.values() for key in option_keys(sub))
        keys.update(option[2:] for option in action.option_strings if option.startswith("--"))
    return sorted(keys)


def data_path_key(path: str | os.PathLike | None, data: Any) -> str | None:
    """The key, data.<split>.init_args.<key>, of the first data set (in the order they are built)
    that a config's data section gives `path`; None when none does."""
    if path is None or not isinstance(data, Namespace):
        return None
    for split in SPLITS:
        init_args = data.get(f"{split}.init_args")
        for key, value in vars(init_args).items() if isinstance(init_args, Namespace) else ():
            if isinstance(value, (str, os.PathLike)) and Path(value) == Path(path):
                return f"data.{split}.init_args.{key}"
    return None


def keyed_message(exc: MissingPathError, key: str) -> str:
    """The message of a data set's MissingPathError led by the config key that gave the path, and
    for a relative path, where it was looked for."""
    detail = str(exc).removeprefix(f"{key.rsplit('.', 1)[1]}: ")  # ImageMaskFolder's names the key itself
    if Path(exc.path).is_absolute():
        return f"{key}: {detail}"
    return f"{key}: {detail}; relative paths are read from the current folder, {Path.cwd()}"


def read_yaml(path: Path) -> Any:
    """A config file's content; a YAML error is an InputError naming the file, the line and
    column, and the parser's problem (PyYAML's own message spans five lines)."""
    try:
        return yaml.safe_load(path.read_bytes())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        if mark is None:  # e.g. a ReaderError: a binary file
            raise InputError(f"{path}: cannot read as YAML: {str(exc).splitlines()[0]}") from exc
        context, start = exc.context, exc.context_mark
        since = f" ({context} started at line {start.line + 1}, column {start.column + 1})" if context and start else ""
        raise InputError(
            f"{path}, line {mark.line + 1}, column {mark.column + 1}: cannot read as YAML: {exc.problem}{since}"
        ) from exc
