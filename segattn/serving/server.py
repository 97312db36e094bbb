"""`segattn serve`: a checkpoint behind HTTP on LitServe. POST /predict (SegmenterAPI), GET /health
(LitServe's: 200 once every worker has loaded the model), GET /info (the model: classes,
palette, network; and LitServe's server settings), GET / (a page to try it in a browser)."""

from __future__ import annotations

import os
from importlib import resources
from typing import Any

import litserve as ls
from fastapi.responses import HTMLResponse

from segattn import checkpoint
from segattn.serving.api import SegmenterAPI
from segattn.serving.defaults import BATCH_TIMEOUT, MAX_BATCH_SIZE, MAX_BYTES, MAX_PIXELS
from segattn.serving.guard import UploadGuard


def model_info(record: dict[str, Any], path: str | os.PathLike) -> dict[str, Any]:
    """What GET /info tells about the model, from its checkpoint's record."""
    return {
        "checkpoint": os.path.basename(path), "model": record["model"], "model_args": record["model_args"],
        "classes": record["classes"], "palette": record["palette"], "in_channels": record["in_channels"],
        "volumes": record["model_args"].get("spatial_dims", 2) == 3 or record.get("slices") is not None,
    }  # fmt: skip


def build_server(
    ckpt: str | os.PathLike,
    accelerator: str = "auto",
    devices: int | str = "auto",
    workers_per_device: int = 1,
    max_batch_size: int = MAX_BATCH_SIZE,
    batch_timeout: float = BATCH_TIMEOUT,
    max_bytes: int = MAX_BYTES,
    max_pixels: int = MAX_PIXELS,
    precision: str = "auto",
    trust_checkpoint: bool = False,
) -> ls.LitServer:
    """The LitServer of a checkpoint, loaded here once (weights_only unless trust_checkpoint) and
    handed to each worker. Requests are capped at `max_bytes` of body and `max_pixels` per image
    (checked before decoding); up to `max_batch_size` concurrent requests that arrive within
    `batch_timeout` seconds are batched."""
    record, state = checkpoint.load(ckpt, trust=trust_checkpoint)
    api = SegmenterAPI(record, state, str(ckpt), precision, max_pixels, max_batch_size, batch_timeout)
    server = ls.LitServer(
        api, accelerator=accelerator, devices=devices, workers_per_device=workers_per_device,
        model_metadata=model_info(record, ckpt), middlewares=[(UploadGuard, {"max_bytes": max_bytes})],
    )  # fmt: skip
    page = resources.files("segattn.serving").joinpath("page.html").read_text(encoding="utf-8")
    # LitServe answers GET / with "litserve running"; the page takes its place
    server.app.router.routes = [r for r in server.app.router.routes if getattr(r, "path", None) != "/"]
    server.app.add_api_route("/", lambda: HTMLResponse(page), methods=["GET"], include_in_schema=False)
    return server


def serve(server: ls.LitServer, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Runs the server until interrupted; nothing written to the current folder (LitServe's
    client.py is not generated)."""
    server.run(host=host, port=port, generate_client_file=False, log_level="warning")
