"""`segattn infer`: label maps (and overlays, probabilities) for files, folders or globs of images."""

from __future__ import annotations

import argparse
import sys

from segattn.cli_types import count, non_negative
from segattn.commands.predict_options import add_predict_options, predict_options
from segattn.infer import InferStats, run_infer
from segattn.infer_ranks import run_infer_job
from segattn.inference import Segmenter
from segattn.usage import COMMANDS


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("infer", help=COMMANDS["infer"])
    parser.add_argument("--ckpt", required=True, help="checkpoint written by fit")
    parser.add_argument(
        "--input", required=True, nargs="+", help="image (volume) files, folders or globs (quote globs)"
    )
    parser.add_argument("--output", required=True, help="folder for <stem>.png (volumes: <name>.nii.gz) label maps")
    parser.add_argument("--batch-size", type=count, default=8)
    parser.add_argument(
        "--device", default="auto", help='"auto", "cpu" or "cuda:N"; with --devices N > 1: "auto", "cpu" or "cuda"'
    )
    parser.add_argument("--devices", type=count, default=1, help="processes, one per device (GPU, or CPU share)")
    parser.add_argument("--num-nodes", type=count, default=1, help="machines of --devices processes each")
    parser.add_argument("--workers", type=non_negative, default=2, help="DataLoader processes reading images")
    parser.add_argument("--overlay", action="store_true", help="also write <stem>_overlay.jpg (images only)")
    parser.add_argument("--probs", action="store_true", help="also write <stem>_probs.npy (float16 K×H×W, K×D×H×W)")
    parser.add_argument("--overwrite", action="store_true", help="redo images whose label map exists")
    parser.add_argument("--compile", action="store_true", help="torch.compile the network first")
    parser.add_argument(
        "--skip-errors",
        action="store_true",
        help="report an image that cannot be read or written, go on with the rest, exit 1 at the end",
    )
    add_predict_options(parser)


def run(args: argparse.Namespace) -> None:
    """Writes label maps, prints what was written and the speed; exits 1 when an image failed.
    With --devices or --num-nodes above 1, one job over that many processes (rank 0 reports)."""
    options = {
        "batch_size": args.batch_size, "overlay_images": args.overlay, "probs": args.probs, "workers": args.workers,
        "overwrite": args.overwrite, "skip_errors": args.skip_errors, **predict_options(args),
    }  # fmt: skip
    load = {"precision": args.precision, "compile": args.compile, "trust_checkpoint": args.trust_checkpoint}
    if args.devices > 1 or args.num_nodes > 1:
        job = (args.ckpt, args.input, args.output, args.devices, args.num_nodes, args.device, load)
        stats = run_infer_job(*job, **options)
        if stats is None:  # not rank 0
            return
    else:
        stats = run_infer(Segmenter.from_checkpoint(args.ckpt, args.device, **load), args.input, args.output, **options)
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
    maps = "label maps" if stats.unit == "image" else "label volumes"
    summary = f"wrote {stats.written} {maps} to {output}{detail}"
    if not stats.written:  # no speed to report
        return summary
    return f"{summary} in {stats.seconds:.1f} s: {stats.images_per_second:.3g} {stats.unit}s/s"
