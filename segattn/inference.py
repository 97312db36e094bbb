"""Segmenter: label maps from a checkpoint, for images of any size, with nothing but the file."""

from __future__ import annotations

import copy
import functools
import glob
import inspect
import math
import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.fusion import fuse_conv_bn_eval
from torch.utils.data import DataLoader, Dataset

from segattn import checkpoint
from segattn.data.base import check_pixel_depth, image_to_tensor
from segattn.data.io import IMAGE_SUFFIXES, match_channels, read_image
from segattn.data.transforms import deserialize
from segattn.errors import InputError, MissingPathError, check_choice, check_count
from segattn.models import build_model
from segattn.sliding import Blending, sliding_bands, sliding_window
from segattn.window_transform import PixelNormalize, window_normalize

ImageInput = str | os.PathLike | np.ndarray
Precision = Literal["auto", "fp32", "bf16", "fp16"]
TtaMode = Literal["flip", "flip+scales"]
Tta = TtaMode | None
DEFAULT_SCALES = (0.75, 1.0, 1.25)
DEFAULT_OVERLAP = 0.25
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


class Segmenter:
    """Runs a trained network on images: `predict(inputs)` → H×W label maps at each input's size.

    Each image goes through the checkpoint's evaluation transform; consecutive images of the same
    size are batched (the network pads to its stride and crops back). The network runs on a copy
    with batch norms folded into the convolutions, in channels_last memory format, under autocast
    at `precision`. On a GPU, a transform that is one mean/std Normalize or Window runs on the
    device (`device_normalize`): images cross the bus as uint8 and the CPU does no per-pixel work.
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
    ) -> None:
        self.device = resolve_device(device)
        self.dtype = resolve_precision(precision, self.device)
        # Inference-only copy: batch norms folded into their convolutions, channels_last memory
        # format (faster convolutions with oneDNN on the CPU and cuDNN on the GPU).
        model = fold_batchnorm(copy.deepcopy(model).eval()).to(self.device, memory_format=torch.channels_last)
        self.model = torch.compile(model) if compile else model
        self.classes = list(classes)
        self.palette = [list(c) for c in palette]
        self.transform = eval_transform
        self.in_channels = in_channels
        self.device_normalize = device_normalize(eval_transform, self.device)

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
        model = build_model(
            record["model"],
            num_classes=len(record["classes"]),
            in_channels=record["in_channels"],
            **record["model_args"],
        )
        try:
            missing, unexpected = model.load_state_dict(state, strict=False)
        except RuntimeError as exc:  # a tensor of another shape
            raise InputError(
                f"{path}: weights do not fit model {record['model']!r} {record['model_args']}: {exc}"
            ) from exc
        if missing or unexpected:
            raise InputError(
                f"{path}: weights do not fit model {record['model']!r} {record['model_args']}: "
                f"{len(missing)} missing (e.g. {missing[:3]}), {len(unexpected)} unexpected (e.g. {unexpected[:3]}); "
                "written by another segattn version?"
            )
        checkpoint.check_output(path, model, record["in_channels"])  # finite weights can still overflow
        transform = deserialize(record["eval_transform"], f"{path}: eval_transform")
        return cls(
            model, record["classes"], transform, record["palette"], record["in_channels"], device, precision, compile
        )

    def predict(self, inputs: ImageInput | Sequence[ImageInput], **options: Any) -> list[np.ndarray]:
        """Label maps for a path, a folder, a glob, an H×W[×C] uint8/uint16 array, or a list of
        these; one H×W array per image in input order (a folder's or glob's files sorted by
        name): uint8 when there are at most 256 classes, else int32. Options: see `predict_iter`."""
        return list(self.predict_iter(inputs, **options))

    def predict_iter(
        self,
        inputs: ImageInput | Sequence[ImageInput],
        batch_size: int = 8,
        tta: Tta = None,
        scales: Sequence[float] | None = None,
        slide: int | tuple[int, float] | None = None,
        blending: Blending | None = None,
        return_probs: bool = False,
        workers: int = 0,
        skip_errors: bool = False,
    ) -> Iterator[np.ndarray | InputError]:
        """Streams results in input order, one image at a time (for large folders).

        tta: None, "flip" (horizontal flip) or "flip+scales" (flips at every scale of `scales`,
            default (0.75, 1.0, 1.25)); softmax probabilities are averaged over the views.
        slide: (window, overlap), or a window alone (overlap 0.25), for sliding-window inference
            with `blending` weights ("gaussian", default, or "constant"); windows are batched
            `batch_size` at a time on the device; the image is stitched on the GPU when its
            probabilities fit in a quarter of the free memory, else on the CPU. Host memory: the
            image as decoded, the label map, one batch of windows and strips of (K + 1) × window
            × W floats, when the transform has a window-wise form (see
            `segattn.window_transform`); any other transform makes a float32 copy of the image.
        return_probs: yield float32 K×H×W probabilities instead of label maps.
        workers: DataLoader processes that read and transform images while the device computes.
        skip_errors: an input that cannot be read (missing, empty, corrupt, unsuitable) yields its
            InputError in its place and the rest go on; by default it is raised.
        An option that would have no effect (scales without "flip+scales", blending without
        slide) is an InputError, as is a value out of range.
        """
        check_count("batch_size", batch_size)
        if not isinstance(workers, int) or isinstance(workers, bool) or workers < 0:
            raise InputError(f"workers: expected 0 or more DataLoader processes, got {workers!r}")
        if scales is not None and tta != "flip+scales":
            raise InputError(f"scales {list(scales)} apply to tta='flip+scales' only; tta is {tta!r}")
        views = tta_views(tta, DEFAULT_SCALES if scales is None else scales)
        slide = sliding_options(slide, blending)
        pending: list[dict[str, Any]] = []
        for sample in self.samples(inputs, workers, windows=slide is not None, skip_errors=skip_errors):
            if "error" in sample:
                if pending:
                    yield from self.run_batch(pending, views, return_probs)
                    pending = []
                yield InputError(sample["error"])
                continue
            check_scales(sample, views, slide)
            if slide is not None:
                yield self.slide(sample, views, *slide, batch_size, return_probs)
                continue
            if pending and (batch_key(sample) != batch_key(pending[0]) or len(pending) == batch_size):
                yield from self.run_batch(pending, views, return_probs)
                pending = []
            pending.append(sample)
        if pending:
            yield from self.run_batch(pending, views, return_probs)

    @torch.inference_mode()
    def attention(self, image: ImageInput) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """One forward on one image (a path or an H×W[×C] array): its label map, as `predict`
        gives it, and each attention gate's α, float32 H×W in [0, 1] at the image's own size
        (bilinear from the gate's grid), by gate name in the network's order."""
        network = getattr(self.model, "_orig_mod", self.model)  # under torch.compile
        if "return_attention" not in inspect.signature(network.forward).parameters:
            raise InputError(f"attention: {type(network).__name__} has no attention maps to return")
        sample = self.input_images([one_image(image)])[0]
        x = self.normalized(sample["tensor"][None].to(self.device)).contiguous(memory_format=torch.channels_last)
        with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype != torch.float32):
            logits, maps = self.model(x, return_attention=True)
        size = tuple(sample["size"])
        alphas = {
            name: F.interpolate(a.float(), size=size, mode="bilinear", align_corners=False)[0, 0].cpu().numpy()
            for name, a in maps.items()
        }
        return self.finish(logits.float(), sample, return_probs=False), alphas

    def input_images(self, items: list[ImageInput], windows: bool = False, skip_errors: bool = False) -> InputImages:
        """The items as a Dataset: transformed on the CPU, or raw when the device normalises, or
        (windows, for the sliding window) as decoded with their window-wise transform."""
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

    def run_batch(self, samples: list[dict[str, Any]], views: list[tuple[float, bool]], return_probs: bool):
        batch = torch.stack([s["tensor"] for s in samples]).to(self.device, non_blocking=True)
        # one view and labels wanted: argmax of the logits, no softmax pass needed
        probs = self.probabilities(batch, views, softmax=return_probs or len(views) > 1)
        for sample, p in zip(samples, probs, strict=True):
            yield self.finish(p[None], sample, return_probs)

    def slide(
        self,
        sample: dict[str, Any],
        views: list[tuple[float, bool]],
        window: int,
        overlap: float,
        blending: Blending,
        batch_size: int,
        return_probs: bool,
    ) -> np.ndarray:
        """A sample of `samples(..., windows=True)` through the sliding window: `finish`'s result.
        Label maps are filled band by band (`sliding_bands`); probabilities, and the result of a
        transform that resized, are stitched whole first."""
        normalize = sample.get("normalize")
        image = sample["tensor"][None] if normalize is None else sample["tensor"].permute(2, 0, 1)[None]
        stitch = stitch_device(self.device, len(self.classes), image.shape[-2:])
        if normalize is None:  # transformed whole: windows are cut where the result is summed
            image = image.to(stitch)
        else:  # as decoded: windows are cut on the host and normalised on the device
            normalize = normalize.to(self.device)
        options = (window, overlap, batch_size, blending, self.device, stitch)
        predict = functools.partial(self.probabilities, views=views, normalize=normalize)
        if return_probs or tuple(image.shape[-2:]) != tuple(sample["size"]):
            return self.finish(sliding_window(image, predict, *options), sample, return_probs)
        labels = np.empty(sample["size"], self.label_dtype)
        for top, band in sliding_bands(image, predict, *options):
            labels[top : top + band.shape[2]] = self.label_map(band)
        return labels

    @torch.inference_mode()
    def probabilities(
        self,
        batch: Tensor,
        views: list[tuple[float, bool]],
        softmax: bool = True,
        normalize: PixelNormalize | None = None,
    ) -> Tensor:
        """Softmax probabilities float32 N×K×h×w of a batch from `input_images` on the device,
        averaged over the TTA views (scale, flip); softmax=False (one view only) gives the
        logits, whose argmax is the same. normalize: the window-wise transform of a sliding
        window's raw windows (see `InputImages`); default `normalized`."""
        batch = self.normalized(batch) if normalize is None else normalize(batch)
        height, width = batch.shape[-2:]
        autocast = torch.autocast(self.device.type, dtype=self.dtype) if self.dtype != torch.float32 else nullcontext()
        total = None
        for scale, flip in views:
            x = (
                batch
                if scale == 1.0
                else F.interpolate(batch, scale_factor=scale, mode="bilinear", align_corners=False)
            )
            x = x.flip(-1) if flip else x
            x = x.contiguous(memory_format=torch.channels_last)
            with autocast:
                logits = self.forward_whole(x)
            probs = logits.float().softmax(dim=1) if softmax else logits.float()
            probs = probs.flip(-1) if flip else probs
            if probs.shape[-2:] != (height, width):
                probs = F.interpolate(probs, size=(height, width), mode="bilinear", align_corners=False)
            total = probs if total is None else total + probs
        return total / len(views)

    def forward_whole(self, x: Tensor) -> Tensor:
        """The network on a batch; an input too large for the device's kernels is an InputError
        that points to the sliding window."""
        try:
            return self.model(x)
        except RuntimeError as exc:  # torch.OutOfMemoryError is one
            # CUDA kernels index with 32 bits: feature maps of 2**31 elements or more are refused
            if not isinstance(exc, torch.OutOfMemoryError) and "INT_MAX" not in str(exc):
                raise
            raise InputError(
                f"a batch of {tuple(x.shape)} is too large for one forward on {self.device} "
                f"({type(exc).__name__}: {str(exc).splitlines()[0]}); use sliding-window inference: "
                "predict(..., slide=(512, 0.25)) or `segattn infer --slide 512`, or a smaller batch_size"
            ) from exc

    def finish(self, probs: Tensor, sample: dict[str, Any], return_probs: bool) -> np.ndarray:
        """1×K×h×w probabilities → labels (or probabilities) at the input's own size."""
        if tuple(probs.shape[-2:]) != tuple(sample["size"]):  # an eval transform that resized
            probs = F.interpolate(probs, size=tuple(sample["size"]), mode="bilinear", align_corners=False)
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


class InputImages(Dataset):
    """Inputs read and transformed (so that DataLoader workers can do it). raw: the pixels left
    for the device to normalise, C×H×W uint8, or int32 for 16-bit images (torch's uint16 has few
    CUDA kernels). windows (for the sliding window): an image whose transform has a window-wise
    form (`window_normalize`) is left as decoded, "tensor" H×W×C uint8/uint16 (no copy), with
    that form as "normalize"; any other is transformed whole. Either way a 16-bit image must
    suit `transform` (see `check_pixel_depth`). skip_errors: an input that raises an InputError
    gives {"name", "error": message} instead."""

    def __init__(
        self,
        items: list[ImageInput],
        channels: int,
        transform: Any,
        raw: bool = False,
        windows: bool = False,
        skip_errors: bool = False,
    ) -> None:
        self.items, self.channels, self.transform, self.raw, self.windows = items, channels, transform, raw, windows
        self.skip_errors = skip_errors

    def __len__(self) -> int:
        return len(self.items)

    def load(self, index: int) -> np.ndarray:
        """The input as uint8/uint16 H×W×C, before the transform."""
        return load_input(self.items[index], self.channels)

    def name(self, index: int) -> str:
        item = self.items[index]
        return f"array input {item.shape}" if isinstance(item, np.ndarray) else str(item)

    def __getitem__(self, index: int) -> dict[str, Any]:
        try:
            return {"name": self.name(index), **self.prepare(index)}
        except InputError as exc:
            if not self.skip_errors:
                raise
            return {"name": self.name(index), "error": str(exc)}

    def prepare(self, index: int) -> dict[str, Any]:
        image = self.load(index)
        check_pixel_depth(self.transform, image, self.name(index))
        normalize = window_normalize(self.transform, image) if self.windows else None
        if normalize is not None:
            pixels = torch.from_numpy(np.ascontiguousarray(image))
            return {"size": image.shape[:2], "tensor": pixels, "normalize": normalize}
        if self.raw:
            raw = np.ascontiguousarray(image.transpose(2, 0, 1))
            return {
                "size": image.shape[:2],
                "tensor": torch.from_numpy(raw.astype(np.int32, copy=False) if raw.dtype == np.uint16 else raw),
            }
        return {"size": image.shape[:2], "tensor": image_to_tensor(self.transform(image=image)["image"])}


def batch_key(sample: dict[str, Any]) -> tuple[Any, ...]:
    """Samples with equal keys stack into one batch."""
    return sample["tensor"].shape, sample["tensor"].dtype


def fold_batchnorm(module: nn.Module) -> nn.Module:
    """Folds every BatchNorm2d that directly follows a Conv2d inside an nn.Sequential into the
    convolution (eval mode: y = W'x + b' with the running statistics), in place; the norm
    becomes an Identity. Saves a memory-bound pass per norm at inference; outputs are equal up to
    float rounding."""
    for child in module.children():
        if isinstance(child, nn.Sequential):
            for i in range(len(child) - 1):
                conv, norm = child[i], child[i + 1]
                if isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d) and norm.track_running_stats:
                    child[i], child[i + 1] = fuse_conv_bn_eval(conv, norm), nn.Identity()
        fold_batchnorm(child)
    return module


