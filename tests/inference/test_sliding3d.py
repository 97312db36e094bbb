"""Inference over volumes: the sliding window on N×C×D×H×W with (d, h, w) windows, and mirror TTA
over every spatial axis, against whole-volume forwards, manual flips and a numpy oracle."""

import dataclasses
import itertools

import numpy as np
import pytest
import torch

from segattn.errors import InputError
from segattn.inference import FlipScaleTTA, MirrorTTA, SlidingWindow, WholeImage
from segattn.inference.options import build_strategy
from segattn.sliding import blend_weights, sliding_bands, sliding_window, window_weights

SHAPES = [  # (volume D×H×W, window, overlap, batch of windows)
    ((13, 45, 38), (8, 32, 32), 0.25, 4),  # anisotropic window, odd sizes
    ((13, 45, 38), 16, 0.5, 3),  # a side larger than the depth shrinks to it
    ((20, 17, 30), (6, 9, 11), 0.0, 7),  # no overlap
    ((9, 33, 21), (4, 12, 8), 0.75, 16),  # a batch spans several slabs
]


def conv3d(seed=0, channels=3, classes=4):
    torch.manual_seed(seed)
    return torch.nn.Conv3d(channels, classes, 3, padding=1).eval()


def per_voxel(x):
    """A per-voxel network with integer scores: sums of them stay exact."""
    s = (x * 4).round().sum(1)
    return torch.stack([s, -s, 2 * s], dim=1)


def volume(shape, seed=0, channels=3):
    return torch.randn(1, channels, *shape, generator=torch.Generator().manual_seed(seed))


def numpy_weights(window, blending):
    """Window weights computed independently: numpy, in float64, the Gaussian's σ = side/8 per axis."""
    if blending == "constant":
        return np.ones(window)
    axes = [np.exp(-0.5 * ((np.arange(n) - (n - 1) / 2) / (n / 8)) ** 2) for n in window]
    weights = axes[0]
    for axis in axes[1:]:
        weights = np.multiply.outer(weights, axis)
    return np.maximum(weights / weights.max(), 1e-3)


def starts(size, side, overlap):
    """Window corners along one axis, computed independently: every stride and one flush with the end."""
    return sorted({*range(0, size - side + 1, max(int(side * (1 - overlap)), 1)), size - side})


def numpy_sliding(image, predict, window, overlap, blending):
    """The oracle: every window of a numpy grid of corners accumulated whole, divided at the end."""
    spatial = image.shape[2:]
    sides = [min(s, n) for s, n in zip(window, spatial, strict=True)]
    weights = numpy_weights(sides, blending)
    total, norm = 0.0, np.zeros(spatial)
    for corner in itertools.product(*map(starts, spatial, sides, [overlap] * 3)):
        box = tuple(slice(c, c + s) for c, s in zip(corner, sides, strict=True))
        pad = [(0, 0)] + [(b.start, n - b.stop) for b, n in zip(box, spatial, strict=True)]
        total = total + np.pad(predict(image[(..., *box)])[0].numpy() * weights, pad)
        norm[box] += weights
    return total / norm, sides


@pytest.mark.parametrize("blending", ["gaussian", "constant"])
def test_window_weights_match_numpy(blending):
    for window in [(8, 32, 32), (13, 7, 1), (5,), (16, 9)]:
        weights = window_weights(window, blending, torch.device("cpu"))
        assert weights.shape == window and weights.dtype == torch.float32 and weights.min() > 0
        np.testing.assert_allclose(weights.numpy(), numpy_weights(window, blending), rtol=1e-6, atol=1e-7)
    assert torch.equal(blend_weights(16, 9, blending, torch.device("cpu")), window_weights((16, 9), blending, "cpu"))


