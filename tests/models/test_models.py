import math

import pytest
import torch
import torch.nn.functional as F
import yaml
from safetensors.torch import save_file
from segmentation_models_pytorch.encoders import get_encoder
from torch import nn

from segattn import AttentionUNet, InputError, SegmentationTask, available_models, build_model
from segattn.losses import CEDiceLoss, DeepSupervisionLoss
from segattn.models import MultiScaleAttention
from segattn.models.gates import OPEN_GATE_BIAS, AttentionGate, MultiAttentionGate

from ..conftest import REPO

SMALL = (8, 16, 32, 64)
OPEN = torch.sigmoid(torch.tensor(OPEN_GATE_BIAS)).item()

# Every option of AttentionUNet with the values under test; the rows below cover every pair of values.
FACTORS = {
    "encoder": ["native", "resnet18"],
    "gating": ["bottleneck", "coarser", "multi"],
    "gates_per_skip": [1, 2],
    "gate_finest": [False, True],
    "deep_supervision": [False, True],
    "channel_attention": [None, "se", "scse"],
    "spatial_attention": [None, "cbam"],
    "bottleneck_attention": [None, "nonlocal"],
    "norm": ["batch", "instance", "group"],
    "gates": [True, False],
    "upsample": ["reduce", "full", "transposed"],
    "decoder_convs": [1, 2],
    "in_channels": [1, 3],
    "size": [(97, 131), (45, 70)],
}


def all_pairs(factors: dict[str, list]) -> list[dict]:
    """A greedy covering array: rows (one value per factor) in which every pair of values of two
    factors occurs at least once."""
    names = list(factors)

    def pairs(row: dict) -> set[tuple]:
        keys = [name for name in names if name in row]
        return {(a, repr(row[a]), b, repr(row[b])) for i, a in enumerate(keys) for b in keys[i + 1 :]}

    uncovered = {
        (a, repr(va), b, repr(vb))
        for i, a in enumerate(names)
        for b in names[i + 1 :]
        for va in factors[a]
        for vb in factors[b]
    }
    rows = []
    while uncovered:
        a, va, b, vb = min(uncovered)
        row = {a: next(v for v in factors[a] if repr(v) == va), b: next(v for v in factors[b] if repr(v) == vb)}
        for name in names:
            if name not in row:
                row[name] = max(factors[name], key=lambda v, n=name: len(pairs({**row, n: v}) & uncovered))
        uncovered -= pairs(row)
        rows.append({name: row[name] for name in names})
    return rows


PAIRWISE = all_pairs(FACTORS)


def expected_map_shapes(options: dict, size: tuple[int, int]) -> dict[str, tuple[int, ...]]:
    """Gate name → α shape: native SMALL skips at levels 0-2, resnet18 at 1-4; the finest not gated by default."""
    if not options.get("gates", True):
        return {}
    skips = range(3) if options.get("encoder", "native") == "native" else range(1, 5)
    gated = [i for i in skips if i > skips[0] or options.get("gate_finest", False)]
    count = options.get("gates_per_skip", 1)
    names = {i: [f"gate{i}"] if count == 1 else [f"gate{i}.{j}" for j in range(count)] for i in gated}
    return {name: (2, 1, math.ceil(size[0] / 2**i), math.ceil(size[1] / 2**i)) for i in gated for name in names[i]}


def test_pairwise_rows_cover_every_pair_of_option_values():
    for a, b in [(a, b) for i, a in enumerate(FACTORS) for b in list(FACTORS)[i + 1 :]]:
        seen = {(repr(row[a]), repr(row[b])) for row in PAIRWISE}
        assert len(seen) == len(FACTORS[a]) * len(FACTORS[b]), (a, b)
    assert len(PAIRWISE) < 20


