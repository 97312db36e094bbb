"""2.5-D: a volume seen as 2-D slices along one axis, each slice with its neighbours as channels.

Spec `{"axis": a, "neighbours": n}` (`data.slices`, stored in the checkpoint): slices are cut
along voxel axis a (0, 1, 2 = D, H, W of `segattn.data.volume_io`'s D×H×W), and slice s becomes
a 2-D image of (2n + 1)·C channels: slices s − n … s + n, each with its C channels, offset-major
(channel (k + n)·C + c is channel c of slice s + k). Beyond the volume a neighbour is zeros, the
mean of a z-scored volume. Its 2-D axes are the remaining two in order (a = 0: H×W; 1: D×W;
2: D×H). Training (`SlicePatches`) and inference (`slice_stacks`) cut stacks with the same
function, so the channel order cannot drift between them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from segattn.data.base import Sample
from segattn.data.patches import VolumePatches
from segattn.errors import InputError, check_counts

SliceSpec = dict[str, int]


def check_slices(spec: Any, key: str = "data.slices") -> SliceSpec:
    """The spec with its defaults (neighbours 0) filled in; anything else is an InputError naming `key`."""
    if not isinstance(spec, dict) or "axis" not in spec or set(spec) - {"axis", "neighbours"}:
        raise InputError(f"{key}: expected {{axis: 0, 1 or 2, neighbours: n ≥ 0}}, got {spec!r}")
    axis, neighbours = spec["axis"], spec.get("neighbours", 0)
    if not isinstance(axis, int) or isinstance(axis, bool) or axis not in (0, 1, 2):
        raise InputError(f"{key}.axis: expected 0, 1 or 2 (the volume's D, H or W axis), got {axis!r}")
    if not isinstance(neighbours, int) or isinstance(neighbours, bool) or neighbours < 0:
        raise InputError(f"{key}.neighbours: expected 0 or more slices on each side, got {neighbours!r}")
    return {"axis": axis, "neighbours": neighbours}


def stack_depth(spec: SliceSpec) -> int:
    """Slices per stack, 2n + 1: a network's input channels are this times the volume's."""
    return 2 * spec["neighbours"] + 1


def slice_patch_size(patch_size: Sequence[int], spec: SliceSpec) -> tuple[list[int], list[int]]:
    """(VolumePatches' patch_size, context) for 2-D patches (h, w) of slices along spec's axis:
    one slice thick, its neighbours as context."""
    size = list(check_counts("data.patch_size", patch_size, 2, "the slice's sides, with data.slices"))
    context = [0, 0]
    size.insert(spec["axis"], 1)
    context.insert(spec["axis"], spec["neighbours"])
    return size, context


def slice_stacks(volumes: Tensor, spec: SliceSpec, start: int = 0, stop: int | None = None) -> Tensor:
    """Stacks of slices start … stop − 1 (default all) of `volumes` N×C×D×H×W (any dtype):
    N×S×((2n+1)·C)×A×B, A×B the slice's axes (see the module docstring)."""
    n = spec["neighbours"]
    x = volumes.movedim(2 + spec["axis"], 2)  # N×C×S×A×B
    stop = x.shape[2] if stop is None else stop
    x = x[:, :, max(start - n, 0) : stop + n]
    x = F.pad(x, (0, 0, 0, 0, max(n - start, 0), max(stop + n - volumes.shape[2 + spec["axis"]], 0)))
    windows = x.unfold(2, 2 * n + 1, 1)  # N×C×S×A×B×(2n+1), a view
    batch, channels, count, a, b, depth = windows.shape
    return windows.permute(0, 2, 5, 1, 3, 4).reshape(batch, count, depth * channels, a, b)


def restack(slices: Tensor, spec: SliceSpec) -> Tensor:
    """N×S×K×A×B per-slice outputs (all S slices, in order) → N×K×D×H×W in the volume's axes."""
    return slices.movedim(1, 2).movedim(2, 2 + spec["axis"])


class SlicePatches(Dataset):
    """VolumePatches as 2-D training samples: {"image": float32 ((2n+1)·C)×h×w, "mask": int64
    h×w of the middle slice (255 = ignore, padding included), "name", "spacing"}. The patches must
    be one slice thick along spec's axis with its neighbours as context (`slice_patch_size`);
    their augmentation runs on the 3-D stack before it is cut (a flip along the axis reverses the
    neighbours' order)."""

    def __init__(self, patches: VolumePatches, spec: SliceSpec) -> None:
        self.patches, self.spec = patches, spec

    def __len__(self) -> int:
        return len(self.patches)

    def __getitem__(self, key: int | tuple[int, int]) -> Sample:
        item = self.patches[key]
        n = self.spec["neighbours"]
        image = slice_stacks(item["image"][None], self.spec, n, n + 1)[0, 0]
        mask = item["mask"].select(self.spec["axis"], n)
        return {"image": image, "mask": mask.contiguous(), "name": item["name"], "spacing": item["spacing"]}
