"""tools/benchmark.py serving: its requests, its in-process loop and how a row is computed."""

import io

import numpy as np
from benchmarks import serving
from PIL import Image

from segattn import Segmenter

from ..commands.test_no_data_loss import ckpt  # noqa: F401  (the fixture: a small untrained network)


def test_the_requests_are_distinct_pngs_of_the_size():
    pngs = serving.images(3, 64)
    assert len(set(pngs)) == 3 and all(Image.open(io.BytesIO(p)).size == (64, 64) for p in pngs)
    body, headers = serving.multipart(pngs[0], "x.png")  # the form each request sends
    boundary = headers["Content-Type"].split("boundary=")[1]
    assert body.startswith(f"--{boundary}\r\n".encode()) and pngs[0] in body


def test_the_loop_answers_each_request_and_a_row_reads_its_times(ckpt):  # noqa: F811
    seconds, latencies = serving.loop(Segmenter.from_checkpoint(ckpt), serving.images(4, 32))
    assert len(latencies) == 4 and sum(latencies) <= seconds
    row = serving.row("way", 8, 2.0, [0.01] * 99 + [1.0], base=25.0)
    assert row == ["way", "8", "50.0", "10", f"{1000 * np.percentile([0.01] * 99 + [1.0], 99):.0f}", "2.00×"]
    assert serving.row("loop", 1, 1.0, [0.5, 0.5], None)[-1] == "1.00×"