@pytest.mark.parametrize(("shape", "window", "overlap", "batch"), SHAPES)
@pytest.mark.parametrize("blending", ["gaussian", "constant"])
def test_tiling_matches_a_numpy_oracle_and_per_voxel_networks_come_back_whole(shape, window, overlap, batch, blending):
    conv, x = conv3d(), volume(shape)

    def predict(windows):
        with torch.no_grad():
            return conv(windows).softmax(1)

    slid = sliding_window(x, predict, window, overlap, batch, blending)
    expected, sides = numpy_sliding(
        x, predict, window if isinstance(window, tuple) else (window,) * 3, overlap, blending
    )
    assert slid.shape == (1, 4, *shape) and slid.dtype == torch.float32
    np.testing.assert_allclose(slid[0].numpy(), expected, rtol=1e-5, atol=1e-6)
    # a per-voxel network gives its own scores: exactly with integer scores and constant weights
    tiled = sliding_window(x, per_voxel, window, overlap, batch, blending)
    if blending == "constant":
        assert torch.equal(tiled, per_voxel(x))
    torch.testing.assert_close(tiled, per_voxel(x), rtol=1e-6, atol=1e-5)
    # every voxel covered with a positive weight: ones come back as ones, no 0/0
    ones = sliding_window(torch.zeros(1, 1, *shape), torch.ones_like, window, overlap, batch, blending)
    torch.testing.assert_close(ones, torch.ones(1, 1, *shape))
    # slabs along D: consecutive, each at most a window deep, together the volume
    bands = list(sliding_bands(x, predict, window, overlap, batch, blending))
    ends = [top + band.shape[2] for top, band in bands]
    assert [top for top, _ in bands] == [0, *ends[:-1]] and ends[-1] == shape[0]
    assert all(band.shape[2] <= sides[0] and band.shape[3:] == shape[1:] for _, band in bands)
    assert torch.equal(torch.cat([band for _, band in bands], dim=2), slid)


@pytest.mark.parametrize("blending", ["gaussian", "constant"])
def test_a_window_at_least_the_volume_is_the_whole_volume_forward(blending):
    conv, x = conv3d(1), volume((13, 45, 38), 1)
    with torch.no_grad():
        whole = conv(x)
        for window in [(13, 45, 38), (16, 64, 64), 64]:
            slid = sliding_window(x, conv, window, 0.25, 2, blending)
            if blending == "constant":
                assert torch.equal(slid, whole)
            torch.testing.assert_close(slid, whole, rtol=1e-6, atol=1e-6)


def test_a_conv_whose_receptive_field_fits_the_overlap_matches_the_whole_forward_inside_the_windows():
    """A 3×3×3 convolution sees one voxel around: a window's scores differ from the whole
    forward's on its faces cut inside the volume only, so voxels on no such face of any window over
    them get the whole forward's scores. Elsewhere Gaussian blending halves the error at least
    (near the volume's faces the 1e-3 floor evens out the weights, as constant blending does)."""
    conv, x = conv3d(2), volume((13, 45, 38), 2)
    shape, window = tuple(x.shape[2:]), (8, 16, 16)
    with torch.no_grad():
        whole = conv(x)
        slid = {b: sliding_window(x, conv, window, 0.5, 8, b) for b in ("gaussian", "constant")}
    cut = np.zeros(shape, bool)  # the faces of each window that lie inside the volume
    for corner in itertools.product(*map(starts, shape, window, [0.5] * 3)):
        box = [slice(c, c + s) for c, s in zip(corner, window, strict=True)]
        for axis, (c, s, n) in enumerate(zip(corner, window, shape, strict=True)):
            for face in [c] * (c > 0) + [c + s - 1] * (c + s < n):
                cut[(*box[:axis], slice(face, face + 1), *box[axis + 1 :])] = True
    deep = torch.from_numpy(~cut)
    assert 0.3 < deep.float().mean() < 0.7
    for probs in slid.values():
        torch.testing.assert_close(probs[..., deep], whole[..., deep], rtol=1e-5, atol=1e-5)
    gaussian, constant = ((p - whole).abs().mean().item() for p in slid.values())
    assert gaussian < 0.5 * constant


def test_the_strategy_slides_each_volume_of_a_batch_with_any_batch_of_windows():
    conv, x = conv3d(3), torch.cat([volume((13, 45, 38), 3), volume((13, 45, 38), 4)])
    with torch.no_grad():
        strategy = SlidingWindow((8, 32, 32), 0.25, batch_size=1, device="cpu", output_device=torch.device("cpu"))
        one = strategy(conv, x)
        many = dataclasses.replace(strategy, batch_size=64)(conv, x)
        assert one.shape == (2, 4, 13, 45, 38) and one.device.type == "cpu" and one.dtype == torch.float32
        torch.testing.assert_close(one, many, rtol=1e-6, atol=1e-6)  # convolutions of other batch sizes
        for i in range(2):
            assert torch.equal(one[i : i + 1], sliding_window(x[i : i + 1], conv, (8, 32, 32), 0.25, 1))
    by_one, by_many = (dataclasses.replace(strategy, batch_size=b)(per_voxel, x) for b in (1, 64))
    assert torch.equal(by_one, by_many)  # the same sums in the same order
    assert torch.equal(sliding_window(x, per_voxel, tuple(np.int64([8, 32, 32])), 0.25, 5), by_one)
    band = next(strategy.bands(per_voxel, x[:1]))[1]
    assert band.shape[2] <= 8 and band.shape[3:] == (45, 38)
    # the Segmenter's strategy building takes a window per axis
    built = build_strategy(None, ((8, 32, 32), 0.25, "gaussian"), 3, torch.device("cpu"))
    assert built == SlidingWindow((8, 32, 32), 0.25, 3, "gaussian", torch.device("cpu"))
    with pytest.raises(InputError, match="one per spatial axis"):
        SlidingWindow((8, 32))(per_voxel, x)


