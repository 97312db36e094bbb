"""`segattn export`: writes ONNX, prints the parity with onnxruntime, fails above 1e-3."""

from __future__ import annotations

import argparse
import sys

from segattn.cli_types import count
from segattn.export import TOLERANCE, export_onnx
from segattn.usage import COMMANDS


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("export", help=COMMANDS["export"])
    parser.add_argument("--ckpt", required=True, help="checkpoint written by fit")
    parser.add_argument("--onnx", required=True, help="the .onnx file to write")
    parser.add_argument("--dynamic", action="store_true", help="free batch, height and width")
    parser.add_argument("--image", help="image for the parity check (default: a drawn synthetic one)")
    parser.add_argument("--opset", type=count, default=17)
    parser.add_argument("--trust-checkpoint", action="store_true", help="load arbitrary objects (trusted files only)")


def run(args: argparse.Namespace) -> None:
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
