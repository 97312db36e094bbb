"""Inference: the Segmenter (segmenter.py) over its inputs (inputs.py), its checked options
(options.py), its device runtime (runtime.py) and the interchangeable strategies it runs
(strategies.py: whole image, sliding window, flip/scale TTA, mirror TTA over every spatial axis),
and its path for volumes (volumes.py: a `spatial_dims: 3` network's inputs, intensity
normalisation and default window); the sliding window's stitching itself is `segattn.sliding`."""

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
from segattn.inference.strategies import FlipScaleTTA, Inferer, MirrorTTA, SlidingWindow, WholeImage
from segattn.inference.volumes import InputVolumes

__all__ = [
    "FlipScaleTTA",
    "ImageInput",
    "Inferer",
    "InputImages",
    "InputVolumes",
    "MirrorTTA",
    "Precision",
    "Segmenter",
    "SlidingWindow",
    "Tta",
    "WholeImage",
    "device_normalize",
    "expand_inputs",
    "fold_batchnorm",
    "load_input",
    "resolve_device",
    "resolve_precision",
    "stitch_device",
]