def device_normalize(pipeline: Any, device: torch.device) -> PixelNormalize | None:
    """On a GPU, a pipeline that is one fixed per-pixel step (a mean/std Normalize or a Window; see
    `window_normalize`) as a PixelNormalize on the device, for raw N×C×H×W batches; None otherwise
    (the CPU, per-image normalisations, anything else in the pipeline)."""
    normalize = window_normalize(pipeline, None) if device.type == "cuda" else None
    return None if normalize is None else normalize.to(device)


def stitch_device(device: torch.device, num_classes: int, size: Sequence[int]) -> torch.device:
    """Where a sliding-window result of K×H×W is summed: on the GPU when the sum and its weights
    (K + 1 float32 planes) take at most a quarter of its free memory (one copy per window
    instead of a host transfer), else on the CPU, so that device memory stays bounded by one
    batch of windows however large the image."""
    if device.type != "cuda":
        return torch.device("cpu")
    needed = (num_classes + 1) * size[0] * size[1] * 4
    free, _ = torch.cuda.mem_get_info(device)
    return device if needed <= free // 4 else torch.device("cpu")


def load_input(item: ImageInput, channels: int) -> np.ndarray:
    if isinstance(item, np.ndarray):
        return match_channels(item, channels, f"array input {item.dtype} {item.shape}")
    return read_image(item, channels)


