"""The README's screenshot of `segattn serve`'s page, taken in headless Chromium after dropping an
image on it (the page test in tests/serving drives the page the same way):

    python tools/serve_page.py --ckpt runs/demo/lightning_logs/version_0/checkpoints/best.ckpt \
        --image runs/synthetic/val/000001.jpg --out docs/images/serve_page.png

Needs the `serve` extra, Playwright's Python package and a Chromium (Debian: apt-get install
chromium); Playwright drives the installed browser, it downloads none.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
# headless, and quiet on a machine without a network (no background connections to Google)
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]  # fmt: skip


def chromium() -> str | None:
    """The installed Chromium's path, or None."""
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def running_server(ckpt: str | os.PathLike, *options: str, timeout: float = 180) -> Iterator[str]:
    """`segattn serve` on a free local port, in its own process group, up (GET /health is 200):
    its base URL; stopped, every process of it, when the block ends."""
    port = free_port()
    command = [sys.executable, "-m", "segattn.cli", "serve", "--ckpt", str(ckpt), "--port", str(port), *options]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while not healthy(url):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"segattn serve did not come up: {process.stdout.read().decode()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def multipart(file: bytes, name: str = "image.png", **fields: str) -> tuple[bytes, dict[str, str]]:
    """A multipart/form-data body with the file field `image` and text fields, and its header,
    as a client of POST /predict sends them."""
    boundary = "segattn-client-boundary"
    disposition = f"--{boundary}\r\nContent-Disposition: form-data; "
    parts = [f'{disposition}name="{k}"\r\n\r\n{v}\r\n'.encode() for k, v in fields.items()]
    head = f'{disposition}name="image"; filename="{name}"\r\nContent-Type: application/octet-stream\r\n\r\n'
    parts.append(head.encode() + file + b"\r\n")
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=5) as answer:
            return answer.status == 200
    except OSError:
        return False


def drop_image(page: Any, image: Path) -> None:
    """Drops an image file on the page's drop zone, as a user's drag and drop does, and waits
    until the page shows the result (its status ends with "done", or tells an error)."""
    data = list(image.read_bytes())
    transfer = page.evaluate_handle(
        """([bytes, name]) => {
            const transfer = new DataTransfer();
            transfer.items.add(new File([new Uint8Array(bytes)], name));
            return transfer;
        }""",
        [data, image.name],
    )
    page.dispatch_event("#drop", "drop", {"dataTransfer": transfer})
    shown = "document.getElementById('status')"
    page.wait_for_function(f"/done$/.test({shown}.textContent) || {shown}.className === 'error'", timeout=120_000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", required=True)
    parser.add_argument("--image", required=True, type=Path)
    parser.add_argument("--out", default="docs/images/serve_page.png")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    browser_path = chromium()
    if browser_path is None:
        raise SystemExit(f"tools/serve_page.py: no Chromium found (looked for {', '.join(BROWSERS)})")
    with running_server(args.ckpt, "--accelerator", "cpu") as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=browser_path, args=FLAGS)
        page = browser.new_page(viewport={"width": 1200, "height": 700})
        page.goto(url)
        drop_image(page, args.image)
        page.screenshot(path=args.out, full_page=True)
        browser.close()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
