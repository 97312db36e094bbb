"""Inference: the Segmenter (segmenter.py) over its inputs (inputs.py), its checked options
(options.py) and its device runtime (runtime.py); the sliding window itself is `segattn.sliding`."""

from segattn.inference.inputs import ImageInput, InputImages, expand_inputs, load_input
from segattn.inference.options import Tta
from segattn.inference.runtime import (
    Precision,
    device_normalize,
    fold_batchnorm,
    resolve_device,
    resolve_precision,
    stitch_device,
)
from segattn.inference.segmenter import Segmenter

__all__ = [
    "ImageInput",
    "InputImages",
    "Precision",
    "Segmenter",
    "Tta",
    "device_normalize",
    "expand_inputs",
    "fold_batchnorm",
    "load_input",
    "resolve_device",
    "resolve_precision",
    "stitch_device",
]
