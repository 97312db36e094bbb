"""Inference strategies on their own: one call, strategy(network, images), and they nest."""

import torch
import torch.nn.functional as F

from segattn.inference import FlipScaleTTA, SlidingWindow, WholeImage
from segattn.sliding import sliding_window


def local(x):
    """A per-pixel network (3 channels → 2 scores): every strategy gives exactly its output."""
    return torch.stack([x.sum(1), -x.sum(1)], dim=1)


def test_whole_image_is_the_network_in_float32():
    x = torch.randn(2, 3, 9, 11)
    scores = WholeImage()(lambda b: local(b).half(), x)
    assert scores.dtype == torch.float32 and torch.equal(scores, local(x).half().float())


def test_sliding_window_runs_each_image_of_a_batch_as_sliding_window_does():
    x = torch.randn(3, 3, 37, 50)
    strategy = SlidingWindow(16, 0.5, batch_size=5)
    scores = strategy(local, x)
    assert scores.shape == (3, 2, 37, 50) and scores.dtype == torch.float32
    for i in range(3):
        assert torch.equal(scores[i : i + 1], sliding_window(x[i : i + 1], local, 16, 0.5, 5))
    assert torch.allclose(scores, local(x), atol=1e-5)  # a per-pixel network: blending changes nothing
    bands = list(strategy.bands(local, x[:1]))
    assert torch.equal(torch.cat([band for _, band in bands], dim=2), scores[:1])


def test_a_transform_runs_on_the_windows_before_the_inner_strategy():
    raw = torch.randint(0, 256, (1, 3, 30, 20), dtype=torch.uint8)
    strategy = SlidingWindow(12, 0.25, transform=lambda w: w.float() / 255)
    assert torch.allclose(strategy(local, raw), local(raw.float() / 255), atol=1e-5)


def test_tta_averages_flips_and_scales_and_wraps_any_strategy():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 2, 3, padding=1)
    x = torch.randn(1, 3, 24, 32)
    with torch.no_grad():
        flipped = FlipScaleTTA(WholeImage())(conv, x)
        assert torch.allclose(flipped, (conv(x) + conv(x.flip(-1)).flip(-1)) / 2)
        assert FlipScaleTTA(WholeImage()).views == [(1.0, False), (1.0, True)]
        scaled = FlipScaleTTA(WholeImage(), (0.5, 1.0))(conv, x)
        half = F.interpolate(x, scale_factor=0.5, mode="bilinear", align_corners=False)

        def up(t):
            return F.interpolate(t, size=(24, 32), mode="bilinear", align_corners=False)

        expected = (up(conv(half)) + up(conv(half.flip(-1)).flip(-1)) + conv(x) + conv(x.flip(-1)).flip(-1)) / 4
        assert torch.allclose(scaled, expected, atol=1e-6)
        # TTA over the sliding window, and the sliding window over TTA: per-pixel, both the network's
        for strategy in (FlipScaleTTA(SlidingWindow(10)), SlidingWindow(10, inner=FlipScaleTTA(WholeImage()))):
            assert torch.allclose(strategy(local, x), local(x), atol=1e-5)