@pytest.mark.parametrize("row", PAIRWISE, ids=lambda row: "-".join(str(v) for v in row.values()))
def test_option_combinations_train_at_odd_sizes(row):
    options = {k: v for k, v in row.items() if k not in ("in_channels", "size")}
    in_channels, size = row["in_channels"], row["size"]
    torch.manual_seed(0)
    widths = {"widths": SMALL} if options["encoder"] == "native" else {"decoder_widths": (*SMALL, 64)}
    model = AttentionUNet(in_channels=in_channels, num_classes=3, **widths, **options).train()
    out = model(torch.randn(2, in_channels, *size), return_attention=True, return_deep=options["deep_supervision"])
    logits, maps = out[:2]
    assert logits.shape == (2, 3, *size) and torch.isfinite(logits).all()
    assert {k: tuple(v.shape) for k, v in maps.items()} == expected_map_shapes(options, size)
    for alpha in maps.values():
        assert torch.allclose(alpha, torch.full_like(alpha, OPEN))  # gates start open
    deep = out[2] if options["deep_supervision"] else []
    scales = 3 if options["encoder"] == "native" else 5
    assert [d.shape for d in deep] == [logits.shape] * (scales if options["deep_supervision"] else 0)
    (logits.square().mean() + sum(d.square().mean() for d in deep)).backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert missing == []


@pytest.mark.parametrize("size", [(1, 1), (33, 8)])
def test_logits_at_input_sizes_down_to_a_pixel(size):
    # odd sizes of every registered model and recipe: tests/models/test_contract.py
    model = AttentionUNet(in_channels=1, num_classes=4, widths=SMALL).eval()
    logits = model(torch.randn(2, 1, *size))
    assert logits.shape == (2, 4, *size)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize(
    "options",
    [
        {"gates": False},
        {"gate_finest": True},
        {"sub_sample": 1},
        {"sub_sample": 4, "gate_finest": True},
        {"norm": "group"},
        {"norm": "instance"},
        {"decoder_widths": (4, 8, 16)},
    ],
)
def test_options_keep_shapes(options):
    model = AttentionUNet(in_channels=3, num_classes=3, widths=SMALL, **options)
    assert model(torch.randn(2, 3, 45, 70)).shape == (2, 3, 45, 70)


def test_strided_encoder_gives_the_pooled_encoders_feature_shapes_and_trains():
    x = torch.randn(2, 3, 45, 70)
    pooled, strided = (
        AttentionUNet(widths=SMALL, gate_finest=True, downsample=d, upsample="transposed", decoder_convs=1)
        for d in ("pool", "conv")
    )
    assert not any(isinstance(m, torch.nn.MaxPool2d) for m in strided.modules())
    padded = torch.randn(2, 3, 48, 72)
    assert [f.shape for f in strided.encoder(padded)] == [f.shape for f in pooled.encoder(padded)]
    logits = strided(x)
    assert logits.shape == (2, 2, 45, 70)
    logits.square().mean().backward()
    assert all(p.grad is not None for p in strided.parameters())


def test_stride_covers_the_encoder_and_each_gates_grid():
    assert AttentionUNet(widths=SMALL).output_stride == 8
    assert AttentionUNet(widths=SMALL, sub_sample=4).output_stride == 16  # gate2: stride 4 × θ stride 4
    assert AttentionUNet(widths=SMALL, gates=False, sub_sample=4).output_stride == 8
    assert AttentionUNet(encoder="resnet18", encoder_depth=3, decoder_widths=(8, 8, 8)).output_stride == 8


def test_attention_maps_cover_each_gated_skip_and_start_open():
    model = AttentionUNet(in_channels=3, num_classes=2, widths=SMALL, gate_finest=True).eval()
    logits, maps = model(torch.randn(1, 3, 97, 131), return_attention=True)
    assert logits.shape == (1, 2, 97, 131)
    assert sorted(maps) == ["gate0", "gate1", "gate2"]
    for name, alpha in maps.items():
        level = int(name[-1])
        assert alpha.shape == (1, 1, math.ceil(97 / 2**level), math.ceil(131 / 2**level))
        assert torch.allclose(alpha, torch.full_like(alpha, OPEN))


