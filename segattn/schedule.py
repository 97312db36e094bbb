"""The learning-rate schedule's shape as a function of training progress: warm-up, then cosine."""

from __future__ import annotations

import math

WARMUP_START = 1e-3  # the warm-up's first lr, as a share of model.lr


def lr_factor(done: float, warmup: float, floor: float) -> float:
    """lr ÷ model.lr when a share `done` of training has passed: a linear ramp from WARMUP_START
    over the first `warmup` share, then a cosine down to `floor` at the end, and `floor` after it
    (SGDR's annealing, Loshchilov & Hutter 2017, eq. 5, without restarts). Written as one function
    of progress, not torch's LinearLR + CosineAnnealingLR, so that a schedule can follow the clock
    as well as the step count (tools/benchmarks: TimedTask)."""
    done = min(max(done, 0.0), 1.0)
    if done < warmup:
        return WARMUP_START + (1 - WARMUP_START) * done / warmup
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * (done - warmup) / (1 - warmup)))
