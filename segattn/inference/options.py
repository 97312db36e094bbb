"""`Segmenter.predict`'s options checked (the TTA scales, the sliding window's (window, overlap,
blending)) and the inference strategy built from them (see strategies.py)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import torch

from segattn.errors import InputError, check_choice
from segattn.inference.strategies import FlipScaleTTA, Inferer, MirrorTTA, SlidingWindow, WholeImage
from segattn.sliding import Blending, Window

TtaMode = Literal["flip", "flip+scales"]
Tta = TtaMode | None
DEFAULT_SCALES = (0.75, 1.0, 1.25)
DEFAULT_OVERLAP = 0.25


def sliding_options(
    slide: Window | tuple[Window, float] | None, blending: Blending | None, spatial_dims: int = 2
) -> tuple[Window, float, Blending] | None:
    """(window, overlap, blending) from `predict`'s slide and blending, checked; None: whole
    images. The window is one side; for volumes (spatial_dims 3) also (d, h, w) sides."""
    if slide is None:
        if blending is not None:
            raise InputError(f"blending {blending!r} applies to sliding-window inference only; give slide=WINDOW")
        return None
    check_choice("blending", blending, Blending, optional=True)
    volume = spatial_dims == 3
    if (isinstance(slide, int) and not isinstance(slide, bool)) or (volume and is_sides(slide)):
        slide = (slide, DEFAULT_OVERLAP)
    expected = (
        "a window side, (d, h, w) sides, or (window, overlap)" if volume else "a window side or (window, overlap)"
    )
    if not isinstance(slide, (tuple, list)) or len(slide) != 2:
        raise InputError(f"slide: expected {expected}, got {slide!r}")
    window, overlap = slide
    sides = tuple(window) if volume and is_sides(window) else (window,)
    if not all(is_side(side) for side in sides):
        raise InputError(f"slide: expected a positive window side{' or 3' if volume else ''}, got {window!r}")
    if not 0 <= overlap < 1:
        raise InputError(f"slide: expected an overlap share in [0, 1), got {overlap!r}")
    return (window if len(sides) == 1 else sides), float(overlap), blending or "gaussian"


def is_side(value: object) -> bool:
    """Whether `value` is a positive int window side (not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def is_sides(value: object) -> bool:
    """Whether `value` is a (d, h, w) sequence (its sides checked later)."""
    return isinstance(value, (tuple, list)) and len(value) == 3


def tta_scales(tta: Tta, scales: Sequence[float] | None, spatial_dims: int = 2) -> tuple[float, ...] | None:
    """The input scales whose plain and flipped views `predict` averages (`FlipScaleTTA`), from
    its tta and scales, checked; None: no TTA. Volumes (spatial_dims 3) take "flip" only."""
    if scales is not None and tta != "flip+scales":
        raise InputError(f"scales {list(scales)} apply to tta='flip+scales' only; tta is {tta!r}")
    check_choice("tta", tta, TtaMode, optional=True)
    if spatial_dims == 3 and tta == "flip+scales":
        raise InputError("tta 'flip+scales' applies to images; a volume takes tta='flip' (mirroring along D, H and W)")
    if tta is None:
        return None
    if tta == "flip":
        return (1.0,)
    scales = DEFAULT_SCALES if scales is None else scales
    if not scales or not all(isinstance(s, (int, float)) and math.isfinite(s) and s > 0 for s in scales):
        raise InputError(f"scales: expected positive finite factors, got {list(scales)}")
    return tuple(float(s) for s in scales)


def check_scales(sample: dict[str, Any], smallest: float, window: int | None) -> None:
    """A TTA scale (`smallest` of them) that shrinks the image, or the sliding `window`, below one
    pixel is an InputError naming it."""
    size = sample["size"] if "normalize" in sample else sample["tensor"].shape[-2:]  # as decoded, or transformed
    side = min(size) if window is None else min(*size, window)
    if side * smallest < 1:
        raise InputError(
            f"{sample['name']}: scale {smallest:g} shrinks its {side}-pixel side to nothing; "
            f"expected scales ≥ {1 / side:.3g}"
        )


def build_strategy(
    scales: tuple[float, ...] | None,
    slide: tuple[Window, float, Blending] | None,
    batch_size: int,
    device: torch.device,
    spatial_dims: int = 2,
) -> Inferer:
    """The strategy of checked options (`tta_scales`, `sliding_options`): the whole image, or
    `FlipScaleTTA` over it at `scales`; with slide, that within each window of a `SlidingWindow`
    whose windows run `batch_size` at a time on `device` (TTA per window: a scaled view is one
    window's, so device memory stays bounded by a batch of windows). The Segmenter sets the
    window transform and the stitch device per image. The window may also be a side per spatial
    axis, (h, w) or (d, h, w): a 3-tuple makes a strategy for volumes N×C×D×H×W (`sliding_options`,
    the Segmenter's check, still gives one side, for images). spatial_dims 3: "flip" (scales (1.0,))
    is `MirrorTTA` over D, H and W (8 views)."""
    if scales is None:
        inner: Inferer = WholeImage()
    else:
        inner = FlipScaleTTA(WholeImage(), scales) if spatial_dims == 2 else MirrorTTA(WholeImage())
    if slide is None:
        return inner
    window, overlap, blending = slide
    return SlidingWindow(window, overlap, batch_size, blending, device, inner=inner)
