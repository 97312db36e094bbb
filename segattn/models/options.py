"""The names that AttentionUNet's string options accept, and their validation."""

from __future__ import annotations

from typing import Any, Literal, get_args

from segattn.errors import InputError

Norm = Literal["batch", "instance", "group"]
Gating = Literal["bottleneck", "coarser", "multi"]
ChannelAttention = Literal["se", "scse"]
SpatialAttention = Literal["cbam"]
BottleneckAttention = Literal["nonlocal"]
Upsample = Literal["reduce", "full"]


def check_choice(key: str, value: object, choices: Any, optional: bool = False) -> None:
    """Raises an InputError naming `key` unless `value` is one of the Literal `choices`, or None
    where `optional`."""
    allowed = list(get_args(choices))
    if (optional and value is None) or value in allowed:
        return
    expected = [*allowed, None] if optional else allowed
    raise InputError(f"{key}: unknown value {value!r}; expected one of {expected}")
