"""Errors for bad user input. Their message names the file, key or value and what was expected.

The command line prints these (and TrainingDiverged) as one line, with no traceback; anything
else is a bug and keeps its traceback.
"""

import os
from typing import Any, get_args


class InputError(ValueError):
    """A config value, file, image or label that is not what segattn expects."""


class MissingPathError(InputError, FileNotFoundError):
    """A configured or given path that does not exist; `path`, where the raiser gives it, is that
    path as configured (the command line names the config key that holds it)."""

    def __init__(self, message: str, path: str | os.PathLike | None = None) -> None:
        super().__init__(message)
        self.path = path


def check_choice(key: str, value: object, choices: Any, optional: bool = False) -> None:
    """Raises an InputError naming `key` unless `value` is one of the Literal `choices`, or None
    where `optional`."""
    allowed = list(get_args(choices))
    if (optional and value is None) or value in allowed:
        return
    expected = [*allowed, None] if optional else allowed
    raise InputError(f"{key}: unknown value {value!r}; expected one of {expected}")


def check_count(key: str, value: object) -> None:
    """Raises an InputError naming `key` unless `value` is an integer ≥ 1."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InputError(f"{key}: expected an integer ≥ 1, got {value!r}")


def check_counts(key: str, value: object, count: int, meaning: str) -> tuple[int, ...]:
    """`value` as a tuple of `count` integers ≥ 1, else an InputError naming `key` and what the
    integers are (`meaning`, e.g. "d, h, w")."""
    ok = isinstance(value, list | tuple) and len(value) == count
    if not ok or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in value):
        words = {2: "two", 3: "three"}.get(count, str(count))
        raise InputError(f"{key}: expected {words} integers ≥ 1 ({meaning}), got {value!r}")
    return tuple(value)


def check_flag(key: str, value: object) -> None:
    """Raises an InputError naming `key` unless `value` is True or False (a string such as "no"
    would otherwise count as true)."""
    if not isinstance(value, bool):
        raise InputError(f"{key}: expected true or false, got {value!r}")


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; training stops and keeps its last good checkpoint."""
