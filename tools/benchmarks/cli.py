"""Command-line checks shared by tools/benchmark.py and tools/tune.py (argparse types and checks)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from . import REPO


def config_name(text: str) -> str:
    """argparse type: the name of a configs/<name>.yaml (a path to one is taken too)."""
    name = Path(text).name.removesuffix(".yaml")
    if not (REPO / "configs" / f"{name}.yaml").is_file():
        known = sorted(p.stem for p in (REPO / "configs").glob("*.yaml"))
        raise argparse.ArgumentTypeError(f"no configs/{name}.yaml; expected one of {known}")
    return name


def distinct_seeds(parser: argparse.ArgumentParser, seeds: Sequence[int] | None) -> None:
    """A seed given twice would train the same run twice."""
    if seeds is not None and len(set(seeds)) != len(seeds):
        parser.error(f"--seeds: each seed once, got {list(seeds)}")
