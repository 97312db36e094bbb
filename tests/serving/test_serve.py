"""`segattn serve` as a client meets it: a real server (LitServe, in its own processes) on a free
local port, answering concurrent clients with what `Segmenter.predict` gives, and every hostile
upload with a 4xx and one line, never a 500, while it goes on answering."""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import struct
import urllib.error
import urllib.request
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image
from serve_page import BROWSERS, FLAGS, chromium, drop_image, multipart, running_server

from segattn import Segmenter
from segattn.commands import serve
from segattn.data.io import write_image

from ..commands.test_no_data_loss import ckpt as ckpt  # the fixture: a small untrained network
from ..commands.test_no_data_loss import picture

pytest.importorskip("litserve", reason="LitServe is the optional `serve` extra")
pytestmark = pytest.mark.slow
MAX_BYTES = 2 * 2**20


def request(url: str, data: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, str, bytes]:
    """(status, content type, body) of a GET (data None) or POST, errors included."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data, headers or {}), timeout=120) as answer:
            return answer.status, answer.headers.get("content-type", ""), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("content-type", ""), error.read()


def post(url: str, file: bytes, name: str = "image.png", **fields: str) -> tuple[int, str, bytes]:
    body, headers = multipart(file, name, **fields)
    return request(f"{url}/predict", body, headers)


@pytest.fixture(scope="module")
def server(ckpt):
    """The base URL of `segattn serve` on the checkpoint, started once for the module."""
    options = ["--accelerator", "cpu", "--devices", "1", "--max-bytes", str(MAX_BYTES),
               "--max-pixels", str(4096 * 4096), "--max-batch-size", "8"]  # fmt: skip
    with running_server(ckpt, *options) as url:
        yield url


def label_map(png_file: bytes) -> np.ndarray:
    """The class indices of a palette PNG label map."""
    with Image.open(io.BytesIO(png_file)) as stored:
        assert stored.mode == "P"
        return np.array(stored)


def png(image: np.ndarray) -> bytes:
    encoded = io.BytesIO()
    Image.fromarray(image).save(encoded, format="PNG")
    return encoded.getvalue()


def test_health_info_and_the_page(server):
    assert request(f"{server}/health")[:3:2] == (200, b"ok")
    status, kind, body = request(f"{server}/info")
    model = json.loads(body)["model"]
    assert status == 200 and model["classes"] == ["bg", "fg"] and model["palette"] == [[0, 0, 0], [255, 0, 0]]
    assert model["model"] == "attention_unet" and model["in_channels"] == 3 and model["volumes"] is False
    status, kind, body = request(f"{server}/")
    assert status == 200 and kind.startswith("text/html") and b'id="drop"' in body


def test_32_concurrent_clients_each_get_what_segmenter_predict_gives(server, ckpt, tmp_path):
    paths = []
    for i in range(32):  # sizes vary, so the server's batches mix sizes
        paths.append(tmp_path / f"{i:02d}.png")
        write_image(paths[-1], picture(48 + 8 * (i % 3), 64, seed=i))
    with ThreadPoolExecutor(32) as clients:
        answers = list(clients.map(lambda p: post(server, p.read_bytes(), p.name), paths))
    seg = Segmenter.from_checkpoint(ckpt)
    for path, (status, kind, body) in zip(paths, answers, strict=True):
        assert status == 200 and kind == "image/png", body[:300]
        np.testing.assert_array_equal(label_map(body), seg.predict(path)[0])


def test_json_gives_areas_the_label_map_and_each_gates_alpha(server, ckpt):
    image = picture(40, 56, seed=3)
    status, kind, body = post(server, png(image), "photo.png", format="json", attention="true")
    assert status == 200 and kind == "application/json", body[:300]
    answer = json.loads(body)
    labels, alphas = Segmenter.from_checkpoint(ckpt).attention(image)
    assert (answer["name"], answer["height"], answer["width"]) == ("photo.png", 40, 56)
    assert answer["areas"] == {"bg": int((labels == 0).sum()), "fg": int((labels == 1).sum())}
    decoded = label_map(data_url_bytes(answer["label_map"]))
    np.testing.assert_array_equal(decoded, labels)
    assert list(answer["attention"]) == list(alphas)
    for gate, alpha in alphas.items():
        served = np.array(Image.open(io.BytesIO(data_url_bytes(answer["attention"][gate]))))
        assert np.abs(served.astype(int) - np.round(alpha * 255)).max() <= 1


def data_url_bytes(url: str) -> bytes:
    assert url.startswith("data:image/png;base64,")
    return base64.b64decode(url.split(",", 1)[1])


def bomb_png(side: int = 20_000) -> bytes:
    """A valid 1-bit PNG of side × side pixels (400 megapixels at 20 000) in about 50 kB."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    compressor, row = zlib.compressobj(9), bytes(1 + (side + 7) // 8)
    pixels = b"".join(compressor.compress(row * 1000) for _ in range(side // 1000)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


HOSTILE = {
    "truncated PNG": (lambda good: good[: len(good) // 2], "image.png", {}, 400, "cannot decode"),
    "zero bytes": (lambda good: b"", "image.png", {}, 400, "the upload is empty (0 bytes)"),
    "20k×20k PNG": (lambda good: bomb_png(), "bomb.png", {}, 413, "20000×20000 = 400000000 pixels"),
    "text renamed .png": (lambda good: b"hello, not an image\n" * 50, "notes.png", {}, 415, "notes.png: not a PNG"),
    "unknown format": (lambda good: good, "image.png", {"format": "bmp"}, 400, "format 'bmp': expected one of png"),
    "attention as PNG": (lambda good: good, "image.png", {"attention": "true"}, 400, "attention maps come in JSON"),
    "over max-bytes": (lambda good: os.urandom(MAX_BYTES + 1), "big.png", {}, 413, "this server takes at most"),
}


@pytest.mark.parametrize("case", HOSTILE)
def test_a_hostile_upload_gets_a_4xx_with_one_line_and_the_server_goes_on(server, case):
    good = png(picture(32, 32))
    make, name, fields, status, reason = HOSTILE[case]
    answer = post(server, make(good), name, **fields)
    assert answer[0] == status and answer[1] == "application/json", answer[2][:300]
    detail = json.loads(answer[2])["detail"]
    assert reason in detail and "\n" not in detail and "Traceback" not in detail
    assert post(server, good)[0] == 200  # and the next request is answered


@pytest.mark.parametrize(
    ("headers", "body", "status", "reason"),
    [
        (
            {"Content-Type": "application/json"},
            b'{"image": "x"}',
            415,
            "content type application/json: expected multipart",
        ),
        ({"Content-Type": "image/png"}, b"\x89PNG", 415, "content type image/png: expected multipart/form-data"),
        ({}, b"image=1", 415, "expected multipart/form-data"),
        ({"Content-Type": "multipart/form-data; boundary=x"}, b"--x\r\ngarbage", 400, ""),
    ],
)
def test_a_request_that_is_not_a_form_gets_a_4xx(server, headers, body, status, reason):
    code, _, answer = request(f"{server}/predict", body, headers)
    assert code == status and reason in json.loads(answer)["detail"], answer[:300]
    assert post(server, png(picture(32, 32)))[0] == 200


def test_a_form_without_the_image_field_is_named(server):
    body, headers = multipart(b"", "x.png")
    body = body.replace(b'name="image"', b'name="picture"')
    code, _, answer = request(f"{server}/predict", body, headers)
    assert code == 400 and json.loads(answer)["detail"].startswith("expected a multipart file field `image`")


def test_the_service_binds_to_this_machine_only_by_default():
    parser = argparse.ArgumentParser()
    serve.add_parser(parser.add_subparsers())
    assert parser.parse_args(["serve", "--ckpt", "model.ckpt"]).host == "127.0.0.1"


def test_the_page_shows_a_dropped_image_segmented_in_chromium(server, ckpt, tmp_path):
    """The page at / in a real headless Chromium: an image dropped on it comes back as the overlay
    of Segmenter.predict's label map, pixel for pixel, with a panel per gate and the class areas."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright drives the browser (the dev extra)")
    browser_path = chromium()
    if browser_path is None:
        pytest.skip(f"no Chromium installed (looked for {', '.join(BROWSERS)}); Debian: apt-get install chromium")
    image = picture(48, 64, seed=7)
    write_image(tmp_path / "photo.png", image)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=browser_path, args=FLAGS)
        page = browser.new_page()
        page.goto(server)
        page.wait_for_function("document.getElementById('model').textContent.includes('attention_unet')")
        drop_image(page, tmp_path / "photo.png")
        assert page.text_content("#status") == "photo.png: 64×48, done"
        shown = page.evaluate(
            "Array.from(document.getElementById('overlay').getContext('2d').getImageData(0, 0, 64, 48).data)"
        )
        gates = page.evaluate("Array.from(document.querySelectorAll('canvas[id^=alpha-]'), c => c.id)")
        rows = page.evaluate("Array.from(document.querySelectorAll('#areas tbody tr'), r => r.innerText)")
        browser.close()
    seg = Segmenter.from_checkpoint(ckpt)
    labels, alphas = seg.attention(image)
    colour = np.array(seg.palette)[labels]
    expected = np.where(labels[..., None] == 0, image, np.round((image.astype(int) + colour) / 2)).astype(np.uint8)
    np.testing.assert_array_equal(np.array(shown, np.uint8).reshape(48, 64, 4)[..., :3], expected)
    assert gates == [f"alpha-{gate}" for gate in alphas]
    assert [row.split()[0] for row in rows] == ["bg", "fg"] and str(int((labels == 1).sum())) in rows[1]
