"""ONNX export of a checkpoint's network, checked against onnxruntime."""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
import torch

from segattn.atomic import writable_folder, write_bytes
from segattn.data.synthetic import draw_image
from segattn.errors import InputError, check_count
from segattn.inference import InputImages, Segmenter

TOLERANCE = 1e-3


def export_onnx(
    ckpt: str | os.PathLike,
    onnx_path: str | os.PathLike,
    dynamic: bool = True,
    image: str | os.PathLike | None = None,
    opset: int = 17,
    trust_checkpoint: bool = False,
    tolerance: float = TOLERANCE,
) -> dict[str, float]:
    """Writes the network (normalised image N×C×H×W float32 → logits N×K×H×W) as ONNX and runs
    it with onnxruntime on a real image through the checkpoint's evaluation transform (by
    default a drawn synthetic image), at the export size and, when `dynamic` (batch, H and W
    free), at a second size. Returns the largest absolute logit difference per check. The file
    is written (atomically) only when every difference is within `tolerance`; a folder that
    cannot be written is an InputError before anything is exported.
    Needs onnx and onnxruntime: `pip install 'segattn[export]'`."""
    try:
        import onnx  # noqa: F401  (torch.onnx.export needs it)
        import onnxruntime as ort
    except ImportError as exc:
        raise InputError(f"export needs {exc.name}, which is not installed: pip install 'segattn[export]'") from exc
    check_count("opset", opset)
    target = Path(onnx_path)
    writable_folder(target.parent, str(target), f"its folder {target.parent}")
    segmenter = Segmenter.from_checkpoint(ckpt, device="cpu", precision="fp32", trust_checkpoint=trust_checkpoint)
    model = segmenter.model
    sample = image if image is not None else draw_image(np.random.default_rng(0), 160)[0]
    x = InputImages([sample], segmenter.in_channels, segmenter.transform)[0]["tensor"][None]
    axes = {"image": {0: "batch", 2: "height", 3: "width"}, "logits": {0: "batch", 2: "height", 3: "width"}}
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notices
        torch.onnx.export(
            model,
            (x,),
            buffer,
            dynamo=False,  # the TorchScript exporter handles the data-dependent padding with dynamic H×W
            opset_version=opset,
            input_names=["image"],
            output_names=["logits"],
            dynamic_axes=axes if dynamic else None,
        )
    session = ort.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])  # the bytes to be written
    checks = {"export size": x}
    if dynamic:  # another size and batch: a crop of the image, twice
        crop = x[..., : x.shape[-2] * 3 // 4 + 1, : x.shape[-1] // 2 + 3]
        checks["other size, batch 2"] = torch.cat([crop, crop.flip(-1)])
    diffs = {}
    with torch.no_grad():
        for name, tensor in checks.items():
            (onnx_logits,) = session.run(None, {"image": tensor.numpy()})
            diffs[name] = float(np.abs(onnx_logits - model(tensor).numpy()).max())
    if max(diffs.values()) <= tolerance:
        write_bytes(target, buffer.getvalue())
    return diffs