def test_fresh_gates_pass_the_skip_through():
    # ψ = 0 with a positive bias and W = identity: a new gate (eval, fresh norm statistics) gives
    # 0.95·x up to the norm's eps; several gates per skip are fused as their mean, then norm + ReLU
    torch.manual_seed(0)
    x, g = torch.rand(2, 8, 12, 10), torch.randn(2, 16, 6, 5)  # x ≥ 0, like a skip's ReLU features
    norm = 1 / math.sqrt(1 + 1e-5)
    y, _ = AttentionGate(8, 16).eval()(x, g)
    assert torch.allclose(y, OPEN * norm * x, atol=1e-6)
    y, _ = MultiAttentionGate(3, 8, [16, 4]).eval()(x, [g, torch.randn(2, 4, 3, 3)])
    assert torch.allclose(y, OPEN * norm * norm * x, atol=1e-6)


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_a_gate_without_its_transform_gives_alpha_times_the_skip():
    torch.manual_seed(0)
    gate = AttentionGate(8, 16, transform=False)
    nn.init.normal_(gate.psi.weight)  # as if trained: α varies over the image
    x, g = torch.randn(2, 8, 12, 10), torch.randn(2, 16, 6, 5)
    y, alpha = gate(x, g)
    assert alpha.shape == (2, 1, 12, 10) and alpha.std() > 0.01
    assert torch.equal(y, alpha * x)
    w_params = 8 * 8 + 8 + 2 * 8  # W's 1×1 conv (weight, bias) and its norm's scale and shift
    assert count_params(AttentionGate(8, 16)) - count_params(gate) == w_params
    full = AttentionUNet(3, 2, widths=[8, 16, 32], gate_finest=True)
    light = AttentionUNet(3, 2, widths=[8, 16, 32], gate_finest=True, gate_transform=False)
    assert count_params(full) - count_params(light) == sum(c * c + c + 2 * c for c in (8, 16))
    assert light(torch.randn(1, 3, 30, 22)).shape == (1, 2, 30, 22)


def test_several_gates_per_skip_are_named_and_trained_maps_stay_in_unit_range():
    torch.manual_seed(0)
    model = AttentionUNet(widths=SMALL, gates_per_skip=2, gating="multi")
    with torch.no_grad():
        for gate in model.decoder.gates.values():
            for single in gate.gates:
                single.psi.weight.normal_(0, 10)  # a trained-looking gate: α spans (0, 1)
    _, maps = model.eval()(torch.randn(2, 3, 45, 70), return_attention=True)
    assert sorted(maps) == ["gate1.0", "gate1.1", "gate2.0", "gate2.1"]
    alphas = torch.cat([a.flatten() for a in maps.values()])
    assert alphas.min() >= 0 and alphas.max() <= 1 and alphas.std() > 0.1
    assert not torch.equal(maps["gate1.0"], maps["gate1.1"])  # independent gates


def test_smp_encoders_skip_levels_without_features():
    resnet = AttentionUNet(encoder="resnet18", num_classes=2)
    assert sorted(resnet.decoder.gates) == ["gate2", "gate3", "gate4"]  # stride 2 is the finest skip
    mit = AttentionUNet(encoder="mit_b0", num_classes=2, gate_finest=True)  # no stride-1 or stride-2 feature
    assert sorted(mit.decoder.gates) == ["gate2", "gate3", "gate4"]
    logits, maps = mit.eval()(torch.randn(1, 3, 45, 70), return_attention=True)
    assert logits.shape == (1, 2, 45, 70) and maps["gate2"].shape == (1, 1, 12, 18)


def test_finest_skip_is_not_gated_by_default_and_gates_false_has_none():
    assert sorted(AttentionUNet(widths=SMALL).decoder.gates) == ["gate1", "gate2"]
    plain = AttentionUNet(widths=SMALL, gates=False)
    assert len(plain.decoder.gates) == 0
    assert plain(torch.randn(1, 3, 32, 32), return_attention=True)[1] == {}


def test_gating_sources():
    def phi_inputs(gating):
        gate = AttentionUNet(widths=SMALL, gating=gating, gate_finest=True).decoder.gates["gate0"]
        return [phi.in_channels for phi in gate.phi]

    assert phi_inputs("coarser") == [16]  # decoder level 1
    assert phi_inputs("bottleneck") == [64]
    assert phi_inputs("multi") == [64, 32, 16]  # bottleneck, then levels 2 and 1


def test_gates_learn_from_the_loss():
    torch.manual_seed(0)
    model = AttentionUNet(in_channels=3, num_classes=2, widths=SMALL)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x, target = torch.randn(2, 3, 32, 32), torch.randint(0, 2, (2, 32, 32))
    for _ in range(2):
        optimizer.zero_grad()
        F.cross_entropy(model(x), target).backward()
        optimizer.step()
    gate = model.decoder.gates["gate1"]
    assert gate.psi.weight.abs().sum() > 0
    assert gate.theta.weight.grad is not None and gate.theta.weight.grad.abs().sum() > 0