def sliding_options(
    slide: int | tuple[int, float] | None, blending: Blending | None
) -> tuple[int, float, Blending] | None:
    """(window, overlap, blending) from `predict`'s slide and blending, checked; None: whole images."""
    if slide is None:
        if blending is not None:
            raise InputError(f"blending {blending!r} applies to sliding-window inference only; give slide=WINDOW")
        return None
    check_choice("blending", blending, Blending, optional=True)
    if isinstance(slide, int) and not isinstance(slide, bool):
        slide = (slide, DEFAULT_OVERLAP)
    if not isinstance(slide, (tuple, list)) or len(slide) != 2:
        raise InputError(f"slide: expected a window side or (window, overlap), got {slide!r}")
    window, overlap = slide
    if not isinstance(window, int) or window < 1:
        raise InputError(f"slide: expected a positive window side, got {window!r}")
    if not 0 <= overlap < 1:
        raise InputError(f"slide: expected an overlap share in [0, 1), got {overlap!r}")
    return window, float(overlap), blending or "gaussian"


def tta_views(tta: Tta, scales: Sequence[float]) -> list[tuple[float, bool]]:
    """(scale, horizontal flip) pairs: the views whose probabilities are averaged."""
    check_choice("tta", tta, TtaMode, optional=True)
    if tta is None:
        return [(1.0, False)]
    if tta == "flip":
        return [(1.0, False), (1.0, True)]
    if not scales or not all(isinstance(s, (int, float)) and math.isfinite(s) and s > 0 for s in scales):
        raise InputError(f"scales: expected positive finite factors, got {list(scales)}")
    return [(float(s), flip) for s in scales for flip in (False, True)]


