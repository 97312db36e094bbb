"""The prediction options that evaluate and infer share: TTA, sliding window, precision, trust."""

from __future__ import annotations

import argparse
from typing import Any

from segattn.cli_types import count, scale, share
from segattn.errors import InputError


def add_predict_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tta", choices=["flip", "flip+scales"], help="test-time augmentation")
    parser.add_argument("--scales", type=scale, nargs="+", help="scales for flip+scales (default 0.75 1 1.25)")
    parser.add_argument(
        "--slide",
        type=count,
        nargs="+",
        metavar="WINDOW",
        help="sliding-window inference with this window side (volumes: one side, or three: D H W)",
    )
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
    slide = args.slide
    if slide is not None:
        if len(slide) not in (1, 3):
            raise InputError(f"--slide {' '.join(map(str, slide))}: expected one window side, or three (D H W)")
        slide = slide[0] if len(slide) == 1 else tuple(slide)
    return {
        "tta": args.tta,
        "scales": None if args.scales is None else tuple(args.scales),
        "slide": slide if args.overlap is None else (slide, args.overlap),
    }