def test_attention_blocks_start_as_documented():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 45, 70)
    plain = AttentionUNet(widths=SMALL).eval()
    torch.manual_seed(0)
    nonlocal_net = AttentionUNet(widths=SMALL, bottleneck_attention="nonlocal").eval()
    nonlocal_net.load_state_dict(plain.state_dict(), strict=False)
    assert torch.allclose(nonlocal_net(x), plain(x), atol=1e-6)  # the non-local block starts as the identity
    feature = torch.randn(2, 8, 5, 6)
    cbam = AttentionUNet(widths=SMALL, spatial_attention="cbam").decoder.blocks[0][2]
    with torch.no_grad():  # the 7×7 conv reduced to its centre tap: M = σ(mean_c − max_c)
        cbam.conv.weight.zero_()
        cbam.conv.weight[0, :, 3, 3] = torch.tensor([1.0, -1.0])
        cbam.conv.bias.zero_()
        expected = feature * torch.sigmoid(feature.mean(1, keepdim=True) - feature.amax(1, keepdim=True))
        assert torch.allclose(cbam(feature), expected, atol=1e-6)


def test_eval_is_deterministic_and_the_seed_fixes_the_weights():
    torch.manual_seed(0)
    a = AttentionUNet(widths=SMALL, gates_per_skip=2, deep_supervision=True, channel_attention="scse").eval()
    torch.manual_seed(0)
    b = AttentionUNet(widths=SMALL, gates_per_skip=2, deep_supervision=True, channel_attention="scse").eval()
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values(), strict=True))
    x = torch.randn(2, 3, 45, 70)
    with torch.no_grad():
        assert torch.equal(a(x), a(x))
        assert torch.equal(a(x), b(x))


def test_deep_supervision_outputs_and_their_order():
    model = AttentionUNet(widths=SMALL, deep_supervision=True).eval()
    x = torch.randn(1, 3, 45, 70)
    logits, maps, deep = model(x, return_attention=True, return_deep=True)
    assert torch.equal(logits, model(x)) and sorted(maps) == ["gate1", "gate2"]
    assert len(deep) == 3 and all(d.shape == (1, 2, 45, 70) for d in deep)
    fused = model.head.fuse(torch.cat(deep, dim=1))  # the main output fuses the per-scale heads
    assert torch.allclose(logits, fused, atol=1e-6)
    assert torch.equal(model(x, return_deep=True)[1][2], deep[2])


def test_the_paper_recipe_builds_two_gates_per_skip_and_deep_supervision():
    paper = yaml.safe_load((REPO / "configs/attunet_paper.yaml").read_text())["model"]["model_args"]
    model = build_model("attention_unet", num_classes=2, **paper)
    assert model.deep_supervision and sorted(model.decoder.gates) == ["gate1", "gate2", "gate3"]
    assert all(len(gate.gates) == 2 for gate in model.decoder.gates.values())


def test_build_model_names():
    model = build_model("attention_unet", num_classes=3, in_channels=1, widths=SMALL)
    assert isinstance(model, AttentionUNet) and model.in_channels == 1
    names = available_models()
    assert names[0] == "attention_unet" and "smp:Unet" in names and "smp:UnetPlusPlus" in names


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_encoder_weights_from_a_local_file(tmp_path, suffix):
    torch.manual_seed(1)
    rgb = get_encoder("resnet18", in_channels=3, depth=5, weights=None)
    path = tmp_path / f"resnet18{suffix}"
    state = {k: v.contiguous() for k, v in rgb.state_dict().items()}
    save_file(state, path) if suffix == ".safetensors" else torch.save(state, path)
    model = AttentionUNet(in_channels=1, encoder="resnet18", encoder_weights=str(path))
    assert torch.equal(model.encoder.layer1[0].conv1.weight, rgb.layer1[0].conv1.weight)
    # one grey channel: the RGB filters summed, as smp adapts ImageNet weights
    assert torch.allclose(model.encoder.conv1.weight, rgb.conv1.weight.sum(dim=1, keepdim=True))
    with pytest.raises(InputError, match="encoder_weights"):
        AttentionUNet(encoder="resnet34", encoder_weights=str(path))


