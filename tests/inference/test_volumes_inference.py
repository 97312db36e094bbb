"""Segmenter on volumes (a `spatial_dims: 3` checkpoint): every input kind at its own shape, equal to
a direct forward on the normalised volume, tiling against the whole volume, mirror TTA against
manual flips, attention maps, and one-line errors for inputs of the other kind."""

import itertools

import nibabel as nib
import numpy as np
import pytest
import torch
from torch import nn

from segattn import AttentionUNet, InputError, Segmenter, checkpoint
from segattn.data.intensity import normalize_volume
from segattn.data.io import write_image
from segattn.data.transforms import eval_pipeline
from segattn.data.volume_io import image_array, read_volume
from segattn.infer import run_infer
from segattn.inference import volumes

CLASSES = ["background", "anterior", "posterior"]
PALETTE = [[0, 0, 0], [255, 0, 0], [0, 255, 0]]
SPEC = {"zscore": {"foreground": False}}
SHAPE = (20, 27, 13)


def oblique_affine():
    """An oblique, anisotropic grid: 0.7 × 1.3 × 3.0 mm voxels, rotated about two axes."""
    a, b = np.deg2rad(20), np.deg2rad(-35)
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    rz = np.array([[np.cos(b), -np.sin(b), 0], [np.sin(b), np.cos(b), 0], [0, 0, 1]])
    affine = np.eye(4)
    affine[:3, :3] = rz @ rx @ np.diag([0.7, 1.3, 3.0])
    affine[:3, 3] = [-40.0, 12.5, 7.0]
    return affine


def scan(shape=SHAPE, seed=0):
    """An MR-like int16 scan: a bright blob in noise."""
    z, y, x = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")
    noise = np.random.default_rng(seed).standard_normal(shape)
    return (1000 * np.exp(-3 * (x**2 + y**2 + z**2)) + 100 * noise).astype(np.int16)


def save_nifti(path, data, affine=None):
    image = nib.Nifti1Image(data, oblique_affine() if affine is None else affine)
    image.set_qform(image.affine, code=1)
    image.set_sform(image.affine, code=2)
    nib.save(image, path)
    return path


def tiny_net(in_channels=1, spatial_dims=3, seed=3):
    torch.manual_seed(seed)
    net = AttentionUNet(in_channels=in_channels, num_classes=3, widths=[4, 8, 16], spatial_dims=spatial_dims).eval()
    with torch.no_grad():  # clear margins between the classes: labels that rounding does not flip
        net.head.bias.zero_()
        net.head.weight.mul_(1000)
    return net


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "volume.ckpt"
    args = {"widths": [4, 8, 16], "spatial_dims": 3}
    record = checkpoint.make_record("attention_unet", args, 1, CLASSES, PALETTE, eval_transform=None, intensity=SPEC)
    checkpoint.save(path, tiny_net().state_dict(), record)
    return path


@pytest.fixture(scope="module")
def seg(ckpt):
    return Segmenter.from_checkpoint(ckpt, device="cpu")


class PerVoxel(nn.Module):
    """A per-voxel network (a 1×1×1 conv): its scores do not depend on where a window is cut."""

    spatial_dims = 3

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv3d(1, 3, 1)
        self.shapes = []

    def forward(self, x):
        self.shapes.append(tuple(x.shape[2:]))
        return self.conv(x)


def direct(net, array):
    """The network's argmax on the volume as the checkpoint's spec normalises it."""
    x = torch.from_numpy(normalize_volume(array.reshape(1, *array.shape[-3:]).astype(np.float32), SPEC))[None]
    with torch.inference_mode():
        return net(x).argmax(1)[0].numpy()


def test_every_input_kind_at_its_own_shape_equals_a_direct_forward(seg, tmp_path):
    data = scan()
    path = save_nifti(tmp_path / "case.nii.gz", data)
    expected = direct(tiny_net(), data)
    assert 0.05 < (expected == 0).mean() < 0.95  # the test network gives more than one class
    inputs = [path, str(tmp_path / "case.nii.gz"), read_volume(path), data, data[None], tmp_path, str(tmp_path / "*")]
    for labels in seg.predict(inputs):
        assert labels.shape == SHAPE and labels.dtype == np.uint8
        np.testing.assert_array_equal(labels, expected)
    # the intensity spec applies to arrays as to files: a z-scored array ignores gain and offset
    np.testing.assert_array_equal(seg.predict(data * 3.0 + 500)[0], expected)


def test_a_real_hippocampus_scan(seg, shared_data):
    path = shared_data / "hippocampus/imagesTr/hippocampus_001.nii.gz"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    volume = read_volume(path)
    (labels,) = seg.predict(path)
    assert labels.shape == volume.shape
    np.testing.assert_array_equal(labels, direct(tiny_net(), image_array(volume)))


