"""`Segmenter.attention`: one input's label map and each attention gate's α at the input's size."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from segattn.data.geometry import resamples, restore_axes
from segattn.errors import InputError
from segattn.inference.inputs import ImageInput, one_image
from segattn.inference.slices import slice_attention
from segattn.inference.strategies import linear
from segattn.models.base import returns_attention

SLICE_BATCH = 32  # a 2.5-D network: slices per forward


@torch.inference_mode()
def attention_maps(segmenter: Any, image: ImageInput) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(label map as `predict` gives it, {gate: float32 α H×W (D×H×W) in [0, 1]}) of one input
    through `segmenter` (a `Segmenter`), one forward (a 2.5-D network: over the volume's slices,
    `SLICE_BATCH` at a time); α resized from its gate's grid by bilinear (trilinear) interpolation."""
    network = getattr(segmenter.model, "_orig_mod", segmenter.model)  # under torch.compile
    if not returns_attention(network):
        raise InputError(f"attention: {type(network).__name__} has no attention maps to return")
    sample = segmenter.input_images([one_image(image)])[0]
    x = segmenter.normalized(sample["tensor"][None].to(segmenter.device))
    with segmenter.autocast():
        if segmenter.slices is None:
            x = x.contiguous(memory_format=segmenter.memory_format)
            logits, maps = segmenter.model(x, return_attention=True)
        else:
            forward = functools.partial(segmenter.model, return_attention=True)
            logits, maps = slice_attention(forward, x, segmenter.slices, SLICE_BATCH)
    size = tuple(sample["size"])
    alphas = {
        name: F.interpolate(a.float(), size=size, mode=linear(a), align_corners=False)[0, 0].cpu().numpy()
        for name, a in maps.items()
    }
    scores = logits.float().softmax(1) if resamples(segmenter.geometry) else logits.float()  # as predict's
    labels = segmenter.finish(scores, sample, return_probs=False)
    change = sample.get("change")  # a training grid's reorientation, undone
    return restore_axes(labels, change), {name: restore_axes(a, change) for name, a in alphas.items()}
