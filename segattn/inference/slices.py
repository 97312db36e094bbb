"""2.5-D inference: a 2-D network run over a volume's slices and re-stacked into the volume's grid.

A volume N×C×D×H×W is cut into stacks of slices along the spec's axis (`segattn.data.slices`:
the same cut as training's, so the channel order is the one the network learnt), `batch_size`
stacks at a time; each batch goes through a 2-D strategy (whole slice, flip TTA, sliding window
over a large slice) and the per-slice scores are placed back into an N×K×D×H×W volume. Only the
result and one batch of stacks are held at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from segattn.data.slices import SliceSpec, restack, slice_stacks
from segattn.inference.strategies import Inferer, Network, WholeImage

AttentionNetwork = Callable[[Tensor], tuple[Tensor, dict[str, Tensor]]]


def slice_batches(images: Tensor, spec: SliceSpec, batch_size: int) -> Iterator[Tensor]:
    """N×S'×((2n+1)·C)×A×B stacks of consecutive slices of `images` (N×C×D×H×W), S' ≤
    batch_size / N (at least 1), first slice first, until every slice is covered."""
    count = images.shape[2 + spec["axis"]]
    step = max(1, batch_size // len(images))
    for start in range(0, count, step):
        yield slice_stacks(images, spec, start, min(start + step, count))


@dataclass(frozen=True)
class SliceBySlice(Inferer):
    """`inner` on the slices of volumes along spec's axis: images N×C×D×H×W → float32 N×K×D×H×W
    scores, on `inner`'s output device. `inner` is a 2-D strategy and sees batches of at most
    `batch_size` stacks, ((2n+1)·C)×A×B each."""

    spec: SliceSpec
    batch_size: int = 32
    inner: Inferer = field(default_factory=WholeImage)

    def __call__(self, network: Network, images: Tensor) -> Tensor:
        out, start = None, 0
        for stacks in slice_batches(images, self.spec, self.batch_size):
            batch, count = stacks.shape[:2]
            scores = self.inner(network, stacks.flatten(0, 1)).unflatten(0, (batch, count))
            if out is None:  # N×S×K×A×B, filled as the batches come
                total = images.shape[2 + self.spec["axis"]]
                out = scores.new_empty((batch, total, *scores.shape[2:]))
            out[:, start : start + count] = scores
            start += count
        return restack(out, self.spec)


def slice_attention(
    network: AttentionNetwork, images: Tensor, spec: SliceSpec, batch_size: int
) -> tuple[Tensor, dict[str, Tensor]]:
    """(logits N×K×D×H×W, {gate: α N×1×D×H×W}) of a 2-D network returning (logits, {gate: α
    B×1×a×b}) run over the slices of `images` (N×C×D×H×W); each slice's α is resized (bilinear)
    from its gate's grid to the slice's size before the slices are stacked."""
    logits, maps = [], {}
    for stacks in slice_batches(images, spec, batch_size):
        batch, count = stacks.shape[:2]
        scores, alphas = network(stacks.flatten(0, 1))
        logits.append(scores.float().unflatten(0, (batch, count)))
        for name, alpha in alphas.items():
            alpha = F.interpolate(alpha.float(), size=stacks.shape[-2:], mode="bilinear", align_corners=False)
            maps.setdefault(name, []).append(alpha.unflatten(0, (batch, count)))
    stacked = {name: restack(torch.cat(parts, dim=1), spec) for name, parts in maps.items()}
    return restack(torch.cat(logits, dim=1), spec), stacked