def test_probabilities_and_tiling_equal_the_whole_volume_with_a_per_voxel_network():
    net = PerVoxel()
    seg = Segmenter(net, CLASSES, None, PALETTE, 1, "cpu", intensity=SPEC)
    data = scan()
    (whole,) = seg.predict(data, return_probs=True)
    assert whole.shape == (3, *SHAPE) and whole.dtype == np.float32
    np.testing.assert_allclose(whole.sum(0), 1, atol=1e-5)
    labels = whole.argmax(0)
    for slide in [(8, 16, 8), 9, ((8, 16, 8), 0.5)]:
        np.testing.assert_allclose(seg.predict(data, slide=slide, return_probs=True)[0], whole, atol=1e-5)
        np.testing.assert_array_equal(seg.predict(data, slide=slide, batch_size=3)[0], labels)
    seg.model.shapes.clear()
    seg.predict(data, slide=(8, 16, 8))
    assert set(seg.model.shapes) <= {(8, 16, 8)} and len(seg.model.shapes) > 1


def test_a_volume_over_the_voxel_budget_is_tiled_by_default(monkeypatch):
    seg = Segmenter(PerVoxel(), CLASSES, None, PALETTE, 1, "cpu", intensity=SPEC)
    data = scan()
    (whole,) = seg.predict(data)
    assert seg.model.shapes == [SHAPE]
    monkeypatch.setattr(volumes, "WHOLE_VOXELS", 1000)
    monkeypatch.setattr(volumes, "DEFAULT_WINDOW", (8, 8, 8))
    seg.model.shapes.clear()
    np.testing.assert_array_equal(seg.predict(data)[0], whole)
    assert set(seg.model.shapes) == {(8, 8, 8)}


def test_flip_tta_mirrors_along_the_three_axes(seg):
    data = scan()
    (probs,) = seg.predict(data, tta="flip", return_probs=True)
    net = seg.model
    x = torch.from_numpy(normalize_volume(data[None].astype(np.float32), SPEC))[None]
    views = []
    with torch.inference_mode():
        for count in range(4):
            for axes in itertools.combinations((2, 3, 4), count):
                flipped = x.flip(axes) if axes else x
                scores = net(flipped.contiguous(memory_format=torch.channels_last_3d)).softmax(1)
                views.append(scores.flip(axes) if axes else scores)
    assert len(views) == 8
    np.testing.assert_allclose(probs, torch.stack(views).mean(0)[0].numpy(), atol=1e-5)


def test_attention_maps_are_volumes_in_0_1(seg, tmp_path):
    path = save_nifti(tmp_path / "case.nii", scan())
    labels, alphas = seg.attention(path)
    np.testing.assert_array_equal(labels, seg.predict(path)[0])
    assert alphas and all(name.startswith("gate") for name in alphas)
    for alpha in alphas.values():
        assert alpha.shape == SHAPE and alpha.dtype == np.float32 and 0 <= alpha.min() <= alpha.max() <= 1


def test_inputs_of_the_other_kind_fail_with_one_line(seg, tmp_path):
    (tmp_path / "v").mkdir(), (tmp_path / "i").mkdir()
    volume = save_nifti(tmp_path / "v/case.nii.gz", scan())
    write_image(tmp_path / "i/a.png", np.zeros((8, 8, 3), np.uint8))
    image_seg = Segmenter(AttentionUNet(widths=(4, 8)), CLASSES, eval_pipeline("imagenet", 3), PALETTE, 3, "cpu")
    for run, named in [
        (lambda: image_seg.predict(volume), f"{volume}: the checkpoint's network is 2-D and takes images"),
        (lambda: image_seg.predict(read_volume(volume)), "network is 2-D and takes images"),
        (lambda: run_infer(image_seg, volume, tmp_path / "o", overlay_images=True, workers=0), "takes images"),
        (lambda: seg.predict(tmp_path / "i/a.png"), "a.png: the checkpoint's network is 3-D and takes volumes"),
        (lambda: seg.predict(np.zeros((8, 8))), r"expected a volume D×H×W .* float64 \(8, 8\)"),
        (lambda: seg.predict(np.zeros((2, 4, 4, 4))), "C = 1"),
        (lambda: seg.predict(scan(), tta="flip+scales"), "a volume takes tta='flip'"),
        (lambda: seg.predict(scan(), slide=(4, 0, 4)), "slide: expected a positive window side"),
    ]:
        with pytest.raises(InputError, match=named) as caught:
            run()
        assert "\n" not in str(caught.value)
    write_image(tmp_path / "v/a.png", np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(InputError, match=r"holds both images \(a.png, ...\) and volumes \(case.nii.gz, ...\)"):
        seg.predict(tmp_path / "v")
    (result,) = seg.predict_iter([tmp_path / "i/a.png"], skip_errors=True)
    assert isinstance(result, InputError)
