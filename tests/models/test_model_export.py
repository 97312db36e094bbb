"""The recipes' models leave PyTorch intact: ONNX (onnxruntime parity) and torch.export, both with dynamic H×W."""

import io
import warnings

import numpy as np
import onnxruntime as ort
import pytest
import torch
import yaml
from torch.export import Dim

from segattn import AttentionUNet, build_model

from ..conftest import REPO

EXPORT_SIZE = (64, 96)
CHECK_SIZES = [(45, 70), (97, 131)]  # neither a multiple of any stride nor the export size


def config_model(name: str) -> torch.nn.Module:
    section = yaml.safe_load((REPO / "configs" / f"{name}.yaml").read_text())["model"]
    torch.manual_seed(0)
    return build_model(section["model"], num_classes=3, in_channels=3, **section["model_args"]).eval()


@pytest.mark.parametrize("config", ["attunet_small", "attunet_paper", "attunet_r34"])
def test_onnx_export_matches_onnxruntime_at_other_sizes(config):
    model = config_model(config)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notices
        torch.onnx.export(
            model,
            (torch.randn(1, 3, *EXPORT_SIZE),),
            buffer,
            dynamo=False,
            opset_version=17,
            input_names=["image"],
            output_names=["logits"],
            dynamic_axes={"image": {0: "n", 2: "h", 3: "w"}, "logits": {0: "n", 2: "h", 3: "w"}},
        )
    session = ort.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])
    for size in CHECK_SIZES:
        x = torch.randn(2, 3, *size)
        with torch.no_grad():
            expected = model(x).numpy()
        (logits,) = session.run(None, {"image": x.numpy()})
        assert logits.shape == (2, 3, *size)
        assert np.abs(logits - expected).max() < 1e-4, (config, size)


def test_torch_export_of_the_default_model_with_dynamic_size():
    torch.manual_seed(0)
    model = AttentionUNet().eval()
    # from 17 on, the stride-16 bottleneck is at least 2×2: torch.export specialises sizes of 1
    dims = {2: Dim("h", min=17, max=2048), 3: Dim("w", min=17, max=2048)}
    exported = torch.export.export(model, (torch.randn(1, 3, *EXPORT_SIZE),), dynamic_shapes={"x": dims}).module()
    for size in CHECK_SIZES:
        x = torch.randn(1, 3, *size)
        with torch.no_grad():
            assert torch.allclose(exported(x), model(x), atol=1e-5)