def test_multiscale_attention_merges_scales_as_in_tao_et_al():
    torch.manual_seed(0)
    model = build_model(
        "attention_unet", num_classes=2, widths=SMALL, multiscale={"train_scales": [1, 0.5], "infer_scales": [0.5, 1]}
    )
    assert isinstance(model, MultiScaleAttention)
    model.eval()
    x = torch.randn(2, 3, 45, 70)
    with torch.no_grad():
        merged, maps = model(x, return_attention=True)
        low = model.net(F.interpolate(x, size=(22, 35), mode="bilinear", align_corners=False))
        alpha = model.attention(low)

        def up(t):
            return F.interpolate(t, size=(45, 70), mode="bilinear", align_corners=False)

        expected = up(alpha * low) + (1 - up(alpha)) * model.net(x)
        _, gates = model.net(x, return_attention=True)
    assert torch.allclose(merged, expected, atol=1e-6)
    assert [name for name in maps if "/" not in name] == ["scale0.5"] and torch.equal(maps["scale0.5"], up(alpha))
    # every scale's gates, named by scale
    assert {name for name in maps if "/" in name} == {f"scale{s}/{gate}" for s in ("1", "0.5") for gate in gates}
    assert all(torch.equal(maps[f"scale1/{gate}"], alpha) for gate, alpha in gates.items())


def test_multiscale_chains_three_scales_at_inference_at_any_size():
    torch.manual_seed(0)
    kwargs = {"num_classes": 3, "widths": SMALL, "multiscale": {"infer_scales": [0.5, 1.0, 2.0]}}
    model = build_model("attention_unet", **kwargs)
    logits = model.train()(torch.randn(2, 3, 33, 47))
    logits.mean().backward()
    assert logits.shape == (2, 3, 33, 47) and model.attention[0].weight.grad is not None
    logits, maps = model.eval()(torch.randn(1, 3, 33, 47), return_attention=True)
    scale_maps = {name: m for name, m in maps.items() if "/" not in name}
    assert logits.shape == (1, 3, 33, 47) and list(scale_maps) == ["scale1", "scale0.5"]
    assert all(m.shape == (1, 1, 33, 47) and 0 <= m.min() and m.max() <= 1 for m in scale_maps.values())
    rebuilt = build_model("attention_unet", **kwargs)  # what a checkpoint does: same kwargs, same keys
    rebuilt.load_state_dict(model.state_dict())
    smp_ms = build_model("smp:Unet", num_classes=2, encoder_name="resnet18", multiscale={}).eval()
    assert smp_ms(torch.randn(1, 3, 45, 70)).shape == (1, 2, 45, 70)


def test_deep_supervision_loss_weights_by_hand():
    torch.manual_seed(0)
    base = CEDiceLoss()
    target = torch.randint(0, 3, (2, 9, 11))
    logits = torch.randn(2, 3, 9, 11)
    deep = [torch.randn(2, 3, 9, 11) for _ in range(3)]
    l0, l1, l2, l3 = (base(t, target).item() for t in [logits, *deep])
    halving = DeepSupervisionLoss(base, "halving")(logits, deep, target)
    assert halving.item() == pytest.approx((l0 + l1 + l2 / 2 + l3 / 4) / (1 + 1 + 0.5 + 0.25), rel=1e-6)
    explicit = DeepSupervisionLoss(base, [0.2, 0.0, 3.0])(logits, deep, target)
    assert explicit.item() == pytest.approx((l0 + 0.2 * l1 + 3 * l3) / 4.2, rel=1e-6)
    equal = DeepSupervisionLoss(base, None)(logits, deep, target)
    assert equal.item() == pytest.approx((l0 + l1 + l2 + l3) / 4, rel=1e-6)
    with pytest.raises(InputError, match="deep_supervision_weights: 2 weight"):
        DeepSupervisionLoss(base, [1.0, 1.0])(logits, deep, target)


