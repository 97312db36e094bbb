"""2.5-D data: slice stacks against a plain numpy construction, re-stacking, training slices cut
where their patch was drawn, and the data module's 2.5-D settings."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from segattn.data.patches import VolumePatches
from segattn.data.slices import SlicePatches, check_slices, restack, slice_patch_size, slice_stacks
from segattn.errors import InputError

from .test_patches import Volumes
from .test_volume_datamodule import datamodule, volume_root  # noqa: F401 (a fixture)


def numpy_stacks(volumes: np.ndarray, axis: int, n: int) -> np.ndarray:
    """N×S×((2n+1)·C)×A×B by hand: for each slice s, slices s-n … s+n (zeros outside), each C channels."""
    moved = np.moveaxis(volumes, 2 + axis, 2)  # N×C×S×A×B
    count = moved.shape[2]
    out = []
    for s in range(count):
        parts = [moved[:, :, s + k] if 0 <= s + k < count else np.zeros_like(moved[:, :, 0]) for k in range(-n, n + 1)]
        out.append(np.concatenate(parts, axis=1))
    return np.stack(out, axis=1)


@pytest.mark.parametrize("axis", [0, 1, 2])
@pytest.mark.parametrize("neighbours", [0, 1, 2])
def test_slice_stacks_equal_numpy_and_restack_inverts_them(axis, neighbours):
    volumes = np.random.default_rng(axis).standard_normal((2, 2, 5, 6, 7)).astype(np.float32)
    spec = {"axis": axis, "neighbours": neighbours}
    expected = numpy_stacks(volumes, axis, neighbours)
    stacks = slice_stacks(torch.from_numpy(volumes), spec)
    np.testing.assert_array_equal(stacks.numpy(), expected)
    for start, stop in [(0, 1), (1, 3), (volumes.shape[2 + axis] - 2, volumes.shape[2 + axis])]:
        np.testing.assert_array_equal(
            slice_stacks(torch.from_numpy(volumes), spec, start, stop), expected[:, start:stop]
        )
    centre = stacks[:, :, 2 * neighbours : 2 * neighbours + 2]  # each slice's own two channels
    assert torch.equal(restack(centre, spec), torch.from_numpy(volumes))


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_training_slices_are_cut_where_their_patch_was_drawn(axis):
    shape = (9, 10, 11)
    image = np.random.default_rng(1).standard_normal((2, *shape)).astype(np.float32)
    mask = np.zeros(shape, np.int64)
    edge = [4, 5, 5]
    edge[axis] = 0  # the only labelled voxel lies on the first slice: its lower neighbour is outside
    mask[tuple(edge)] = 1
    spec = {"axis": axis, "neighbours": 1}
    size, context = slice_patch_size([6, 7], spec)
    patches = VolumePatches(Volumes([(image, mask)]), size, foreground=0.5, seed=3, context=context)
    slices = SlicePatches(patches, spec)
    stacks = numpy_stacks(image[None], axis, 1)[0]  # S×6×…
    seen = set()
    for epoch in range(12):
        item, start = slices[(epoch, 0)], patches[(epoch, 0)]["start"]
        s = start[axis] + 1  # the drawn slice: the patch starts one neighbour before it
        a, b = [(start[i], start[i] + size[i]) for i in range(3) if i != axis]
        assert item["image"].shape == (6, 6, 7) and item["mask"].shape == (6, 7)
        np.testing.assert_array_equal(item["image"].numpy(), stacks[s, :, a[0] : a[1], b[0] : b[1]])
        np.testing.assert_array_equal(item["mask"].numpy(), np.take(mask, s, axis)[a[0] : a[1], b[0] : b[1]])
        seen.add(s)
        if s == 0:
            assert not item["image"][:2].any()  # the neighbour below the first slice: zeros
    assert 0 in seen and len(seen) > 3  # the labelled slice, oversampled, and others


def test_the_data_module_feeds_slices_and_counts_their_channels(volume_root):  # noqa: F811
    dm = datamodule(volume_root, patch_size=[8, 8], slices={"axis": 2, "neighbours": 2})
    assert dm.in_channels == 5 and dm.slices == {"axis": 2, "neighbours": 2}
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (3, 5, 8, 8) and batch["mask"].shape == (3, 8, 8)
    whole = next(iter(dm.val_dataloader()))
    assert whole["image"].ndim == 5  # evaluation: whole volumes, run slice by slice by the task


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"slices": {"axis": 3}}, "data.slices.axis: expected 0, 1 or 2 (the volume's D, H or W axis), got 3"),
        ({"slices": {"axis": 0, "neighbours": -1}}, "data.slices.neighbours: expected 0 or more slices on each side"),
        ({"slices": {"neighbours": 1}}, "data.slices: expected {axis: 0, 1 or 2, neighbours: n ≥ 0}"),
        ({"slices": {"axis": 0, "depth": 3}}, "data.slices: expected {axis: 0, 1 or 2, neighbours: n ≥ 0}"),
        ({"slices": {"axis": 0}, "patch_size": [8, 8, 8]}, "data.patch_size: expected two integers ≥ 1 (the slice's"),
        ({"slices": {"axis": 0}, "augment_3d": "nnunet"}, "data.augment_3d 'nnunet': its rotations and scaling act"),
    ],
)
def test_slice_settings_are_checked(volume_root, kwargs, message):  # noqa: F811
    kwargs = {"patch_size": [8, 8], **kwargs}
    with pytest.raises(InputError, match=re.escape(message)):
        datamodule(volume_root, **kwargs)


def test_check_slices_fills_the_default():
    assert check_slices({"axis": 1}) == {"axis": 1, "neighbours": 0}
