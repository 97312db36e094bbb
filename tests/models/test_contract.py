"""The contract every network segattn builds keeps (smp's BaseModelTester pattern), for every model
the registry names and every recipe in configs/*.yaml (configs/tune/ holds variants of these):
any H×W gives N×K×H×W logits, gradients are finite, torch.export gives the eager output, and
the declared capabilities (SegmentationNetwork: returns_attention, deep_supervision,
output_stride) are true. Recipes keep their own widths; networks that build the same (a
registry default and a recipe, two recipes) are tested once. A few 3-D AttentionUNets (tiny
widths) keep the same contract over D×H×W (VOLUME_CASES)."""

import math
import re

import pytest
import torch
import yaml

from segattn import InputError, available_models, build_model
from segattn.models.base import stride_per_axis

from ..conftest import REPO
from .test_3d import ANISOTROPIC

NUM_CLASSES = 3
# timm's tiny test networks keep the smp architectures fast on two CPU cores; DPT needs a ViT,
# which takes sizes other than its 224 only with dynamic_img_size
SMP_ENCODER = {"encoder_name": "tu-test_resnet"}
SMP_VIT = {"encoder_name": "tu-test_vit", "dynamic_img_size": True}
# gate names: AttentionUNet's "gate{i}" / "gate{i}.{j}"; MultiScaleAttention's "scale{s}" and
# "scale{s}/{its network's gate}"
MAP_NAME = re.compile(r"(scale[0-9.]+(/gate\d+(\.\d+)?)?|gate\d+(\.\d+)?)")
TINY_3D = {"model": "attention_unet", "spatial_dims": 3, "widths": [4, 8, 16]}
# 3-D networks: isotropic; anisotropic (nnU-Net's (1, 2, 2) first) with two gates per skip and
# deep supervision; and every attention option that has a 3-D form at least once
VOLUME_CASES = [
    pytest.param(({**TINY_3D}, 1), id="3d-isotropic"),
    pytest.param(
        ({**TINY_3D, **ANISOTROPIC, "gates_per_skip": 2, "deep_supervision": True, "gate_finest": True}, 1),
        id="3d-anisotropic-2gates-deep",
    ),
    pytest.param(
        (
            {
                **TINY_3D,
                "strides": [[1, 2, 2], [2, 2, 2]],
                "channel_attention": "scse",
                "spatial_attention": "cbam",
                "bottleneck_attention": "nonlocal",
                "gating": "multi",
                "upsample": "transposed",
                "downsample": "conv",
                "norm": "instance",
            },
            2,
        ),
        id="3d-scse-cbam-nonlocal-multi-transposed",
    ),
    pytest.param(
        ({**TINY_3D, "channel_attention": "se", "gating": "bottleneck", "upsample": "full", "norm": "group"}, 1),
        id="3d-se-bottleneck-full-group",
    ),
]


def registry_cases() -> list[tuple[str, dict, int]]:
    """(name, build_model kwargs, in_channels) per registered model, and the multiscale wrapper."""
    cases = []
    for name in available_models():
        kwargs = {} if not name.startswith("smp:") else SMP_VIT if name == "smp:DPT" else SMP_ENCODER
        cases.append((name, {"model": name, **kwargs}, 3))
    small = {"widths": [16, 32, 64, 128]}  # attunet_small's: three scales of the default take seconds
    cases.append(("attention_unet+multiscale", {"model": "attention_unet", **small, "multiscale": {}}, 3))
    return cases


def config_cases() -> list[tuple[str, dict, int]]:
    """(config name, build_model kwargs, in_channels) per configs/*.yaml recipe."""
    cases = []
    for path in sorted((REPO / "configs").glob("*.yaml")):
        config = yaml.safe_load(path.read_text())
        section = config.get("model") or {}
        if "model" not in section:
            continue
        channels = config["data"]["train"].get("init_args", {}).get("channels", 3)
        cases.append((path.stem, {"model": section["model"], **section.get("model_args", {})}, channels))
    return cases


def build(kwargs: dict, in_channels: int) -> torch.nn.Module:
    kwargs = dict(kwargs)
    return build_model(kwargs.pop("model"), num_classes=NUM_CLASSES, in_channels=in_channels, **kwargs)


def unique_cases() -> list:
    """One pytest param per distinct network (by its module tree, built on the meta device: no
    weights), named by every case that builds it."""
    distinct: dict[str, tuple[list[str], dict, int]] = {}
    for name, kwargs, channels in [*registry_cases(), *config_cases()]:
        with torch.device("meta"):
            key = f"{channels}:{build(kwargs, channels)!r}"
        distinct.setdefault(key, ([], kwargs, channels))[0].append(name)
    return [pytest.param((kwargs, channels), id="=".join(names)) for names, kwargs, channels in distinct.values()]


CASES = unique_cases() + VOLUME_CASES


