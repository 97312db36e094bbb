"""The `segattn` command: LightningCLI's fit | validate | test | predict, plus demo and evaluate."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lightning.pytorch import Trainer
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.utilities import rank_zero_warn

from segattn import checkpoint
from segattn.cli_errors import OneLineArgumentParser, OneLineErrorParser, fail, read_yaml
from segattn.cli_types import count, non_negative, scale, share
from segattn.data import SegDataModule
from segattn.data.config import load_datamodule
from segattn.errors import InputError, TrainingDiverged
from segattn.evaluate import evaluate_dataset, print_scores, write_report
from segattn.inference import Segmenter
from segattn.models.registry import check_kwargs
from segattn.runlogs import newest_last_checkpoint, quiet_lightning, run_loggers
from segattn.task import SegmentationTask
from segattn.usage import COMMANDS, OWN_COMMANDS, overview, unknown_command

if TYPE_CHECKING:
    from segattn.infer import InferStats


class SegattnCLI(LightningCLI):
    """LightningCLI over SegmentationTask and SegDataModule; classes and input channels flow from
    the data module into the model. Unless `trainer.logger` is set, a run logs to TensorBoard and
    to CSV (metrics.csv) in one folder: fit in <default_root_dir>/lightning_logs/version_N/, which
    also holds checkpoints/, validate, test and predict in <default_root_dir>/<subcommand>/version_N/
    (see segattn.runlogs). `fit --ckpt_path last` resumes the newest last.ckpt of any earlier run
    under default_root_dir."""

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
            sys.argv = sys.argv[:1]  # the demo hands LightningCLI its own arguments
            run_own_command(args)
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
    parser = OneLineArgumentParser(prog="segattn")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help=COMMANDS["demo"])
    demo.add_argument("--config", help="recipe (default: configs/demo.yaml of this checkout)")
    demo.add_argument("--out", default="runs/demo", help="where logs, checkpoints and predictions go")
    demo.add_argument("--data-dir", help="where the synthetic set is made (default: the config's)")
    demo.add_argument("--epochs", type=count, help="override the recipe's max_epochs")
    demo.add_argument("--n-train", type=count, help="override the number of training images")
    demo.add_argument("--n-val", type=count, help="override the number of validation images")
    evaluate = sub.add_parser("evaluate", help=COMMANDS["evaluate"])
    evaluate.add_argument("--ckpt", required=True, help="checkpoint written by fit")
    evaluate.add_argument(
        "--config",
        required=True,
        help="the YAML config whose data section names the split; --data.KEY VALUE overrides a key, as in fit",
    )
    evaluate.add_argument("--split", default="val", choices=["val", "test"])
    evaluate.add_argument("--out", help="folder for metrics.json, per_class.csv, confusion.png, worst/")
    evaluate.add_argument("--batch-size", type=count, default=8)
    evaluate.add_argument("--device", default="auto", help='"auto", "cpu" or "cuda:N"')
    evaluate.add_argument("--averaging", default="dataset", choices=["dataset", "image"])
    evaluate.add_argument("--absent", default="nan", choices=["nan", "one", "zero"], help="score of a class in neither")
    evaluate.add_argument("--exclude-background", action="store_true", help="leave class 0 out of the means")
    evaluate.add_argument("--boundary", action="store_true", help="also HD95 and ASSD (CPU, slower)")
    evaluate.add_argument("--worst", type=non_negative, default=8, help="gallery of the N images with the lowest mIoU")
    add_predict_options(evaluate)
    infer = sub.add_parser("infer", help=COMMANDS["infer"])
    infer.add_argument("--ckpt", required=True, help="checkpoint written by fit")
    infer.add_argument("--input", required=True, nargs="+", help="image files, folders or globs (quote globs)")
    infer.add_argument("--output", required=True, help="folder for <stem>.png label maps")
    infer.add_argument("--batch-size", type=count, default=8)
    infer.add_argument("--device", default="auto", help='"auto", "cpu" or "cuda:N"')
    infer.add_argument("--workers", type=non_negative, default=2, help="DataLoader processes reading images")
    infer.add_argument("--overlay", action="store_true", help="also write <stem>_overlay.jpg")
    infer.add_argument("--probs", action="store_true", help="also write <stem>_probs.npy (float16 K×H×W)")
    infer.add_argument("--overwrite", action="store_true", help="redo images whose label map exists")
    infer.add_argument("--compile", action="store_true", help="torch.compile the network first")
    infer.add_argument(
        "--skip-errors",
        action="store_true",
        help="report an image that cannot be read or written, go on with the rest, exit 1 at the end",
    )
    add_predict_options(infer)
    export = sub.add_parser("export", help=COMMANDS["export"])
    export.add_argument("--ckpt", required=True, help="checkpoint written by fit")
    export.add_argument("--onnx", required=True, help="the .onnx file to write")
    export.add_argument("--dynamic", action="store_true", help="free batch, height and width")
    export.add_argument("--image", help="image for the parity check (default: a drawn synthetic one)")
    export.add_argument("--opset", type=count, default=17)
    export.add_argument("--trust-checkpoint", action="store_true", help="load arbitrary objects (trusted files only)")
    args, overrides = parser.parse_known_args(argv)
    if overrides and (args.command != "evaluate" or not is_data_overrides(overrides)):
        parser.error(f"unrecognized arguments: {' '.join(overrides)}")
    args.data_overrides = overrides
    if args.command == "demo":
        from segattn.demo import run_demo  # imports this module

        run_demo(args.config, args.out, args.data_dir, args.epochs, args.n_train, args.n_val)
    elif args.command == "evaluate":
        evaluate_checkpoint(args)
    elif args.command == "infer":
        infer_folder(args)
    else:
        export_checkpoint(args)


def export_checkpoint(args: argparse.Namespace) -> None:
    """`segattn export`: writes ONNX, prints the parity with onnxruntime, fails above 1e-3."""
    from segattn.export import TOLERANCE, export_onnx

    diffs = export_onnx(args.ckpt, args.onnx, args.dynamic, args.image, args.opset, args.trust_checkpoint)
    for name, diff in diffs.items():
        print(f"onnxruntime vs PyTorch, {name}: max abs logit difference {diff:.2e}")
    if not max(diffs.values()) <= TOLERANCE:  # NaN fails too
        print(
            f"segattn: error: {args.onnx}: not written: the ONNX output differs by more than {TOLERANCE}",
            file=sys.stderr,
        )
        sys.exit(1)
    print(f"wrote {args.onnx}")


def infer_folder(args: argparse.Namespace) -> None:
    """`segattn infer`: writes label maps and reports images/s."""
    from segattn.infer import run_infer

    segmenter = Segmenter.from_checkpoint(args.ckpt, args.device, args.precision, args.compile, args.trust_checkpoint)
    stats = run_infer(
        segmenter,
        args.input,
        args.output,
        args.batch_size,
        args.overlay,
        args.probs,
        args.workers,
        args.overwrite,
        args.skip_errors,
        **predict_options(args),
    )
    print(infer_summary(stats, args.output))
    if stats.failed:
        print(f"segattn: error: {len(stats.failed)} image(s) failed:", file=sys.stderr)
        for path, reason in stats.failed:
            print(f"  {reason}" if str(path) in reason else f"  {path}: {reason}", file=sys.stderr)
        sys.exit(1)


def infer_summary(stats: InferStats, output: str) -> str:
    """One line: what `segattn infer` wrote, skipped and left out, and its speed."""
    notes = []
    if stats.skipped:
        notes.append(f"{stats.skipped} existed and were skipped; --overwrite redoes them")
    if stats.own_outputs:
        notes.append(f"{stats.own_outputs} input file(s) were segattn's own earlier outputs and were not segmented")
    if stats.failed:
        notes.append(f"{len(stats.failed)} failed")
    detail = f" ({'; '.join(notes)})" if notes else ""
    summary = f"wrote {stats.written} label maps to {output}{detail}"
    if not stats.written:  # no speed to report
        return summary
    return f"{summary} in {stats.seconds:.1f} s: {stats.images_per_second:.3g} images/s"


def add_predict_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tta", choices=["flip", "flip+scales"], help="test-time augmentation")
    parser.add_argument("--scales", type=scale, nargs="+", help="scales for flip+scales (default 0.75 1 1.25)")
    parser.add_argument("--slide", type=count, metavar="WINDOW", help="sliding-window inference with this window")
    parser.add_argument("--overlap", type=share, help="sliding-window overlap share (default 0.25)")
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    parser.add_argument(
        "--trust-checkpoint",
        action="store_true",
        help="load a checkpoint that holds arbitrary objects (trusted files only)",
    )


def predict_options(args: argparse.Namespace) -> dict[str, Any]:
    """Segmenter.predict keyword arguments from the shared command-line options."""
    if args.overlap is not None and args.slide is None:
        raise InputError(f"--overlap {args.overlap}: applies to sliding-window inference only; give --slide WINDOW")
    return {
        "tta": args.tta,
        "scales": None if args.scales is None else tuple(args.scales),
        "slide": args.slide if args.overlap is None else (args.slide, args.overlap),
    }


def evaluate_checkpoint(args: argparse.Namespace) -> None:
    """`segattn evaluate`: scores --ckpt on the --split data set of --config's data section."""
    segmenter = Segmenter.from_checkpoint(
        args.ckpt, device=args.device, precision=args.precision, trust_checkpoint=args.trust_checkpoint
    )
    datamodule = load_datamodule(args.config, args.data_overrides)
    dataset = datamodule.datasets[args.split]
    if dataset is None:
        raise InputError(f"{args.config}: data.{args.split} is not configured")
    evaluation = evaluate_dataset(
        segmenter,
        dataset,
        args.batch_size,
        args.averaging,
        args.absent,
        not args.exclude_background,
        args.boundary,
        **predict_options(args),
    )
    print_scores(evaluation.scores, f"{args.split}: {args.ckpt} ({len(dataset)} images)")
    if args.out:
        for what, path in write_report(evaluation, args.out, segmenter, dataset, args.worst).items():
            print(f"{what:10s} {path}")


def is_data_overrides(tokens: list[str]) -> bool:
    """Whether every option among `tokens` is a `--data.<key>` override."""
    options = [token for token in tokens if token.startswith("--")]
    return bool(options) and tokens[0] == options[0] and all(o.startswith("--data.") for o in options)


if __name__ == "__main__":
    main()
