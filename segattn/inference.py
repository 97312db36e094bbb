"""Segmenter: label maps from a checkpoint, for images of any size, with nothing but the file."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from segattn import checkpoint
from segattn.data.io import IMAGE_SUFFIXES, match_channels, read_image
from segattn.data.transforms import deserialize
from segattn.errors import InputError, MissingPathError
from segattn.models import build_model

ImageInput = str | os.PathLike | np.ndarray


class Segmenter:
    """Runs a trained network on images: `predict(inputs)` → H×W label maps at each input's size.

    Images go through the checkpoint's evaluation transform; images of the same size are
    batched together (the network pads to its stride and crops back).
    """

    def __init__(
        self,
        model: nn.Module,
        classes: Sequence[str],
        eval_transform: object,
        palette: Sequence[Sequence[int]],
        in_channels: int = 3,
        device: str | torch.device = "auto",
    ) -> None:
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.classes = list(classes)
        self.palette = [list(c) for c in palette]
        self.transform = eval_transform
        self.in_channels = in_channels

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, device: str | torch.device = "auto") -> Segmenter:
        """Loads a checkpoint written by SegmentationTask; needs no other file."""
        record, state = checkpoint.load(path)
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
        return cls(
            model,
            record["classes"],
            deserialize(record["eval_transform"]),
            record["palette"],
            record["in_channels"],
            device,
        )

    @torch.inference_mode()
    def predict(self, inputs: ImageInput | Sequence[ImageInput], batch_size: int = 8) -> list[np.ndarray]:
        """Label maps for a path, a folder, an H×W[×C] uint8/uint16 array, or a list of these.

        Returns one H×W array per image, in input order (a folder's images sorted by name):
        uint8 when there are at most 256 classes, else int32.
        """
        images = [self.load(item) for item in expand_inputs(inputs)]
        results: list[np.ndarray | None] = [None] * len(images)
        by_size: dict[tuple[int, int], list[int]] = {}
        for i, image in enumerate(images):
            by_size.setdefault(image.shape[:2], []).append(i)
        dtype = np.uint8 if len(self.classes) <= 256 else np.int32
        for (h, w), indices in by_size.items():
            for start in range(0, len(indices), batch_size):
                chunk = indices[start : start + batch_size]
                batch = torch.stack([self.to_tensor(images[i]) for i in chunk]).to(self.device)
                logits = self.model(batch)
                if logits.shape[-2:] != (h, w):  # an eval transform that resized the image
                    logits = F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False)
                labels = logits.argmax(dim=1).cpu().numpy().astype(dtype)
                for i, label_map in zip(chunk, labels, strict=True):
                    results[i] = label_map
        return results  # type: ignore[return-value]

    def load(self, item: ImageInput) -> np.ndarray:
        """An input as uint8/uint16 H×W×C with the model's channel count."""
        if isinstance(item, np.ndarray):
            return match_channels(item, self.in_channels, f"array input {item.dtype} {item.shape}")
        return read_image(item, self.in_channels)

    def to_tensor(self, image: np.ndarray) -> torch.Tensor:
        out = self.transform(image=image)["image"]
        out = out if out.ndim == 3 else out[..., None]
        return torch.from_numpy(np.ascontiguousarray(out.transpose(2, 0, 1), dtype=np.float32))


def expand_inputs(inputs: ImageInput | Sequence[ImageInput]) -> list[ImageInput]:
    """A flat list of arrays and image paths; folders become their image files sorted by name."""
    items: Iterable[ImageInput] = [inputs] if isinstance(inputs, (str, os.PathLike, np.ndarray)) else inputs
    expanded: list[ImageInput] = []
    for item in items:
        if isinstance(item, np.ndarray):
            expanded.append(item)
            continue
        path = Path(item)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not files:
                raise InputError(f"{path}: folder holds no images ({', '.join(IMAGE_SUFFIXES)})")
            expanded.extend(files)
        elif path.exists():
            expanded.append(path)
        else:
            raise MissingPathError(f"{path}: no such image file or folder")
    return expanded


def resolve_device(device: str | torch.device) -> torch.device:
    """ "auto" → the first CUDA GPU if there is one, else the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)