def check_scales(sample: dict[str, Any], views: list[tuple[float, bool]], slide: tuple | None) -> None:
    """A TTA scale that shrinks the image (or window) below one pixel is an InputError naming it."""
    smallest = min(scale for scale, _ in views)
    size = sample["size"] if "normalize" in sample else sample["tensor"].shape[-2:]  # as decoded, or transformed
    side = min(size) if slide is None else min(*size, slide[0])
    if side * smallest < 1:
        raise InputError(
            f"{sample['name']}: scale {smallest:g} shrinks its {side}-pixel side to nothing; "
            f"expected scales ≥ {1 / side:.3g}"
        )


def one_image(item: Any) -> ImageInput:
    """`item` if it is one image (an array, or a path that is not a folder or a pattern)."""
    if isinstance(item, np.ndarray):
        return item
    path_like = isinstance(item, (str, os.PathLike))
    if not path_like or Path(item).is_dir() or (glob.has_magic(str(item)) and not Path(item).is_file()):
        raise InputError(f"attention: takes one image file or array, got {item!r}; predict takes folders, globs, lists")
    return item


def expand_inputs(inputs: ImageInput | Sequence[ImageInput]) -> list[ImageInput]:
    """A flat list of arrays and image paths; folders and globs become their image files sorted
    by name."""
    items: Iterable[ImageInput] = [inputs] if isinstance(inputs, (str, os.PathLike, np.ndarray)) else inputs
    expanded: list[ImageInput] = []
    for item in items:
        if isinstance(item, np.ndarray):
            expanded.append(item)
            continue
        path = Path(item)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not files:
                raise InputError(f"{path}: folder holds no images ({', '.join(IMAGE_SUFFIXES)})")
            expanded.extend(files)
        elif path.is_file():
            expanded.append(path)
        elif glob.has_magic(str(item)):
            files = sorted(Path(p) for p in glob.glob(str(item)) if Path(p).suffix.lower() in IMAGE_SUFFIXES)
            if not files:
                raise InputError(f"{item}: the pattern matches no image file")
            expanded.extend(files)
        else:
            raise MissingPathError(f"{path}: no such image file, folder or pattern")
    return expanded


def resolve_device(device: str | torch.device) -> torch.device:
    """ "auto" → the first CUDA GPU if there is one, else the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InputError(f"device: unknown device {device!r}; expected 'auto', 'cpu', 'cuda' or 'cuda:N'") from exc
    if resolved.type not in ("cpu", "cuda"):
        raise InputError(f"device: {device!r} is not supported; expected 'auto', 'cpu', 'cuda' or 'cuda:N'")
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device: {device!r} asked for, but no CUDA GPU is available")
    return resolved


def resolve_precision(precision: Precision, device: torch.device) -> torch.dtype:
    """ "auto" → bf16 on GPUs that support it, else fp16 on a GPU, fp32 on the CPU."""
    check_choice("precision", precision, Precision)
    if precision == "auto":
        if device.type != "cuda":
            return torch.float32
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return DTYPES[precision]
