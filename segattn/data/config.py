"""The SegDataModule of a config file's `data` section, as `segattn fit` builds it."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import yaml

from segattn.cli_errors import OneLineErrorParser, read_yaml
from segattn.data.datamodule import SegDataModule
from segattn.errors import InputError, MissingPathError


def load_datamodule(config: str | os.PathLike, overrides: Sequence[str] = ()) -> SegDataModule:
    """The SegDataModule of a fit config's `data` section (other sections are not read), with
    command-line overrides of its keys as `fit` takes them, e.g. ["--data.val.init_args.images_dir",
    "/data/val"]."""
    path = Path(config)
    if not path.is_file():
        raise MissingPathError(f"{path}: config file not found")
    raw = read_yaml(path)
    if not isinstance(raw, dict) or "data" not in raw:
        raise InputError(f"{path}: no 'data' section")
    parser = OneLineErrorParser()
    parser.add_lightning_class_args(SegDataModule, "data")
    return parser.instantiate(parser.parse_args(["--data", yaml.safe_dump(raw["data"]), *overrides])).data
