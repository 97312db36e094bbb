"""The names that AttentionUNet's string options accept (checked with errors.check_choice)."""

from __future__ import annotations

from typing import Literal

Norm = Literal["batch", "instance", "group"]
Gating = Literal["bottleneck", "coarser", "multi"]
ChannelAttention = Literal["se", "scse"]
SpatialAttention = Literal["cbam"]
BottleneckAttention = Literal["nonlocal"]
Upsample = Literal["reduce", "full", "transposed"]
Downsample = Literal["pool", "conv"]
SpatialDims = Literal[2, 3]
