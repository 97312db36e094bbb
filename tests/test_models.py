import math

import pytest
import torch

from segattn import AttentionUNet, InputError, build_model
from segattn.models.gates import OPEN_GATE_BIAS

SMALL = (8, 16, 32, 64)


@pytest.mark.parametrize("in_channels", [1, 3])
@pytest.mark.parametrize("size", [(97, 131), (64, 64), (1, 1), (33, 8)])
def test_logits_at_input_size(in_channels, size):
    model = AttentionUNet(in_channels=in_channels, num_classes=4, widths=SMALL).eval()
    logits = model(torch.randn(2, in_channels, *size))
    assert logits.shape == (2, 4, *size)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize(
    "options",
    [
        {"gates": False},
        {"gate_finest": True},
        {"sub_sample": 1},
        {"sub_sample": 4},
        {"norm": "group"},
        {"norm": "instance"},
    ],
)
def test_options_keep_shapes(options):
    model = AttentionUNet(in_channels=3, num_classes=3, widths=SMALL, **options)
    assert model(torch.randn(2, 3, 45, 70)).shape == (2, 3, 45, 70)


def test_attention_maps_cover_each_gated_skip_and_start_open():
    model = AttentionUNet(in_channels=3, num_classes=2, widths=SMALL, gate_finest=True).eval()
    logits, maps = model(torch.randn(1, 3, 97, 131), return_attention=True)
    assert logits.shape == (1, 2, 97, 131)
    assert sorted(maps) == ["gate0", "gate1", "gate2"]
    for name, alpha in maps.items():
        level = int(name[-1])
        assert alpha.shape == (1, 1, math.ceil(97 / 2**level), math.ceil(131 / 2**level))
        assert torch.allclose(alpha, torch.full_like(alpha, torch.sigmoid(torch.tensor(OPEN_GATE_BIAS))))


def test_finest_skip_is_not_gated_by_default_and_gates_false_has_none():
    assert sorted(AttentionUNet(widths=SMALL).decoder.gates) == ["gate1", "gate2"]
    plain = AttentionUNet(widths=SMALL, gates=False)
    assert len(plain.decoder.gates) == 0
    assert plain(torch.randn(1, 3, 32, 32), return_attention=True)[1] == {}


def test_gates_learn_from_the_loss():
    torch.manual_seed(0)
    model = AttentionUNet(in_channels=3, num_classes=2, widths=SMALL)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x, target = torch.randn(2, 3, 32, 32), torch.randint(0, 2, (2, 32, 32))
    for _ in range(2):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), target).backward()
        optimizer.step()
    gate = model.decoder.gates["gate1"]
    assert gate.psi.weight.abs().sum() > 0
    assert gate.theta.weight.grad is not None and gate.theta.weight.grad.abs().sum() > 0


def test_build_model_and_smp_baseline_at_odd_size():
    model = build_model("attention_unet", num_classes=3, in_channels=1, widths=SMALL)
    assert isinstance(model, AttentionUNet) and model.in_channels == 1
    smp_unet = build_model("smp:Unet", num_classes=3, encoder_name="resnet18").eval()
    assert smp_unet(torch.randn(1, 3, 97, 131)).shape == (1, 3, 97, 131)


def test_bad_model_arguments_are_named():
    with pytest.raises(InputError, match="widht"):
        build_model("attention_unet", num_classes=2, widht=[8, 16])
    with pytest.raises(InputError, match="nonsense"):
        build_model("nonsense", num_classes=2)
    with pytest.raises(InputError, match="UNet3000"):
        build_model("smp:UNet3000", num_classes=2)
    with pytest.raises(InputError, match="sub_sample"):
        AttentionUNet(sub_sample=3)
    with pytest.raises(InputError, match=r"N×3×H×W"):
        AttentionUNet(widths=SMALL)(torch.randn(1, 1, 16, 16))
