"""Errors for bad user input. Their message names the file, key or value and what was expected.

The command line prints these (and TrainingDiverged) as one line, with no traceback; anything
else is a bug and keeps its traceback.
"""


class InputError(ValueError):
    """A config value, file, image or label that is not what segattn expects."""


class MissingPathError(InputError, FileNotFoundError):
    """A configured or given path that does not exist."""


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; training stops and keeps its last good checkpoint."""
