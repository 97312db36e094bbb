"""nnU-Net's spatial and intensity augmentation of 3-D training patches, as Albumentations
transforms on the "volume" (D×H×W×C, float32, z-scored) and "mask3d" (D×H×W) targets.

Both are written by hand on `A.Transform3D`. Albumentations 2.0.8 has no 3-D affine (its
transforms3d module pads, crops, drops boxes out and applies CubicSymmetry), so
`RandomRotateScale3D` resamples with scipy.ndimage.affine_transform. Its GaussNoise and
RandomBrightnessContrast fail on the "volume" target (KeyError 'images'), and RandomGamma returns
NaN on the negative values of z-scored data, so `IntensityAugment3D` writes those few lines.
All random parameters come from the transforms' seeded generator (`self.random_generator`), so a
patch depends only on its (seed, epoch, index) key, as `VolumePatches` promises.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import albumentations as A
import numpy as np
from scipy.ndimage import affine_transform

from segattn.labels import IGNORE_INDEX


def rotation_matrix(angles: Sequence[float]) -> np.ndarray:
    """The 3×3 rotation by `angles` (radians) about the D, H and W axes, in that order."""
    matrix = np.eye(3)
    for axis, angle in enumerate(angles):
        i, j = [a for a in range(3) if a != axis]
        turn = np.eye(3)
        turn[i, i] = turn[j, j] = np.cos(angle)
        turn[i, j], turn[j, i] = -np.sin(angle), np.sin(angle)
        matrix = turn @ matrix
    return matrix


def resample(array: np.ndarray, matrix: np.ndarray, order: int, fill: float) -> np.ndarray:
    """`array` (D×H×W) sampled at matrix @ (o − c) + c for each output voxel o, c the centre."""
    centre = (np.asarray(array.shape, dtype=float) - 1) / 2
    offset = centre - matrix @ centre
    return affine_transform(array, matrix, offset=offset, order=order, mode="constant", cval=fill)


class RandomRotateScale3D(A.Transform3D):
    """Rotates a patch about its centre by up to ±`max_angle` degrees about each axis (with
    probability `p_rotate`) and scales it by a factor in `scale` (with probability `p_scale`),
    as nnU-Net does (0.2 each). The image is resampled trilinearly (outside: 0, the mean after a
    z-score), the labels by nearest neighbour with the same matrix (outside: 255, ignored). A
    factor s samples the input at s times the distance from the centre, as nnU-Net's scaling."""

    def __init__(
        self,
        max_angle: float = 15.0,
        scale: tuple[float, float] = (0.85, 1.25),
        p_rotate: float = 0.2,
        p_scale: float = 0.2,
        p: float = 1.0,
    ) -> None:
        super().__init__(p=p)
        self.max_angle = max_angle
        self.scale = scale
        self.p_rotate = p_rotate
        self.p_scale = p_scale

    def get_params_dependent_on_data(self, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        rng = self.random_generator
        angles = np.zeros(3)
        if rng.random() < self.p_rotate:
            angles = np.deg2rad(rng.uniform(-self.max_angle, self.max_angle, size=3))
        factor = rng.uniform(*self.scale) if rng.random() < self.p_scale else 1.0
        if not angles.any() and factor == 1.0:
            return {"matrix": None}
        return {"matrix": rotation_matrix(angles) * factor}

    def apply_to_volume(self, volume: np.ndarray, matrix: np.ndarray | None, **params: Any) -> np.ndarray:
        if matrix is None:
            return volume
        channels = [resample(volume[..., c], matrix, 1, 0.0) for c in range(volume.shape[-1])]
        return np.stack(channels, axis=-1).astype(volume.dtype, copy=False)

    def apply_to_mask3d(self, mask3d: np.ndarray, matrix: np.ndarray | None, **params: Any) -> np.ndarray:
        return mask3d if matrix is None else resample(mask3d, matrix, 0, IGNORE_INDEX)

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("max_angle", "scale", "p_rotate", "p_scale")


class IntensityAugment3D(A.Transform3D):
    """nnU-Net's intensity augmentation of a z-scored volume, each channel alike, labels untouched:
    Gaussian noise (variance up to 0.1, probability 0.1), brightness ×[0.75, 1.25] (0.15),
    contrast ×[0.75, 1.25] about the mean, range kept (0.15), and gamma [0.7, 1.5] applied on the
    volume rescaled to [0, 1], mean and standard deviation then restored (0.3)."""

    def __init__(self, p: float = 1.0) -> None:
        super().__init__(p=p)

    def get_params_dependent_on_data(self, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        rng = self.random_generator
        noise = rng.uniform(0, 0.1) ** 0.5 if rng.random() < 0.1 else 0.0
        return {
            "noise": noise,
            "noise_seed": int(rng.integers(2**31)),
            "brightness": rng.uniform(0.75, 1.25) if rng.random() < 0.15 else 1.0,
            "contrast": rng.uniform(0.75, 1.25) if rng.random() < 0.15 else 1.0,
            "gamma": (rng.uniform(0.7, 1.0) if rng.random() < 0.5 else rng.uniform(1.0, 1.5))
            if rng.random() < 0.3
            else 1.0,
        }

    def apply_to_volume(
        self,
        volume: np.ndarray,
        noise: float,
        noise_seed: int,
        brightness: float,
        contrast: float,
        gamma: float,
        **params: Any,
    ) -> np.ndarray:
        out = volume.astype(np.float32, copy=True)
        if noise:
            out += np.random.default_rng(noise_seed).normal(0, noise, size=out.shape).astype(np.float32)
        out *= brightness
        if contrast != 1.0:
            mean, low, high = out.mean(), out.min(), out.max()
            out = np.clip((out - mean) * contrast + mean, low, high)
        if gamma != 1.0:
            mean, std, low, high = out.mean(), out.std(), out.min(), out.max()
            span = max(float(high - low), 1e-7)
            out = ((out - low) / span) ** gamma * span + low
            out = (out - out.mean()) / max(float(out.std()), 1e-7) * std + mean
        return out.astype(volume.dtype, copy=False)

    def apply_to_mask3d(self, mask3d: np.ndarray, **params: Any) -> np.ndarray:
        return mask3d

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ()
