"""Numeric command-line values, checked when the command line is parsed (before a checkpoint or
an image is read): argparse `type=` functions for every count, size, share and scale option of
segattn's own commands. The Python API checks the same values in the functions that take them."""

from __future__ import annotations

import argparse
import math


def count(text: str) -> int:
    """An integer ≥ 1 (batch sizes, window sides, epochs, image counts)."""
    value = integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer ≥ 1, got {text!r}")
    return value


def non_negative(text: str) -> int:
    """An integer ≥ 0 (DataLoader workers, gallery sizes, where 0 means none)."""
    value = integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer ≥ 0, got {text!r}")
    return value


def share(text: str) -> float:
    """A finite float in [0, 1) (sliding-window overlap)."""
    value = real(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a share in [0, 1), got {text!r}")
    return value


def scale(text: str) -> float:
    """A finite float > 0 (TTA scale factors)."""
    value = real(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive scale factor, got {text!r}")
    return value


def seconds(text: str) -> float:
    """A finite float ≥ 0 (waiting times)."""
    value = real(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more seconds, got {text!r}")
    return value


def devices(text: str) -> int | str:
    """An integer ≥ 1 (a device count), or "auto"."""
    return text if text == "auto" else count(text)


def integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def real(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value
