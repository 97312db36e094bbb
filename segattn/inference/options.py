"""`Segmenter.predict`'s options checked and put in the form the Segmenter runs: TTA views and
the sliding window's (window, overlap, blending)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

from segattn.errors import InputError, check_choice
from segattn.sliding import Blending

TtaMode = Literal["flip", "flip+scales"]
Tta = TtaMode | None
DEFAULT_SCALES = (0.75, 1.0, 1.25)
DEFAULT_OVERLAP = 0.25


def sliding_options(
    slide: int | tuple[int, float] | None, blending: Blending | None
) -> tuple[int, float, Blending] | None:
    """(window, overlap, blending) from `predict`'s slide and blending, checked; None: whole images."""
    if slide is None:
        if blending is not None:
            raise InputError(f"blending {blending!r} applies to sliding-window inference only; give slide=WINDOW")
        return None
    check_choice("blending", blending, Blending, optional=True)
    if isinstance(slide, int) and not isinstance(slide, bool):
        slide = (slide, DEFAULT_OVERLAP)
    if not isinstance(slide, (tuple, list)) or len(slide) != 2:
        raise InputError(f"slide: expected a window side or (window, overlap), got {slide!r}")
    window, overlap = slide
    if not isinstance(window, int) or window < 1:
        raise InputError(f"slide: expected a positive window side, got {window!r}")
    if not 0 <= overlap < 1:
        raise InputError(f"slide: expected an overlap share in [0, 1), got {overlap!r}")
    return window, float(overlap), blending or "gaussian"


def tta_views(tta: Tta, scales: Sequence[float]) -> list[tuple[float, bool]]:
    """(scale, horizontal flip) pairs: the views whose probabilities are averaged."""
    check_choice("tta", tta, TtaMode, optional=True)
    if tta is None:
        return [(1.0, False)]
    if tta == "flip":
        return [(1.0, False), (1.0, True)]
    if not scales or not all(isinstance(s, (int, float)) and math.isfinite(s) and s > 0 for s in scales):
        raise InputError(f"scales: expected positive finite factors, got {list(scales)}")
    return [(float(s), flip) for s in scales for flip in (False, True)]


def check_scales(sample: dict[str, Any], views: list[tuple[float, bool]], slide: tuple | None) -> None:
    """A TTA scale that shrinks the image (or window) below one pixel is an InputError naming it."""
    smallest = min(scale for scale, _ in views)
    size = sample["size"] if "normalize" in sample else sample["tensor"].shape[-2:]  # as decoded, or transformed
    side = min(size) if slide is None else min(*size, slide[0])
    if side * smallest < 1:
        raise InputError(
            f"{sample['name']}: scale {smallest:g} shrinks its {side}-pixel side to nothing; "
            f"expected scales ≥ {1 / side:.3g}"
        )
