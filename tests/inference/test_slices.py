"""2.5-D inference: SliceBySlice against a loop over slices, and a 2.5-D checkpoint through the
Segmenter (predict, attention, infer) against a direct forward of its 2-D network on each slice."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch
from torch import nn

from segattn import AttentionUNet, InputError, Segmenter, checkpoint
from segattn.data.intensity import normalize_volume
from segattn.data.io import write_image
from segattn.data.slices import slice_stacks
from segattn.infer import run_infer
from segattn.inference.slices import SliceBySlice
from segattn.inference.strategies import FlipScaleTTA

from .test_volumes_inference import CLASSES, PALETTE, SPEC, oblique_affine, save_nifti, scan, tiny_net

SLICES = {"axis": 1, "neighbours": 1}


@pytest.mark.parametrize("axis", [0, 1, 2])
@pytest.mark.parametrize("batch_size", [1, 4, 100])
def test_slice_by_slice_equals_a_loop_over_slices(axis, batch_size):
    torch.manual_seed(0)
    net = nn.Conv2d(6, 3, 3, padding=1)
    volumes = torch.randn(2, 2, 5, 6, 7)
    spec = {"axis": axis, "neighbours": 1}
    with torch.no_grad():
        scores = SliceBySlice(spec, batch_size)(net, volumes)
        stacks = slice_stacks(volumes, spec)
        expected = torch.stack([net(stacks[:, s]) for s in range(stacks.shape[1])], dim=2)  # N×K×S×A×B
    assert scores.shape == (2, 3, 5, 6, 7) and scores.dtype == torch.float32
    torch.testing.assert_close(scores, expected.movedim(2, 2 + axis))
    with torch.no_grad():  # a 2-D strategy inside: flip TTA per slice
        flipped = SliceBySlice(spec, batch_size, FlipScaleTTA())(net, volumes)
        mirrored = torch.stack([net(stacks[:, s].flip(-1)).flip(-1) for s in range(stacks.shape[1])], dim=2)
    torch.testing.assert_close(flipped, ((expected + mirrored) / 2).movedim(2, 2 + axis))


def slice_net() -> AttentionUNet:
    """A 2-D network on 3-slice stacks, clear class margins (see tiny_net)."""
    return tiny_net(in_channels=3, spatial_dims=2, seed=5)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "slices.ckpt"
    record = checkpoint.make_record(
        "attention_unet", {"widths": [4, 8, 16]}, 3, CLASSES, PALETTE, None, intensity=SPEC, slices=SLICES
    )
    checkpoint.save(path, slice_net().state_dict(), record)
    return path


def direct_labels(data: np.ndarray) -> np.ndarray:
    """The 2-D network on each slice stack (axis 1, one neighbour each side) of the normalised scan."""
    volume = torch.from_numpy(normalize_volume(data[None].astype(np.float32), SPEC))[None]
    stacks = slice_stacks(volume, SLICES)[0]  # S×3×D×W
    with torch.no_grad():
        logits = slice_net()(stacks)  # S×K×D×W
    return logits.argmax(1).movedim(0, 1).numpy()  # D×S×W


def test_a_slice_checkpoint_predicts_volumes_slice_by_slice(ckpt, tmp_path):
    data = scan((9, 14, 11))
    path = save_nifti(tmp_path / "case.nii.gz", data)
    seg = Segmenter.from_checkpoint(ckpt, device="cpu")
    assert seg.volumes and seg.slices == SLICES
    labels = seg.predict(path)[0]
    expected = direct_labels(data)
    assert labels.shape == data.shape and labels.dtype == np.uint8
    assert len(np.unique(expected)) > 1 and np.array_equal(labels, expected)
    assert np.array_equal(seg.predict(data, batch_size=3)[0], expected)  # an array; batches of slices
    mask, alphas = seg.attention(path)
    assert np.array_equal(mask, expected)
    assert list(alphas) and all(a.shape == data.shape and 0 <= a.min() <= a.max() <= 1 for a in alphas.values())
    written = run_infer(seg, [path], tmp_path / "out")
    assert written.written == 1
    image = nib.load(tmp_path / "out" / "case.nii.gz")
    assert np.array_equal(np.asarray(image.dataobj), expected)
    np.testing.assert_allclose(image.affine, oblique_affine(), atol=1e-5)


def test_a_slice_checkpoint_refuses_images(ckpt, tmp_path):
    png = tmp_path / "image.png"
    write_image(png, np.zeros((16, 16, 3), np.uint8))
    with pytest.raises(InputError, match="takes volumes"):
        Segmenter.from_checkpoint(ckpt, device="cpu").predict(png)
