"""fit | validate | test: LightningCLI over SegmentationTask and SegDataModule, with
segattn's checks of config files and checkpoints before Lightning reads them."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lightning.pytorch import Trainer
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.utilities import rank_zero_warn

from segattn import checkpoint
from segattn.cli_errors import OneLineErrorParser, read_yaml
from segattn.data import SegDataModule
from segattn.errors import InputError
from segattn.models.registry import check_kwargs
from segattn.runlogs import newest_last_checkpoint, run_loggers
from segattn.task import SegmentationTask
from segattn.usage import LIGHTNING_COMMANDS, OWN_COMMANDS


class SegattnCLI(LightningCLI):
    """LightningCLI over SegmentationTask and SegDataModule; classes and input channels flow from
    the data module into the model. Unless `trainer.logger` is set, a run logs to TensorBoard and
    to CSV (metrics.csv) in one folder: fit in <default_root_dir>/lightning_logs/version_N/, which
    also holds checkpoints/, validate and test in <default_root_dir>/<subcommand>/version_N/ (see
    segattn.runlogs). `fit --ckpt_path last` resumes the newest last.ckpt of any earlier run under
    default_root_dir. Lightning's predict is not offered: `segattn infer` is the one inference path."""

    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        return {name: keys for name, keys in LightningCLI.subcommands().items() if name in LIGHTNING_COMMANDS}

    def __init__(self, args: Sequence[str] | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("save_config_kwargs", {"overwrite": True})
        kwargs.setdefault("parser_class", OneLineErrorParser)
        epilog = f"segattn's own commands: {', '.join(OWN_COMMANDS)}; `segattn --help` says what each does."
        kwargs.setdefault("parser_kwargs", {"epilog": epilog, "allow_abbrev": False})  # --trainer.max_epoch is a typo
        # The recipe's AdamW + warm-up + cosine is SegmentationTask's (model.lr, model.weight_decay, ...):
        # LightningCLI's --optimizer / --lr_scheduler would replace it with only a warning.
        kwargs.setdefault("auto_configure_optimizers", False)
        super().__init__(SegmentationTask, SegDataModule, args=args, **kwargs)

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments("data.classes", "model.classes", apply_on="instantiate")
        parser.link_arguments("data.in_channels", "model.in_channels", apply_on="instantiate")

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        """Parses, then checks --ckpt_path before Lightning reads it: "last" becomes the newest
        last.ckpt under default_root_dir (Lightning would look only in this run's new, empty
        version folder); a missing, foreign or damaged file is a one-line error; and a model
        option set here that differs from the checkpoint's is an error, since Lightning would
        silently replace it with the checkpoint's (it builds the model from those)."""
        for path in config_files(sys.argv[1:] if args is None else args):
            check_dataset_keys(path)
        super().parse_arguments(parser, args)
        self.checkpoint_record: dict[str, Any] | None = None
        self.checkpoint_step = 0
        subcommand = self.config.get("subcommand")
        config = self.config[subcommand] if subcommand else None
        if config is None or config.get("ckpt_path") is None:
            return
        if config["ckpt_path"] == "last" and subcommand == "fit":
            root = config["trainer"].get("default_root_dir") or os.getcwd()
            found = newest_last_checkpoint(root)
            if found is None:
                rank_zero_warn(f"--ckpt_path last: no last.ckpt under {root}; training anew")
                config["ckpt_path"] = None
                return
            config["ckpt_path"] = str(found)
        stored = checkpoint.read(config["ckpt_path"], trust_hint=None)  # Lightning's commands cannot trust a file
        checkpoint.check_weights(config["ckpt_path"], checkpoint.model_state(stored))  # resuming NaNs trains NaNs
        self.checkpoint_record, self.checkpoint_step = stored[checkpoint.RECORD_KEY], stored.get("global_step", 0)
        defaults = self._subcommand_parsers[subcommand].get_defaults()["model"]
        # fit resumes training: every setting counts; the others only build and score the network
        keys = config["model"].keys() if subcommand == "fit" else ("model", "model_args", "ignore_index")
        hparams = stored.get("hyper_parameters", {})
        changed = [
            f"model.{key} {config['model'][key]!r} (the checkpoint's: {hparams[key]!r})"
            for key in keys
            if key in hparams
            and key not in ("classes", "in_channels")  # taken from the data, checked once it is built
            and config["model"][key] not in (defaults.get(key), hparams[key])
        ]
        if changed:
            raise InputError(
                f"--ckpt_path {config['ckpt_path']}: the model is built from the checkpoint's settings, "
                f"so these would be ignored: {'; '.join(changed)}; drop them, or train a new run"
            )

    def after_instantiate_classes(self) -> None:
        """A checkpoint's classes and input channels must be the data's."""
        super().after_instantiate_classes()
        record, data = self.checkpoint_record, self.datamodule
        if record is None or data is None:
            return
        ckpt = self.config[self.subcommand]["ckpt_path"]
        if list(record["classes"]) != list(data.classes) or record["in_channels"] != data.in_channels:
            raise InputError(
                f"--ckpt_path {ckpt}: trained for classes {record['classes']} on {record['in_channels']}-channel "
                f"images; the data has {data.classes} on {data.in_channels}-channel images"
            )

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        config = self._get(self.config_init, "trainer", default={})
        if config.get("logger") in (None, True):
            root = config.get("default_root_dir") or os.getcwd()
            ckpt = self.config[self.subcommand].get("ckpt_path")
            kwargs["logger"] = run_loggers(root, self.subcommand, ckpt, self.checkpoint_step)
        return super().instantiate_trainer(**kwargs)


def config_files(args: Any) -> list[Path]:
    """The files given by --config / -c in a command line (a list of strings; else none)."""
    if not isinstance(args, (list, tuple)):
        return []
    tokens = [str(token) for token in args]
    files = [tokens[i + 1] for i, token in enumerate(tokens[:-1]) if token in ("--config", "-c")]
    files += [token.split("=", 1)[1] for token in tokens if token.startswith("--config=")]
    return [Path(file) for file in files if Path(file).is_file()]


def check_dataset_keys(path: Path) -> None:
    """An unknown init_args key of a data set in a config file is an InputError naming it.
    jsonargparse reports one itself, except when its value is a mapping with number keys (a
    misspelt value_map, say): then it says "Key must be a string", which names nothing."""
    raw = read_yaml(path) or {}
    data = raw.get("data") if isinstance(raw, dict) else None
    for split in ("train", "val", "test"):
        entry = data.get(split) if isinstance(data, dict) else None
        if not isinstance(entry, dict) or not isinstance(entry.get("init_args"), dict):
            continue
        module, _, name = str(entry.get("class_path", "")).rpartition(".")
        try:
            cls = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError, ValueError):
            continue  # jsonargparse names a class_path it cannot import
        check_kwargs(f"{path}: data.{split}.init_args of {name}", cls, entry["init_args"], supplied=())
