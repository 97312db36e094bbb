"""Inference strategies: how a network is run over images or volumes, as interchangeable objects
(after MONAI's `Inferer` classes over its `sliding_window_inference`; MONAI is not a segattn
dependency).

Every strategy is called the same way, `strategy(network, images)`:

- network: float N×C×h×w (N×C×d×h×w) on the device → N×K×h×w (N×K×d×h×w) scores of a float dtype
  (logits, or softmax probabilities: a strategy averages whatever the network gives, so a caller
  that averages views or windows passes a network that ends in a softmax); `WholeImage` makes them
  float32;
- images: N×C×H×W images or N×C×D×H×W volumes as the network (or, for `SlidingWindow`, its
  `transform`) takes them;
- result: float32 N×K×H×W (N×K×D×H×W) scores, on the images' device (`SlidingWindow`: on its
  `output_device`).

`WholeImage` runs the network once; `SlidingWindow` runs an inner strategy on overlapping
windows and blends them (the stitching itself is `segattn.sliding`); `FlipScaleTTA`
averages an inner strategy over left-right flips and scales, `MirrorTTA` over the flips of every
subset of the spatial axes (nnU-Net's mirroring: 8 views of a volume). Strategies nest: the
Segmenter runs TTA within each window, `SlidingWindow(..., inner=FlipScaleTTA(WholeImage(),
scales))`, so that a scaled view is one window's, not the whole image's. A new strategy is one
more class with this `__call__`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import combinations

import torch
import torch.nn.functional as F
from torch import Tensor

from segattn.errors import InputError
from segattn.sliding import Blending, Window, sliding_bands, sliding_window

Network = Callable[[Tensor], Tensor]


class Inferer(ABC):
    """A way to run a network over images: `inferer(network, images)` → scores (see the module
    docstring for the shapes, dtypes and devices)."""

    @abstractmethod
    def __call__(self, network: Network, images: Tensor) -> Tensor:
        """float32 N×K×H×W (N×K×D×H×W) scores of `images` (N×C×H×W, N×C×D×H×W)."""


@dataclass(frozen=True)
class WholeImage(Inferer):
    """The network once on the whole batch: float32 scores, network(images) as it is."""

    def __call__(self, network: Network, images: Tensor) -> Tensor:
        return network(images).float()


@dataclass(frozen=True)
class FlipScaleTTA(Inferer):
    """The mean of `inner`'s scores over views: at each of `scales` (bilinear resize of the
    input by that factor; trilinear for volumes), the input as it is and flipped left to right
    (along W); each view's scores are flipped back and resized to the input's size before they
    are averaged. Views run in order (scale by scale, unflipped first), one at a time: memory is
    one view's.

    scales: positive factors; (1.0,) is a flip alone. A network that ends in a softmax gives
    averaged probabilities, the usual TTA."""

    inner: Inferer = field(default_factory=WholeImage)
    scales: Sequence[float] = (1.0,)

    @property
    def views(self) -> list[tuple[float, bool]]:
        """(scale, horizontal flip) per view, in the order they run."""
        return [(float(scale), flip) for scale in self.scales for flip in (False, True)]

    def __call__(self, network: Network, images: Tensor) -> Tensor:
        views = (run_view(self.inner, network, images, (-1,) if flip else (), scale) for scale, flip in self.views)
        return mean_of(views)  # a generator: one view held at a time


@dataclass(frozen=True)
class MirrorTTA(Inferer):
    """The mean of `inner`'s scores over the flips of every subset of the spatial `axes`, each
    view's scores flipped back: 2^len(axes) views, 8 for a volume's (none, D, H, W, DH, DW, HW,
    DHW), 4 for an image's. Views run in that order (`views`), one at a time: memory is one
    view's. No resizing; `FlipScaleTTA` has scales.

    axes: spatial axes to mirror, counted from 0 (nnU-Net's `mirror_axes`: (0, 1, 2) are D, H, W
        of a volume, (0, 1) H, W of an image); None: every spatial axis of the input."""

    inner: Inferer = field(default_factory=WholeImage)
    axes: Sequence[int] | None = None

    def views(self, spatial: int) -> list[tuple[int, ...]]:
        """The spatial axes each view flips, in the order they run, for inputs with `spatial` axes."""
        axes = tuple(range(spatial)) if self.axes is None else tuple(self.axes)
        if len(set(axes)) != len(axes) or not all(isinstance(a, int) and 0 <= a < spatial for a in axes):
            raise InputError(f"axes: expected distinct spatial axes in 0..{spatial - 1}, got {self.axes!r}")
        return [subset for count in range(len(axes) + 1) for subset in combinations(axes, count)]

    def __call__(self, network: Network, images: Tensor) -> Tensor:
        flips = self.views(images.ndim - 2)
        return mean_of(run_view(self.inner, network, images, tuple(2 + a for a in axes)) for axes in flips)


def run_view(inner: Inferer, network: Network, images: Tensor, dims: tuple[int, ...], scale: float = 1.0) -> Tensor:
    """`inner`'s scores of one view of `images`, resized by `scale` (linear interpolation over
    every spatial axis: bilinear, trilinear) and flipped along the tensor `dims`, brought back:
    flipped again and resized to the images' size."""
    x = images
    if scale != 1.0:
        x = F.interpolate(images, scale_factor=scale, mode=linear(images), align_corners=False)
    x = x.flip(dims) if dims else x
    scores = inner(network, x)
    scores = scores.flip(dims) if dims else scores
    if scores.shape[2:] != images.shape[2:]:
        scores = F.interpolate(scores, size=tuple(images.shape[2:]), mode=linear(images), align_corners=False)
    return scores


