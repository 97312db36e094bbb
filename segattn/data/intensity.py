"""Intensity normalisation of volumes, per modality, by plain JSON-serialisable specs.

A spec (it can go into a checkpoint as it is) is one of
    {"zscore": {"foreground": false}}   MR: per-volume z-score over all voxels
    {"zscore": {"foreground": true}}    MR: z-score with the mean/std of the foreground (voxels > 0,
                                        or the mask given to `normalize_volume`); every voxel is
                                        shifted and scaled by them
    {"ct": {"clip": [low, high], "mean": m, "std": s}}
                                        CT, nnU-Net's rule: clip to the training set's 0.5–99.5
                                        percentiles of foreground voxels, then subtract the
                                        training set's foreground mean and divide by its std
                                        (all four from `ct_statistics`)
    {"window": [center, width]}         a fixed window, clipped and scaled to [−1, 1]
                                        (`segattn.data.transforms.Window`'s maths)
or a list of them, one per channel (a multi-modal scan: e.g. CT, then PET). Images are float32
C×D×H×W (see `segattn.data.volume_io`); a std under 1e-8 counts as 1e-8, as in nnU-Net.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from segattn.data.transforms import Window
from segattn.errors import InputError, check_flag
from segattn.labels import IGNORE_INDEX

IntensitySpec = dict[str, Any] | list[dict[str, Any]]
KINDS = ("zscore", "ct", "window")
MIN_STD = 1e-8
PERCENTILES = (0.5, 99.5)


def check_intensity(spec: IntensitySpec, channels: int | None = None, key: str = "intensity") -> list[dict[str, Any]]:
    """The spec as a list with one checked spec per channel (a single spec serves every channel);
    an invalid spec is a one-line InputError naming its key, e.g. `intensity.ct.std`."""
    specs = spec if isinstance(spec, list) else [spec] * (channels or 1)
    if channels is not None and len(specs) != channels:
        raise InputError(f"{key}: {len(specs)} specs for {channels} channel(s); give one per channel or one for all")
    for c, one in enumerate(specs):
        check_one(one, f"{key}[{c}]" if isinstance(spec, list) else key)
    return list(specs)


def check_one(spec: Any, key: str) -> None:
    if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in KINDS:
        raise InputError(f"{key}: expected one of {{'zscore': ...}}, {{'ct': ...}}, {{'window': ...}}, got {spec!r}")
    kind, value = next(iter(spec.items()))
    if kind == "zscore":
        if not isinstance(value, dict) or set(value) != {"foreground"}:
            raise InputError(f"{key}.zscore: expected {{'foreground': true or false}}, got {value!r}")
        check_flag(f"{key}.zscore.foreground", value["foreground"])
    elif kind == "window":
        pair = numbers(value, 2, f"{key}.window", "[center, width]")
        if pair[1] <= 0:
            raise InputError(f"{key}.window: width must be positive, got {pair[1]}")
    else:
        if not isinstance(value, dict) or set(value) != {"clip", "mean", "std"}:
            raise InputError(f"{key}.ct: expected the keys clip, mean, std, got {value!r}")
        low, high = numbers(value["clip"], 2, f"{key}.ct.clip", "[low, high]")
        if not low <= high:
            raise InputError(f"{key}.ct.clip: expected low ≤ high, got {value['clip']}")
        numbers([value["mean"]], 1, f"{key}.ct.mean", "a number")
        if numbers([value["std"]], 1, f"{key}.ct.std", "a number")[0] < 0:
            raise InputError(f"{key}.ct.std: must not be negative, got {value['std']}")


def numbers(value: Any, count: int, key: str, expected: str) -> list[float]:
    """`value` as `count` finite floats, else an InputError naming `key`."""
    ok = isinstance(value, (list, tuple)) and len(value) == count
    ok = ok and all(isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) for v in value)
    if not ok:
        raise InputError(f"{key}: expected {expected}, got {value!r}")
    return [float(v) for v in value]


def normalize_volume(image: np.ndarray, spec: IntensitySpec, foreground: np.ndarray | None = None) -> np.ndarray:
    """`image` (C×D×H×W) normalised channel by channel by `spec`, as float32 C×D×H×W.
    `foreground` (bool D×H×W), where given, is the region a foreground z-score measures."""
    if image.ndim != 4:
        raise InputError(f"intensity: expected a C×D×H×W image, got shape {image.shape}")
    specs = check_intensity(spec, image.shape[0])
    if foreground is not None and foreground.shape != image.shape[1:]:
        raise InputError(f"intensity: foreground is {foreground.shape}, the image is {image.shape[1:]}")
    return np.stack([normalize_channel(channel, one, foreground) for channel, one in zip(image, specs, strict=True)])


def normalize_channel(channel: np.ndarray, spec: dict[str, Any], foreground: np.ndarray | None) -> np.ndarray:
    kind, value = next(iter(spec.items()))
    channel = channel.astype(np.float32)
    if kind == "window":
        return Window(*value).apply(channel)
    if kind == "ct":
        clipped = np.clip(channel, *value["clip"])
        return ((clipped - value["mean"]) / max(value["std"], MIN_STD)).astype(np.float32)
    region = channel
    if value["foreground"]:
        inside = foreground if foreground is not None else channel > 0
        region = channel[inside] if inside.any() else channel  # no foreground: the whole volume
    values = region.astype(np.float64)
    return ((channel - values.mean()) / max(float(values.std()), MIN_STD)).astype(np.float32)


def ct_statistics(
    dataset: Any,
    channel: int = 0,
    bins: int | None = None,
    value_range: Sequence[float] = (-1024.0, 3071.0),
) -> dict[str, Any]:
    """The CT spec {"ct": {"clip": [p0.5, p99.5], "mean", "std"}} of a training set's
    foreground: the voxels of `channel` whose label is a class other than background (label ≥ 1,
    255 = ignore excluded), over every volume of `dataset` (a `VolumeDataset`: `load(i)` gives
    {"image": C×D×H×W, "mask": D×H×W}). As nnU-Net, mean and std are of the unclipped values.

    `bins=None`: exact, from every foreground voxel held in memory at once (4 bytes each);
    percentiles as nnU-Net takes them (`np.percentile`, linear between order statistics).
    `bins=n`: streaming, one volume at a time; mean and std are still exact (float64 sums), the
    percentiles come from an n-bin histogram over `value_range` (values outside count in the end
    bins), the cumulative count linearly interpolated inside a bin: within one bin width,
    (high − low) / n, of the exact inverted-CDF percentile (`method="inverted_cdf"`), which
    differs from the linear one by at most the gap between neighbouring values at that rank.
    """
    kept: list[np.ndarray] = []
    total = total_sq = count = 0.0
    edges = np.linspace(*value_range, (bins or 1) + 1)
    if bins is not None and (bins < 1 or not edges[0] < edges[-1]):
        raise InputError(f"ct_statistics: expected bins ≥ 1 and an increasing range, got {bins}, {value_range}")
    counts = np.zeros(bins or 1, np.int64)
    for index in range(len(dataset)):
        item = dataset.load(index)
        mask = item["mask"]
        values = item["image"][channel][(mask > 0) & (mask != IGNORE_INDEX)].astype(np.float64)
        total, total_sq, count = total + values.sum(), total_sq + (values**2).sum(), count + values.size
        if bins is None:
            kept.append(values.astype(np.float32))
        else:
            counts += np.histogram(np.clip(values, edges[0], edges[-1]), edges)[0]
    if count == 0:
        raise InputError("ct_statistics: the data set has no foreground voxel (label ≥ 1)")
    mean = total / count
    std = float(np.sqrt(max(total_sq / count - mean**2, 0.0)))
    if bins is None:
        clip = np.percentile(np.concatenate(kept), PERCENTILES)
    else:
        cumulative = np.concatenate([[0], np.cumsum(counts)]) / count
        clip = np.interp(np.array(PERCENTILES) / 100, cumulative, edges)
    return {"ct": {"clip": [float(clip[0]), float(clip[1])], "mean": float(mean), "std": std}}
