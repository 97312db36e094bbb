"""The sliding window in bounded memory (#25): strip stitching equals full accumulation."""

import numpy as np
import pytest
import torch

from segattn.sliding import blend_weights, sliding_bands, sliding_window, window_starts


def full_accumulation(image, predict, window, overlap, batch_size, blending):
    """The oracle: the sliding window as it was before #25, with K×H×W sums and an H×W weight
    plane divided at the end."""
    _, _, height, width = image.shape
    win_h, win_w = min(window, height), min(window, width)
    stride_h, stride_w = max(int(win_h * (1 - overlap)), 1), max(int(win_w * (1 - overlap)), 1)
    corners = [(y, x) for y in window_starts(height, win_h, stride_h) for x in window_starts(width, win_w, stride_w)]
    weights = blend_weights(win_h, win_w, blending, torch.device("cpu"))
    output, norm = None, torch.zeros(1, 1, height, width)
    for start in range(0, len(corners), batch_size):
        chunk = corners[start : start + batch_size]
        probs = predict(torch.cat([image[..., y : y + win_h, x : x + win_w] for y, x in chunk])).float() * weights
        if output is None:
            output = torch.zeros(1, probs.shape[1], height, width)
        for (y, x), p in zip(chunk, probs, strict=True):
            output[0, :, y : y + win_h, x : x + win_w] += p
            norm[0, :, y : y + win_h, x : x + win_w] += weights
    return output / norm


@pytest.mark.parametrize(
    ("height", "width", "window", "overlap", "batch", "blending"),
    [
        (150, 170, 48, 0.5, 3, "gaussian"),
        (97, 131, 32, 0.25, 4, "constant"),
        (64, 200, 16, 0.0, 5, "gaussian"),  # no overlap: each band is a whole window row
        (40, 300, 48, 0.75, 7, "gaussian"),  # a window taller than the image: one band
        (203, 37, 24, 0.3, 16, "gaussian"),  # a narrow image: each batch spans several window rows
    ],
)
def test_strip_stitching_equals_full_accumulation(height, width, window, overlap, batch, blending):
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 4, 3, padding=1)
    x = torch.randn(1, 3, height, width)

    def predict(windows):
        with torch.no_grad():
            return conv(windows).softmax(1)

    expected = full_accumulation(x, predict, window, overlap, batch, blending)
    assert torch.equal(sliding_window(x, predict, window, overlap, batch, blending), expected)  # same sums, same order
    bands = list(sliding_bands(x, predict, window, overlap, batch, blending))
    tops = [top for top, _ in bands]
    assert tops == sorted(tops) and tops[0] == 0 and tops[-1] + bands[-1][1].shape[2] == height
    assert all(band.shape[2] <= min(window, height) for _, band in bands)  # strips, not the whole image
    labels = np.concatenate([band[0].argmax(0).numpy() for _, band in bands])
    np.testing.assert_array_equal(labels, expected[0].argmax(0).numpy())
