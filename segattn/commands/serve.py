"""`segattn serve`: a checkpoint as an HTTP service (segattn.serving, on LitServe)."""

from __future__ import annotations

import argparse
from math import isqrt

from segattn.cli_types import count, devices, seconds
from segattn.errors import InputError
from segattn.serving.defaults import BATCH_TIMEOUT, MAX_BATCH_SIZE, MAX_BYTES, MAX_PIXELS
from segattn.usage import COMMANDS


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("serve", help=COMMANDS["serve"])
    parser.add_argument("--ckpt", required=True, help="checkpoint written by fit")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=count, default=8000)
    parser.add_argument("--accelerator", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--devices", type=devices, default="auto", help='"auto" or a count: a worker per device')
    parser.add_argument("--workers-per-device", type=count, default=1)
    parser.add_argument(
        "--max-batch-size", type=count, default=MAX_BATCH_SIZE, help="concurrent requests batched together"
    )
    parser.add_argument("--batch-timeout", type=seconds, default=BATCH_TIMEOUT, help="seconds a batch waits to fill")
    parser.add_argument(
        "--max-bytes", type=count, default=MAX_BYTES, help=f"largest request body (default {MAX_BYTES // 2**20} MiB)"
    )
    parser.add_argument(
        "--max-pixels", type=count, default=MAX_PIXELS,
        help=f"largest image, W × H, or a volume's voxels (default {isqrt(MAX_PIXELS)}²)",
    )  # fmt: skip
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    parser.add_argument("--trust-checkpoint", action="store_true", help="load arbitrary objects (trusted files only)")


def run(args: argparse.Namespace) -> None:
    """Serves until interrupted."""
    try:
        from segattn.serving import build_server, serve
    except ImportError as exc:
        raise InputError(f"serve needs {exc.name}, which is not installed: pip install 'segattn[serve]'") from exc
    server = build_server(
        args.ckpt, args.accelerator, args.devices, args.workers_per_device, args.max_batch_size, args.batch_timeout,
        args.max_bytes, args.max_pixels, args.precision, args.trust_checkpoint,
    )  # fmt: skip
    print(f"segattn serve: {args.ckpt} on http://{args.host}:{args.port}/ (POST /predict, GET /health, GET /info)")
    serve(server, args.host, args.port)