def linear(images: Tensor) -> str:
    """`F.interpolate`'s linear mode for N×C×… tensors with this many spatial axes (1 to 3)."""
    return ("linear", "bilinear", "trilinear")[images.ndim - 3]


def mean_of(views: Iterable[Tensor]) -> Tensor:
    """The mean of the views' scores, summed in order as they come (one view held at a time)."""
    total, count = None, 0
    for scores in views:
        total, count = (scores if total is None else total + scores), count + 1
    return total / count


@dataclass(frozen=True)
class SlidingWindow(Inferer):
    """`inner` on overlapping windows of each image, blended into the image's scores:
    `segattn.sliding.sliding_window` (and `sliding_bands`, band by band) with every knob here.

    window: window side, or one per spatial axis, (h, w) or (d, h, w); one larger than the
        image along an axis shrinks to it there.
    overlap: share of a window that overlaps its neighbour along each axis, in [0, 1).
    batch_size: windows run at a time (on `device`); device memory is one such batch.
    blending: "gaussian" (σ = window/8) or "constant" weights.
    device: where windows run; they are cut where the image lies and copied there.
    output_device: where the scores are summed and returned.
    transform: windows B×C×h×w (B×C×d×h×w) on `device`, as cut (raw integers, say) → the
        float32 input of `inner`; None: the windows as they are.
    inner: the strategy run on each batch of windows (`WholeImage`, or a `FlipScaleTTA`).

    `__call__(network, images)`: images N×C×H×W (volumes N×C×D×H×W) of any dtype that
    `transform` takes → float32 N×K×H×W (N×K×D×H×W) on `output_device`, one image at a time.
    `bands(network, image)`: one image's scores a band of rows (of slabs, for a volume) at a time
    (see `sliding_bands`), for callers that reduce each band.
    """

    window: Window
    overlap: float = 0.25
    batch_size: int = 4
    blending: Blending = "gaussian"
    device: torch.device | str = "cpu"
    output_device: torch.device | str = "cpu"
    transform: Callable[[Tensor], Tensor] | None = None
    inner: Inferer = field(default_factory=WholeImage)

    def __call__(self, network: Network, images: Tensor) -> Tensor:
        return sliding_window(images, self.predictor(network), *self.knobs)

    def bands(self, network: Network, image: Tensor) -> Iterator[tuple[int, Tensor]]:
        """(top, float32 1×K×b×W on `output_device`) for one image 1×C×H×W: rows top : top + b
        of its scores, top to bottom, each band once it is final (a volume 1×C×D×H×W: slabs
        1×K×b×H×W)."""
        return sliding_bands(image, self.predictor(network), *self.knobs)

    @property
    def knobs(self) -> tuple:
        """`sliding_window`'s arguments after `predict`."""
        return self.window, self.overlap, self.batch_size, self.blending, self.device, self.output_device

    def predictor(self, network: Network) -> Network:
        """Windows as cut → their scores: `transform`, then `inner`."""

        def predict(windows: Tensor) -> Tensor:
            return self.inner(network, windows if self.transform is None else self.transform(windows))

        return predict
