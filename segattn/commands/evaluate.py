"""`segattn evaluate`: scores a checkpoint on a split of a config's data section, with a report."""

from __future__ import annotations

import argparse

from segattn.case_metrics import print_case_summary
from segattn.cli_types import count, non_negative
from segattn.commands.predict_options import add_predict_options, predict_options
from segattn.data.config import load_datamodule
from segattn.errors import InputError
from segattn.evaluate import evaluate_dataset, print_scores, write_report
from segattn.inference import Segmenter
from segattn.usage import COMMANDS


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("evaluate", help=COMMANDS["evaluate"])
    parser.add_argument("--ckpt", required=True, help="checkpoint written by fit")
    parser.add_argument(
        "--config",
        required=True,
        help="the YAML config whose data section names the split; --data.KEY VALUE overrides a key, as in fit",
    )
    parser.add_argument("--split", default="val", choices=["val", "test"])
    parser.add_argument(
        "--out", help="folder for metrics.json, per_class.csv, confusion.png, worst/ (images) or per_case.csv (volumes)"
    )
    parser.add_argument("--batch-size", type=count, default=8)
    parser.add_argument("--device", default="auto", help='"auto", "cpu" or "cuda:N"')
    parser.add_argument("--averaging", default="dataset", choices=["dataset", "image"])
    parser.add_argument("--absent", default="nan", choices=["nan", "one", "zero"], help="score of a class in neither")
    parser.add_argument("--exclude-background", action="store_true", help="leave class 0 out of the means")
    parser.add_argument("--boundary", action="store_true", help="also HD95 and ASSD (CPU, slower)")
    parser.add_argument(
        "--worst",
        type=non_negative,
        default=8,
        help="gallery of the N images with the lowest mIoU (images; volumes get per_case.csv)",
    )
    add_predict_options(parser)


def takes_overrides(tokens: list[str]) -> bool:
    """Whether `tokens` (what the parser did not know) are all `--data.<key> VALUE` overrides."""
    options = [token for token in tokens if token.startswith("--")]
    return bool(options) and tokens[0] == options[0] and all(o.startswith("--data.") for o in options)


def run(args: argparse.Namespace) -> None:
    """Scores --ckpt on the --split data set of --config's data section; writes the report to --out."""
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
    kind = "volumes" if evaluation.cases is not None else "images"
    print_scores(evaluation.scores, f"{args.split}: {args.ckpt} ({len(dataset)} {kind})")
    if evaluation.cases is not None:
        print_case_summary(evaluation.cases, f"{args.split}: per case, mean ± std over {len(dataset)} volumes")
    if args.out:
        for what, path in write_report(evaluation, args.out, segmenter, dataset, args.worst).items():
            print(f"{what:10s} {path}")
