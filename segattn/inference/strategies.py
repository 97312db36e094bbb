"""Inference strategies: how a network is run over images, as interchangeable objects (after
MONAI's `Inferer` classes over its `sliding_window_inference`; MONAI is not a segattn dependency).

Every strategy is called the same way, `strategy(network, images)`:

- network: float N×C×h×w on the device → N×K×h×w scores of a float dtype (logits, or softmax
  probabilities: a strategy averages whatever the network gives, so a caller that averages
  views or windows passes a network that ends in a softmax); `WholeImage` makes them float32;
- images: N×C×H×W as the network (or, for `SlidingWindow`, its `transform`) takes them;
- result: float32 N×K×H×W scores, on the images' device (`SlidingWindow`: on its
  `output_device`).

`WholeImage` runs the network once; `SlidingWindow` runs an inner strategy on overlapping
windows and blends them (the stitching itself is `segattn.sliding`); `FlipScaleTTA`
averages an inner strategy over flips and scales. Strategies nest: the Segmenter runs
TTA within each window, `SlidingWindow(..., inner=FlipScaleTTA(WholeImage(), scales))`,
so that a scaled view is one window's, not the whole image's. A new strategy (3-D windows, say)
is one more class with this `__call__`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from segattn.sliding import Blending, sliding_bands, sliding_window

Network = Callable[[Tensor], Tensor]


class Inferer(ABC):
    """A way to run a network over images: `inferer(network, images)` → scores (see the module
    docstring for the shapes, dtypes and devices)."""

    @abstractmethod
    def __call__(self, network: Network, images: Tensor) -> Tensor:
        """float32 N×K×H×W scores of `images` (N×C×H×W)."""


@dataclass(frozen=True)
class WholeImage(Inferer):
    """The network once on the whole batch: float32 N×K×H×W, network(images) as it is."""

    def __call__(self, network: Network, images: Tensor) -> Tensor:
        return network(images).float()


@dataclass(frozen=True)
class FlipScaleTTA(Inferer):
    """The mean of `inner`'s scores over views: at each of `scales` (bilinear resize of the
    input by that factor), the input as it is and flipped left to right; each view's scores are
    flipped back and resized (bilinear) to the input's H×W before they are averaged. Views run in
    order (scale by scale, unflipped first), one at a time: memory is one view's.

    scales: positive factors; (1.0,) is a flip alone. A network that ends in a softmax gives
    averaged probabilities, the usual TTA."""

    inner: Inferer = field(default_factory=WholeImage)
    scales: Sequence[float] = (1.0,)

    @property
    def views(self) -> list[tuple[float, bool]]:
        """(scale, horizontal flip) per view, in the order they run."""
        return [(float(scale), flip) for scale in self.scales for flip in (False, True)]

    def __call__(self, network: Network, images: Tensor) -> Tensor:
        height, width = images.shape[-2:]
        total = None
        for scale, flip in self.views:
            x = images
            if scale != 1.0:
                x = F.interpolate(images, scale_factor=scale, mode="bilinear", align_corners=False)
            x = x.flip(-1) if flip else x
            scores = self.inner(network, x)
            scores = scores.flip(-1) if flip else scores
            if scores.shape[-2:] != (height, width):
                scores = F.interpolate(scores, size=(height, width), mode="bilinear", align_corners=False)
            total = scores if total is None else total + scores
        return total / len(self.views)


@dataclass(frozen=True)
class SlidingWindow(Inferer):
    """`inner` on overlapping windows of each image, blended into the image's scores:
    `segattn.sliding.sliding_window` (and `sliding_bands`, band by band) with every knob here.

    window: window side, or (h, w); one larger than the image shrinks to it.
    overlap: share of a window that overlaps its neighbour, in [0, 1).
    batch_size: windows run at a time (on `device`); device memory is one such batch.
    blending: "gaussian" (σ = window/8) or "constant" weights.
    device: where windows run; they are cut where the image lies and copied there.
    output_device: where the scores are summed and returned.
    transform: windows B×C×h×w on `device`, as cut from the image (raw integers, say) → the
        float32 input of `inner`; None: the windows as they are.
    inner: the strategy run on each batch of windows (`WholeImage`, or a `FlipScaleTTA`).

    `__call__(network, images)`: images N×C×H×W of any dtype that `transform` takes → float32
    N×K×H×W on `output_device`, one image at a time. `bands(network, image)`: one image's
    scores a band of rows at a time (see `sliding_bands`), for callers that reduce each band.
    """

    window: int | tuple[int, int]
    overlap: float = 0.25
    batch_size: int = 4
    blending: Blending = "gaussian"
    device: torch.device | str = "cpu"
    output_device: torch.device | str = "cpu"
    transform: Callable[[Tensor], Tensor] | None = None
    inner: Inferer = field(default_factory=WholeImage)

    def __call__(self, network: Network, images: Tensor) -> Tensor:
        scores = [sliding_window(images[i : i + 1], self.predictor(network), *self.knobs) for i in range(len(images))]
        return scores[0] if len(scores) == 1 else torch.cat(scores)

    def bands(self, network: Network, image: Tensor) -> Iterator[tuple[int, Tensor]]:
        """(top, float32 1×K×b×W on `output_device`) for one image 1×C×H×W: rows top : top + b
        of its scores, top to bottom, each band once it is final."""
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