def sizes(net: torch.nn.Module) -> list[tuple[int, ...]]:
    """Two odd sizes per spatial axis (H×W, or D×H×W), not multiples of the network's output
    stride along that axis, from one stride up."""
    strides = stride_per_axis(net)
    return [
        tuple(s + 1 if a % 2 == 0 else max(3 * s - 3, 2) for a, s in enumerate(strides)),
        tuple(s + 3 if a % 2 == 0 else s + 5 for a, s in enumerate(strides)),
    ]


@pytest.fixture(scope="module")
def networks() -> dict:
    return {}


@pytest.fixture
def network(request, networks) -> tuple[torch.nn.Module, int]:
    """(the case's network, seeded, built once per module; its in_channels)."""
    kwargs, channels = request.param
    key = repr(request.param)
    if key not in networks:
        torch.manual_seed(0)
        networks[key] = build(kwargs, channels)
    return networks[key], channels


def on_a_grid(shape: torch.Size, sizes: tuple[int, ...], isotropic: bool = True) -> bool:
    """Whether an N×1×h×w map lies on a grid over H×W: h = ⌈H/s⌉ and w = ⌈W/s⌉ for some s ≥ 1
    (N×1×d×h×w over D×H×W likewise; with one s per axis unless `isotropic`)."""
    steps = [{s for s in range(1, n + 1) if math.ceil(n / s) == m} for n, m in zip(sizes, shape[2:], strict=True)]
    return all(steps) and (not isotropic or bool(set.intersection(*steps)))


def grid_of(name: str, sizes: tuple[int, ...]) -> tuple[int, ...]:
    """The input a map named `name` covers: H×W, or for "scale{s}/gate…" (MultiScaleAttention)
    the input resized by s, as documented there."""
    if "/" not in name:
        return sizes
    scale = float(name.split("/")[0].removeprefix("scale"))
    return tuple(max(round(n * scale), 1) for n in sizes)


@pytest.mark.parametrize("network", CASES, indirect=True)
def test_any_size_gives_logits_that_export_and_backpropagate(network):
    net, channels = network
    assert isinstance(net.output_stride, int) or net.spatial_dims == 3  # per axis: anisotropic 3-D only
    assert len(stride_per_axis(net)) == net.spatial_dims and min(stride_per_axis(net)) >= 1
    eval_size, train_size = sizes(net)
    x = torch.randn(1, channels, *eval_size)
    exported = torch.export.export(net.eval(), (x,)).module()
    with torch.no_grad():
        logits = net(x)
        assert logits.shape == (1, NUM_CLASSES, *eval_size) and torch.isfinite(logits).all()
        assert torch.allclose(exported(x), logits, atol=1e-4)
    net.train().zero_grad()
    logits = net(torch.randn(2, channels, *train_size))
    assert logits.shape == (2, NUM_CLASSES, *train_size)
    logits.square().mean().backward()
    grads = [p.grad for p in net.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("network", CASES, indirect=True)
def test_declared_capabilities_are_true(network):
    """A flag set: the output is there, as documented; a flag unset: asking for it raises."""
    net, channels = network
    size = sizes(net)[0]
    x = torch.randn(1, channels, *size)
    flags = {"return_attention": net.returns_attention, "return_deep": net.deep_supervision}
    net.eval()
    with torch.no_grad():
        outputs = net(x, **{flag: True for flag, declared in flags.items() if declared})
        logits = net(x)
        for flag, declared in flags.items():
            if not declared:
                with pytest.raises((TypeError, InputError)):
                    net(x, **{flag: True})
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    assert torch.equal(outputs[0], logits) and len(outputs) == 1 + sum(flags.values())
    if net.returns_attention:
        for name, alpha in outputs[1].items():
            assert MAP_NAME.fullmatch(name), name
            grid = on_a_grid(alpha.shape, grid_of(name, size), isotropic=isinstance(net.output_stride, int))
            assert alpha.shape[:2] == (1, 1) and alpha.ndim == 2 + net.spatial_dims and grid, name
            assert 0 <= alpha.min() and alpha.max() <= 1, name
    if net.deep_supervision:
        assert outputs[-1] and all(d.shape == logits.shape for d in outputs[-1])


def test_pan_takes_inputs_under_its_smallest_side():
    """smp's PAN pools its stride-16 feature three times more (its FPA block), so a side under
    8 × 16 fails inside it; PadToStride pads such an input up to 128 and crops the logits back."""
    net = build({"model": "smp:PAN", **SMP_ENCODER}, 3).eval()
    with pytest.raises(RuntimeError, match="Output size is too small"), torch.no_grad():
        net.net(torch.randn(1, 3, 64, 64))  # the bare smp model
    with torch.no_grad():
        assert net(torch.randn(1, 3, 65, 33)).shape == (1, NUM_CLASSES, 65, 33)
