"""AttentionUNet over volumes (spatial_dims=3) next to 2-D: the 2-D networks unchanged, per-axis
strides and kernels, gates that start open over D×H×W, and one-line errors for what has no 3-D
form, and the instance norm. The shape, gradient, export and attention-map contract of 3-D networks
is in test_contract."""

import pytest
import torch

from segattn import AttentionUNet, InputError, build_model
from segattn.models.base import stride_per_axis
from segattn.models.blocks import InstanceNorm
from segattn.models.gates import OPEN_GATE_BIAS

TINY = [4, 8, 16]
# nnU-Net's plan for anisotropic voxels: no downsampling across slices at first, 1×3×3 kernels there
ANISOTROPIC = {"strides": [[1, 2, 2], [2, 2, 2]], "kernel_sizes": [[1, 3, 3], [3, 3, 3], [3, 3, 3]]}


def test_a_seeded_2d_network_gives_the_outputs_it_gave_before_3d():
    """Values recorded with the 2-D-only implementation (the commit before spatial_dims): the same
    seed builds the same weights, and the same input gives the same logits and gate maps."""
    torch.manual_seed(0)
    options = {"gating": "multi", "gates_per_skip": 2, "deep_supervision": True, "gate_finest": True}
    attention = {"channel_attention": "scse", "spatial_attention": "cbam", "bottleneck_attention": "nonlocal"}
    net = AttentionUNet(3, 3, widths=TINY, **options, **attention).eval()
    x = torch.randn(1, 3, 19, 23)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.1 * torch.randn_like(p))
        logits, maps = net(x, return_attention=True)
    before = [-0.18279, -0.16465, -0.17052, -0.16023, 0.39353, 0.39655, 0.39002, 0.3876, 0.39073, 0.39104, 0.38357]
    assert logits.flatten()[::131].tolist() == pytest.approx(before, abs=2e-5)
    weights = sum(p.double().sum().item() for p in net.state_dict().values() if p.is_floating_point())
    assert weights == pytest.approx(313.9509448297322, rel=1e-9)
    means = {"gate1.0": 0.9510065, "gate1.1": 0.9422917, "gate0.0": 0.9443342, "gate0.1": 0.9505051}
    assert {k: v.double().mean().item() for k, v in maps.items()} == pytest.approx(means, abs=1e-6)
    assert net.spatial_dims == 2 and net.output_stride == 4


def test_per_axis_strides_set_the_padding_and_the_gate_grids():
    net = AttentionUNet(1, 2, widths=TINY, spatial_dims=3, gate_finest=True, **ANISOTROPIC)
    # level strides (1,1,1), (1,2,2), (2,4,4); gate0's θ steps H and W only, gate1's every axis
    assert net.output_stride == (2, 4, 4) and stride_per_axis(net) == (2, 4, 4)
    assert net.decoder.gates["gate0"].theta.stride == (1, 2, 2)
    assert net.decoder.gates["gate1"].theta.stride == (2, 2, 2)
    assert net.encoder.stages[0][0].kernel_size == (1, 3, 3) and net.decoder.blocks[0][0][0].kernel_size == (1, 3, 3)
    assert AttentionUNet(1, 2, widths=TINY, spatial_dims=3).output_stride == 4
    assert AttentionUNet(1, 2, widths=TINY, spatial_dims=3, sub_sample=4).output_stride == 8
    assert AttentionUNet(1, 2, widths=TINY, strides=[[1, 2], 2]).output_stride == (2, 4)  # 2-D too
    net.eval()
    with torch.no_grad():
        logits, maps = net(torch.randn(1, 1, 3, 9, 6), return_attention=True)
    assert logits.shape == (1, 2, 3, 9, 6)
    assert maps["gate0"].shape == (1, 1, 3, 9, 6) and maps["gate1"].shape == (1, 1, 3, 5, 3)


def test_3d_gates_start_open():
    net = AttentionUNet(1, 2, widths=TINY, spatial_dims=3, gates_per_skip=2).eval()
    with torch.no_grad():
        _, maps = net(torch.randn(1, 1, 7, 6, 5), return_attention=True)
    open_value = torch.sigmoid(torch.tensor(OPEN_GATE_BIAS))
    assert set(maps) == {"gate1.0", "gate1.1"}
    assert all(torch.allclose(a, open_value) for a in maps.values())


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"encoder": "resnet18", "widths": None}, r"encoder: 'resnet18' is a 2-D smp encoder"),
        ({"spatial_dims": 1}, "spatial_dims"),
        ({"strides": [2]}, "strides"),
        ({"strides": [[1, 2, 2], [2, 0, 2]]}, "strides"),
        ({"strides": [[1, 2], [2, 2]]}, "strides"),
        ({"kernel_sizes": [3, 3]}, "kernel_sizes"),
        ({"kernel_sizes": [3, [2, 3, 3], 3]}, "kernel_sizes"),
        ({"kernel_sizes": [3, 3, "3"]}, "kernel_sizes"),
    ],
)
def test_bad_3d_options_are_named_in_one_line(kwargs, named):
    with pytest.raises(InputError, match=named) as error:
        AttentionUNet(1, 2, **{"widths": TINY, "spatial_dims": 3, **kwargs})
    assert "\n" not in str(error.value)


def test_options_without_a_3d_form_are_named():
    with pytest.raises(InputError, match="multiscale: 2-D only"):
        build_model("attention_unet", num_classes=2, in_channels=1, widths=TINY, spatial_dims=3, multiscale={})
    with pytest.raises(InputError, match="strides: only for encoder='native'"):
        AttentionUNet(encoder="resnet18", encoder_depth=3, decoder_widths=(8, 8, 8), strides=[2, 2, 2])
    with pytest.raises(InputError, match=r"N×1×D×H×W"):
        AttentionUNet(1, 2, widths=TINY, spatial_dims=3)(torch.randn(1, 1, 16, 16))
    assert build_model("smp:Unet", num_classes=2, encoder_name="resnet18").spatial_dims == 2


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_instance_norm_is_torchs_and_keeps_channels_last(spatial_dims):
    reference = getattr(torch.nn, f"InstanceNorm{spatial_dims}d")(6, affine=True)
    with torch.no_grad():
        reference.weight.uniform_(0.5, 2)
        reference.bias.uniform_(-1, 1)
    norm = InstanceNorm(6)
    norm.load_state_dict(reference.state_dict())  # a checkpoint written with torch's layer loads
    x = torch.randn(2, 6, *[7] * spatial_dims) * 5 + 3
    torch.testing.assert_close(norm(x), reference(x))
    if spatial_dims == 3:
        layout = torch.channels_last_3d
        assert norm(x.contiguous(memory_format=layout)).is_contiguous(memory_format=layout)