def symmetric_conv3d(seed=0):
    """A Conv3d whose kernels are symmetric under a flip of any axis: it commutes with each flip."""
    conv = conv3d(seed)
    with torch.no_grad():
        weight = conv.weight
        for dim in (2, 3, 4):
            weight = (weight + weight.flip(dim)) / 2
        conv.weight.copy_(weight)
    return conv


class Recording(WholeImage):
    """WholeImage that keeps every view it is given."""

    def __init__(self):
        object.__setattr__(self, "seen", [])

    def __call__(self, network, images):
        self.seen.append(images)
        return super().__call__(network, images)


def test_mirror_tta_averages_the_eight_flips_of_a_volume_each_flipped_back():
    x = volume((9, 14, 11), 5)
    flips = [(), (2,), (3,), (4,), (2, 3), (2, 4), (3, 4), (2, 3, 4)]  # none, D, H, W, DH, DW, HW, DHW
    assert MirrorTTA().views(3) == [tuple(d - 2 for d in dims) for dims in flips]
    with torch.no_grad():
        symmetric = symmetric_conv3d(6)
        torch.testing.assert_close(MirrorTTA()(symmetric, x), symmetric(x), rtol=1e-5, atol=1e-6)
        conv, inner = conv3d(7), Recording()
        scores = MirrorTTA(inner)(conv, x)
        assert len(inner.seen) == 8
        for view, dims in zip(inner.seen, flips, strict=True):
            assert torch.equal(view, x.flip(dims) if dims else x)
        expected = sum(conv(x.flip(dims)).flip(dims) if dims else conv(x) for dims in flips) / 8
        torch.testing.assert_close(scores, expected, rtol=1e-6, atol=1e-6)
        assert not torch.allclose(scores, conv(x), atol=1e-3)  # the network is not flip-equivariant
        # configured axes: H and W only, 4 views; an image's default is its 2 axes
        hw = MirrorTTA(axes=(1, 2))
        assert hw.views(3) == [(), (1,), (2,), (1, 2)]
        expected = sum(conv(x.flip(dims)).flip(dims) if dims else conv(x) for dims in [(), (3,), (4,), (3, 4)]) / 4
        torch.testing.assert_close(hw(conv, x), expected, rtol=1e-6, atol=1e-6)
        assert MirrorTTA().views(2) == [(), (0,), (1,), (0, 1)]
    for axes in [(0, 3), (1, 1), (-1,)]:
        with pytest.raises(InputError, match="axes"):
            MirrorTTA(axes=axes)(conv, x)


def test_tta_nests_with_the_sliding_window_over_volumes():
    x = volume((13, 45, 38), 8)
    plain = per_voxel(x)
    window = SlidingWindow((8, 16, 16), 0.5, batch_size=6)
    for strategy in (
        MirrorTTA(window),
        dataclasses.replace(window, inner=MirrorTTA()),
        dataclasses.replace(window, inner=FlipScaleTTA()),
    ):
        torch.testing.assert_close(strategy(per_voxel, x), plain, rtol=1e-6, atol=1e-5)
    # scales resize volumes trilinearly, flips stay left-right
    conv = conv3d(9)
    with torch.no_grad():
        small = torch.nn.functional.interpolate(x, scale_factor=0.5, mode="trilinear")
        back = torch.nn.functional.interpolate(conv(small), size=(13, 45, 38), mode="trilinear")
        back_flipped = torch.nn.functional.interpolate(conv(small.flip(4)).flip(4), size=(13, 45, 38), mode="trilinear")
        torch.testing.assert_close(FlipScaleTTA(scales=(0.5,))(conv, x), (back + back_flipped) / 2)
