"""Segmenter: label maps from a checkpoint, for images (or volumes) of any size, with nothing but
the file; the volume path is `segattn.inference.volumes`."""

from __future__ import annotations

import copy
import dataclasses
import functools
import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import nullcontext
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader

from segattn import checkpoint
from segattn.data.geometry import Geometry
from segattn.data.slices import SliceSpec, stack_depth
from segattn.errors import InputError, check_count
from segattn.inference.attention import attention_maps
from segattn.inference.inputs import ImageInput, InputImages, expand_inputs
from segattn.inference.loading import restore
from segattn.inference.options import Tta, build_strategy, check_scales, sliding_options, tta_scales
from segattn.inference.runtime import (
    Precision,
    device_normalize,
    fold_batchnorm,
    memory_format,
    resolve_device,
    resolve_precision,
    stitch_device,
)
from segattn.inference.slices import SliceBySlice
from segattn.inference.strategies import Inferer, Network, SlidingWindow, linear
from segattn.inference.volumes import InputVolumes, predict_volumes
from segattn.sliding import Blending, Window


class Segmenter:
    """Runs a trained network on images: `predict(inputs)` → H×W label maps at each input's size.

    Each image goes through the checkpoint's evaluation transform; consecutive images of the same
    size are batched (the network pads to its stride and crops back). The network runs on a copy
    with batch norms folded into the convolutions, in channels_last memory format, under autocast
    at `precision`. On a GPU, a transform that is one mean/std Normalize or Window runs on the
    device (`device_normalize`): images cross the bus as uint8 and the CPU does no per-pixel work.
    Whole image, sliding window and TTA are strategies (`segattn.inference.strategies`) that
    `predict_iter` builds from its options once per call and runs over `forward`.
    A network built with `spatial_dims: 3` takes volumes instead (`segattn.inference.volumes`:
    inputs, `intensity` normalisation, window); `predict` then gives D×H×W label maps. So does a
    2-D network trained on volumes' slices (`slices`), run slice by slice (`SliceBySlice`).
    """

    def __init__(
        self,
        model: nn.Module,
        classes: Sequence[str],
        eval_transform: Any,
        palette: Sequence[Sequence[int]],
        in_channels: int = 3,
        device: str | torch.device = "auto",
        precision: Precision = "auto",
        compile: bool = False,
        intensity: Any = None,
        slices: SliceSpec | None = None,
        geometry: Geometry | None = None,
    ) -> None:
        self.device = resolve_device(device)
        self.dtype = resolve_precision(precision, self.device)
        # Inference-only copy: batch norms folded into their convolutions, channels_last memory
        # format, channels_last_3d for volumes (faster convolutions with oneDNN and cuDNN).
        self.spatial_dims = getattr(model, "spatial_dims", 2)
        self.memory_format = memory_format(self.spatial_dims)
        model = fold_batchnorm(copy.deepcopy(model).eval()).to(self.device, memory_format=self.memory_format)
        self.model = torch.compile(model) if compile else model
        self.classes = list(classes)
        self.palette = [list(c) for c in palette]
        self.transform, self.intensity = eval_transform, intensity  # images', volumes' normalisation
        self.in_channels = in_channels
        self.device_normalize = device_normalize(eval_transform, self.device)
        self.slices = slices  # 2.5-D: the 2-D network runs over volumes' slices
        self.geometry = geometry  # volumes: the training grid (orientation, spacing), or None
        self.volumes = self.spatial_dims == 3 or slices is not None  # whether inputs are volumes

    @classmethod
    def from_checkpoint(
        cls,
        path: str | os.PathLike,
        device: str | torch.device = "auto",
        precision: Precision = "auto",
        compile: bool = False,
        trust_checkpoint: bool = False,
    ) -> Segmenter:
        """Loads a checkpoint written by SegmentationTask (weights_only: no code runs on load);
        needs no other file. device: "auto" | "cpu" | "cuda:N"; precision: "auto" (bf16 on GPUs
        that have it, else fp16 on a GPU, fp32 on the CPU) | "fp32" | "bf16" | "fp16".
        trust_checkpoint: unpickle anything (legacy files from a trusted source only)."""
        record, state = checkpoint.load(path, trust=trust_checkpoint)
        return cls.from_record(record, state, path, device, precision, compile)

    @classmethod
    def from_record(
        cls,
        record: dict[str, Any],
        state: dict[str, torch.Tensor],
        path: str | os.PathLike,
        device: str | torch.device = "auto",
        precision: Precision = "auto",
        compile: bool = False,
    ) -> Segmenter:
        """A Segmenter of a checkpoint's record and model weights as `checkpoint.load` returns
        them (loaded once, e.g. by a server that builds one Segmenter per device); `path` names
        the file in errors."""
        model, transform, volumes = restore(record, state, path)
        classes, channels = record["classes"], record["in_channels"]
        return cls(model, classes, transform, record["palette"], channels, device, precision, compile, **volumes)

    def predict(self, inputs: ImageInput | Sequence[ImageInput], **options: Any) -> list[np.ndarray]:
        """Label maps for a path, a folder, a glob, an H×W[×C] uint8/uint16 array, or a list of
        these (a 3-D network: volumes, see `segattn.inference.volumes`); one H×W (D×H×W) array per
        input in input order (a folder's or glob's files sorted by name): uint8 when there are at
        most 256 classes, else int32. Options: see `predict_iter`."""
        return list(self.predict_iter(inputs, **options))

    def predict_iter(
        self,
        inputs: ImageInput | Sequence[ImageInput],
        batch_size: int = 8,
        tta: Tta = None,
        scales: Sequence[float] | None = None,
        slide: Window | tuple[Window, float] | None = None,
        blending: Blending | None = None,
        return_probs: bool = False,
        workers: int = 0,
        skip_errors: bool = False,
    ) -> Iterator[np.ndarray | InputError]:
        """Streams results in input order, one image at a time (for large folders).

        tta: None, "flip" (horizontal flip) or "flip+scales" (flips at every scale of `scales`,
            default (0.75, 1.0, 1.25)); softmax probabilities are averaged over the views.
        Volumes: tta "flip" mirrors along D, H and W (`MirrorTTA`), slide's window may be (d, h, w)
            sides, and slide None tiles a large volume (`segattn.inference.volumes`).
        slide: (window, overlap), or a window alone (overlap 0.25), for sliding-window inference
            with `blending` weights ("gaussian", default, or "constant"); windows are batched
            `batch_size` at a time on the device; the image is stitched on the GPU when its
            probabilities fit in a quarter of the free memory, else on the CPU. Host memory: the
            image as decoded, the label map, one batch of windows and strips of (K + 1) × window
            × W floats, when the transform has a window-wise form (see
            `segattn.window_transform`); any other transform makes a float32 copy of the image.
        return_probs: yield float32 K×H×W (K×D×H×W) probabilities instead of label maps.
        workers: DataLoader processes that read and transform images while the device computes.
        skip_errors: an input that cannot be read (missing, empty, corrupt, unsuitable) yields its
            InputError in its place and the rest go on; by default it is raised.
        An option that would have no effect (scales without "flip+scales", blending without
        slide) is an InputError, as is a value out of range.
        """
        check_count("batch_size", batch_size)
        if not isinstance(workers, int) or isinstance(workers, bool) or workers < 0:
            raise InputError(f"workers: expected 0 or more DataLoader processes, got {workers!r}")
        scales = tta_scales(tta, scales, self.spatial_dims)
        slide = sliding_options(slide, blending, self.spatial_dims)
        strategy = build_strategy(scales, slide, batch_size, self.device, self.spatial_dims)
        if self.slices is not None:
            strategy = SliceBySlice(self.slices, batch_size, strategy)
        if self.volumes:  # their own inputs and default window
            samples = self.samples(inputs, workers, skip_errors=skip_errors)
            yield from predict_volumes(self, samples, strategy, batch_size, return_probs)
            return
        # views and windows average probabilities; one view of whole images and labels wanted:
        # argmax of the logits, no softmax pass needed
        averaged = scales is not None or slide is not None
        network = functools.partial(self.forward, softmax=return_probs or averaged)
        smallest = 1.0 if scales is None else min(scales)
        pending: list[dict[str, Any]] = []
        for sample in self.samples(inputs, workers, windows=slide is not None, skip_errors=skip_errors):
            if "error" in sample:
                if pending:
                    yield from self.run_batch(pending, strategy, network, return_probs)
                    pending = []
                yield InputError(sample["error"])
                continue
            check_scales(sample, smallest, None if slide is None else slide[0])
            if isinstance(strategy, SlidingWindow):
                yield self.slide(sample, strategy, network, return_probs)
                continue
            if pending and (batch_key(sample) != batch_key(pending[0]) or len(pending) == batch_size):
                yield from self.run_batch(pending, strategy, network, return_probs)
                pending = []
            pending.append(sample)
        if pending:
            yield from self.run_batch(pending, strategy, network, return_probs)

    def attention(self, image: ImageInput) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """One forward on one image (a path or an H×W[×C] array; a volume network's volume): its
        label map, as `predict` gives it, and each attention gate's α, float32 H×W (D×H×W) in
        [0, 1] at the input's own size (bilinear, trilinear from the gate's grid), by gate name in
        order; see `segattn.inference.attention`."""
        return attention_maps(self, image)

    def input_images(self, items: list[ImageInput], windows: bool = False, skip_errors: bool = False) -> InputImages:
        """The items as a Dataset: transformed on the CPU, or raw when the device normalises, or
        (windows, for the sliding window) as decoded with their window-wise transform."""
        if self.volumes:
            channels = self.in_channels // (1 if self.slices is None else stack_depth(self.slices))
            return InputVolumes(items, channels, self.intensity, skip_errors, self.geometry)
        raw = self.device_normalize is not None
        return InputImages(items, self.in_channels, self.transform, raw, windows, skip_errors)

    def normalized(self, batch: Tensor) -> Tensor:
        """A batch from `input_images`, on the device, as the network's float input."""
        return batch if self.device_normalize is None else self.device_normalize(batch)

    def samples(
        self,
        inputs: ImageInput | Sequence[ImageInput],
        workers: int,
        windows: bool = False,
        skip_errors: bool = False,
    ) -> Iterable[dict[str, Any]]:
        """{"name": str, "size": (H, W), "tensor": C×h×w (float32, or raw integers), or H×W×C as
        decoded with its "normalize" (see `InputImages`)} per input, or {"name", "error": message}
        (skip_errors), read by `workers` processes."""
        dataset = self.input_images(expand_inputs(inputs), windows, skip_errors)
        if workers == 0:
            return (dataset[i] for i in range(len(dataset)))
        return DataLoader(dataset, batch_size=None, num_workers=workers, prefetch_factor=4)

    def run_batch(
        self, samples: list[dict[str, Any]], strategy: Inferer, network: Network, return_probs: bool
    ) -> Iterator[np.ndarray]:
        """Samples of equal `batch_key` as one batch through `strategy`: `finish`'s results."""
        batch = torch.stack([s["tensor"] for s in samples]).to(self.device, non_blocking=True)
        scores = self.infer(strategy, network, batch)
        for sample, p in zip(samples, scores, strict=True):
            yield self.finish(p[None], sample, return_probs)

    @torch.inference_mode()
    def infer(self, strategy: Inferer, network: Network, batch: Tensor) -> Tensor:
        """float32 N×K×h×w scores of a batch from `input_images` on the device."""
        return strategy(network, self.normalized(batch))

    @torch.inference_mode()
    def slide(
        self, sample: dict[str, Any], strategy: SlidingWindow, network: Network, return_probs: bool
    ) -> np.ndarray:
        """A sample of `samples(..., windows=True)` through the sliding window: `finish`'s result.
        Label maps are filled band by band (`SlidingWindow.bands`); probabilities, and the result
        of a transform that resized, are stitched whole first."""
        normalize = sample.get("normalize")
        image = sample["tensor"][None] if normalize is None else sample["tensor"].permute(2, 0, 1)[None]
        stitch = stitch_device(self.device, len(self.classes), image.shape[2:])
        if normalize is None:  # transformed whole: windows are cut where the result is summed
            image = image.to(stitch)
        else:  # as decoded: windows are cut on the host and normalised on the device
            normalize = normalize.to(self.device)
        transform = self.normalized if normalize is None else normalize
        strategy = dataclasses.replace(strategy, output_device=stitch, transform=transform)
        if return_probs or tuple(image.shape[2:]) != tuple(sample["size"]):
            return self.finish(strategy(network, image), sample, return_probs)
        labels = np.empty(sample["size"], self.label_dtype)
        for top, band in strategy.bands(network, image):
            labels[top : top + band.shape[2]] = self.label_map(band)
        return labels

    def autocast(self) -> Any:
        """Autocast to the Segmenter's precision (nothing at fp32)."""
        return torch.autocast(self.device.type, dtype=self.dtype) if self.dtype != torch.float32 else nullcontext()

    def forward(self, x: Tensor, softmax: bool = False) -> Tensor:
        """The network on a float N×C×h×w batch on the device, channels_last, under `autocast`:
        float32 N×K×h×w logits, or softmax probabilities. An input too large for the device's
        kernels is an InputError that points to the sliding window."""
        x = x.contiguous(memory_format=self.memory_format)
        try:
            with self.autocast():
                logits = self.model(x)
        except RuntimeError as exc:  # torch.OutOfMemoryError is one
            # CUDA kernels index with 32 bits: feature maps of 2**31 elements or more are refused
            if not isinstance(exc, torch.OutOfMemoryError) and "INT_MAX" not in str(exc):
                raise
            raise InputError(
                f"a batch of {tuple(x.shape)} is too large for one forward on {self.device} "
                f"({type(exc).__name__}: {str(exc).splitlines()[0]}); use sliding-window inference: "
                "predict(..., slide=(512, 0.25)) or `segattn infer --slide 512`, or a smaller batch_size"
            ) from exc
        logits = logits.float()
        return logits.softmax(dim=1) if softmax else logits

    def finish(self, probs: Tensor, sample: dict[str, Any], return_probs: bool) -> np.ndarray:
        """1×K×h×w (1×K×d×h×w) probabilities → labels (or probabilities) at the input's own size."""
        if tuple(probs.shape[2:]) != tuple(sample["size"]):  # an eval transform that resized
            probs = F.interpolate(probs, size=tuple(sample["size"]), mode=linear(probs), align_corners=False)
        if return_probs:
            return probs[0].cpu().numpy()
        return self.label_map(probs)

    @property
    def label_dtype(self) -> np.dtype:
        """uint8 for at most 256 classes, else int32."""
        return np.dtype(np.uint8 if len(self.classes) <= 256 else np.int32)

    def label_map(self, probs: Tensor) -> np.ndarray:
        """1×K×h×w probabilities (or logits) → h×w labels of `label_dtype`."""
        labels = probs[0].argmax(dim=0).to(getattr(torch, self.label_dtype.name))
        return labels.cpu().numpy()  # narrowed on the device: 1/8 of int64's bytes cross the bus


def batch_key(sample: dict[str, Any]) -> tuple[Any, ...]:
    """Samples with equal keys stack into one batch."""
    return sample["tensor"].shape, sample["tensor"].dtype