@pytest.mark.filterwarnings("ignore:You are trying to `self.log\\(\\)`")
def test_training_step_uses_deep_supervision_when_the_model_has_it():
    torch.manual_seed(0)
    task = SegmentationTask(
        classes=["bg", "fg"],
        model_args={"widths": list(SMALL), "deep_supervision": True},
        deep_supervision_weights=[1, 2, 3],
    )
    batch = {"image": torch.randn(2, 3, 20, 30), "mask": torch.randint(0, 2, (2, 20, 30))}
    loss = task.training_step(batch, 0)
    logits, deep = task.model(batch["image"], return_deep=True)
    by_hand = (
        task.loss(logits, batch["mask"])
        + sum(w * task.loss(d, batch["mask"]) for w, d in zip([1, 2, 3], deep, strict=True))
    ) / 7
    assert loss.item() == pytest.approx(by_hand.item(), rel=1e-5)
    plain = SegmentationTask(classes=["bg", "fg"], model_args={"widths": list(SMALL)})
    assert plain.training_step(batch, 0).item() == pytest.approx(
        plain.loss(plain.model(batch["image"]), batch["mask"]).item()
    )


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"gating": "sideways"}, "gating"),
        ({"gates_per_skip": 0}, "gates_per_skip"),
        ({"channel_attention": "cbam"}, "channel_attention"),
        ({"spatial_attention": "se"}, "spatial_attention"),
        ({"bottleneck_attention": "transformer"}, "bottleneck_attention"),
        ({"norm": "layer"}, "norm"),
        ({"upsample": "nearest"}, "upsample"),
        ({"downsample": "stride"}, "downsample"),
        ({"encoder": "resnet18", "widths": None, "downsample": "conv"}, "downsample"),
        ({"decoder_convs": 0}, "decoder_convs"),
        ({"gate_transform": "no"}, r"gate_transform: expected true or false, got 'no'"),
        ({"deep_supervision": 1}, "deep_supervision"),
        ({"sub_sample": 3}, "sub_sample"),
        ({"widths": [8]}, "widths"),
        ({"decoder_widths": [8, 16]}, "decoder_widths"),
        ({"encoder": "resnet999", "widths": None}, "resnet999"),
        ({"encoder": "resnet18", "widths": SMALL}, "widths"),
        ({"encoder": "resnet18", "widths": None, "encoder_depth": 6}, "encoder_depth"),
        ({"encoder_depth": 4}, "encoder_depth"),
        ({"encoder_weights": "imagenet"}, "encoder_weights"),
        ({"encoder": "resnet18", "widths": None, "encoder_weights": "no/such/file.pt"}, "encoder_weights"),
    ],
)
def test_bad_options_are_named(kwargs, named):
    with pytest.raises(InputError, match=named):
        AttentionUNet(**{"widths": SMALL, **kwargs})


def test_bad_model_arguments_are_named():
    with pytest.raises(InputError, match="widht"):
        build_model("attention_unet", num_classes=2, widht=[8, 16])
    with pytest.raises(InputError, match="nonsense"):
        build_model("nonsense", num_classes=2)
    with pytest.raises(InputError, match="UNet3000"):
        build_model("smp:UNet3000", num_classes=2)
    # smp would drop it: its **kwargs reach timm ("tu-") encoders only
    with pytest.raises(InputError, match=r"model 'smp:Unet': unknown argument\(s\) \['decoder_chanels'\]"):
        build_model("smp:Unet", num_classes=2, encoder_name="resnet18", decoder_chanels=(16, 8, 8, 8, 8))
    with pytest.raises(InputError, match=r"N×3×H×W"):
        AttentionUNet(widths=SMALL)(torch.randn(1, 1, 16, 16))
    with pytest.raises(InputError, match="return_deep"):
        AttentionUNet(widths=SMALL)(torch.randn(1, 3, 16, 16), return_deep=True)
    with pytest.raises(InputError, match="deep_supervision_weights"):
        SegmentationTask(classes=["a", "b"], model_args={"widths": [8, 16]}, deep_supervision_weights="doubling")
    with pytest.raises(InputError, match="scales"):
        build_model("attention_unet", num_classes=2, widths=SMALL, multiscale={"scales": [1, 2]})
    with pytest.raises(InputError, match=r"multiscale\.infer_scales"):
        build_model("attention_unet", num_classes=2, widths=SMALL, multiscale={"infer_scales": [1, 1]})
    with pytest.raises(InputError, match="deep_supervision"):
        build_model("attention_unet", num_classes=2, widths=SMALL, deep_supervision=True, multiscale={})
