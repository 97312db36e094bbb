"""`segattn demo`: synthetic data → fit → evaluate → predictions, on the CPU in a few minutes."""

from __future__ import annotations

import argparse

from segattn.cli_types import count
from segattn.demo import run_demo
from segattn.usage import COMMANDS


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("demo", help=COMMANDS["demo"])
    parser.add_argument("--config", help="recipe (default: configs/demo.yaml of this checkout)")
    parser.add_argument("--out", default="runs/demo", help="where logs, checkpoints and predictions go")
    parser.add_argument("--data-dir", help="where the synthetic set is made (default: the config's)")
    parser.add_argument("--epochs", type=count, help="override the recipe's max_epochs")
    parser.add_argument("--n-train", type=count, help="override the number of training images")
    parser.add_argument("--n-val", type=count, help="override the number of validation images")


def run(args: argparse.Namespace) -> None:
    run_demo(args.config, args.out, args.data_dir, args.epochs, args.n_train, args.n_val)
