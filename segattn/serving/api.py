"""`segattn serve`'s model on LitServe: one Segmenter per worker (a worker per device), requests
batched across concurrent clients (LitServe's dynamic batching: up to `max_batch_size` requests
that arrive within `batch_timeout` seconds run as one `Segmenter.predict`).

LitServe answers every request of a batch with the same error when decoding or predicting one of
them raises, so nothing here raises for a bad request: an upload that cannot be read becomes a
`Rejection`, carried through the batch and answered alone with its 4xx and one-line reason.
"""

from __future__ import annotations

import base64
import io
from typing import Any

import litserve as ls
import numpy as np
import torch
from fastapi.responses import JSONResponse, Response
from PIL import Image

from segattn.data.io import label_map_png
from segattn.data.volume_io import Volume, nifti_bytes
from segattn.errors import InputError
from segattn.inference import Segmenter
from segattn.serving.defaults import BATCH_TIMEOUT, MAX_BATCH_SIZE, MAX_PIXELS
from segattn.serving.uploads import Rejection, Upload, read_upload


class SegmenterAPI(ls.LitAPI):
    """POST /predict: a multipart form with a file `image` → its label map as a palette PNG (pixel
    value = class index, as `segattn infer` writes it), or with `format=json`: {"name", "height",
    "width", "classes", "areas": {class: pixels}, "label_map": PNG as a data URL, and with
    `attention=true` "attention": {gate: its α as an 8-bit grey PNG data URL, 255 = 1}}.
    A volume network takes a NIfTI file and answers with its label volume as .nii.gz in the
    upload's grid (as `segattn infer` writes it), or JSON: {"name", "shape", "spacing", "classes",
    "areas": {class: voxels}, "millilitres": {class: mL}}."""

    def __init__(
        self,
        record: dict[str, Any],
        state: dict[str, torch.Tensor],
        source: str,
        precision: str = "auto",
        max_pixels: int = MAX_PIXELS,
        max_batch_size: int = MAX_BATCH_SIZE,
        batch_timeout: float = BATCH_TIMEOUT,
    ) -> None:
        super().__init__(max_batch_size=max_batch_size, batch_timeout=batch_timeout, api_path="/predict")
        self.record, self.state, self.source = record, state, source  # loaded once, by the server
        self.precision, self.max_pixels = precision, max_pixels

    def setup(self, device: str) -> None:
        self.segmenter = Segmenter.from_record(self.record, self.state, self.source, device, self.precision)
        # every upload's size is checked against max_pixels before decoding (uploads.decode_image);
        # Pillow's own ceiling would refuse a large allowed image with a warning first
        Image.MAX_IMAGE_PIXELS = None

    def decode_request(self, request):  # unannotated: LitServe then parses the request's form
        """The parsed multipart form of a request → an Upload, or the Rejection to answer with."""
        return read_upload(request, self.segmenter.in_channels, self.max_pixels, self.segmenter.volumes)

    def batch(self, inputs: list[Upload | Rejection]) -> list[Upload | Rejection]:
        return inputs  # images of any sizes: Segmenter.predict batches those of equal size

    def predict(self, x: Any) -> list[dict[str, Any] | Rejection]:
        """One result per request: {"upload", "labels"} (and "alphas"), or its Rejection."""
        requests = x if isinstance(x, list) else [x]  # a single request when batching is off
        results: list[dict[str, Any] | Rejection] = list(requests)
        plain = [i for i, r in enumerate(requests) if isinstance(r, Upload) and not r.attention]
        images = [requests[i].image for i in plain]  # an input the Segmenter refuses (a NaN voxel): its error
        labels = self.segmenter.predict(images, batch_size=max(1, len(plain)), skip_errors=True)
        for i, label in zip(plain, labels, strict=True):
            results[i] = refused(label) if isinstance(label, InputError) else {"upload": requests[i], "labels": label}
        for i, request in enumerate(requests):
            if isinstance(request, Upload) and request.attention:
                try:
                    label, alphas = self.segmenter.attention(request.image)
                except InputError as exc:
                    results[i] = refused(exc)
                    continue
                results[i] = {"upload": request, "labels": label, "alphas": alphas}
        return results if isinstance(x, list) else results[0]

    def unbatch(self, output: list[Any]) -> list[Any]:
        return output

    def encode_response(self, output: dict[str, Any] | Rejection) -> Response:
        if isinstance(output, Rejection):
            return JSONResponse({"detail": output.detail}, status_code=output.status)
        upload, labels = output["upload"], output["labels"]
        if isinstance(upload.image, Volume):
            return self.volume_response(upload, labels)
        png = label_map_png(labels, self.segmenter.palette, upload.name)
        if upload.format == "png":
            return Response(png, media_type="image/png")
        classes = self.segmenter.classes
        counts = np.bincount(labels.ravel(), minlength=len(classes)).tolist()
        answer = {
            "name": upload.name, "height": int(labels.shape[0]), "width": int(labels.shape[1]), "classes": classes,
            "areas": dict(zip(classes, counts, strict=True)), "label_map": data_url(png),
        }  # fmt: skip
        if "alphas" in output:
            answer["attention"] = {gate: data_url(alpha_png(a)) for gate, a in output["alphas"].items()}
        return JSONResponse(answer)

    def volume_response(self, upload: Upload, labels: np.ndarray) -> Response:
        """A volume's label map as .nii.gz in its grid, or its JSON."""
        if upload.format == "png":  # the default: the label map, in the format a volume has
            return Response(nifti_bytes(labels, upload.image, gz=True), media_type="application/gzip")
        classes, voxel_ml = self.segmenter.classes, float(np.prod(upload.image.spacing)) / 1000
        counts = np.bincount(labels.ravel(), minlength=len(classes)).tolist()
        return JSONResponse({
            "name": upload.name, "shape": list(labels.shape), "spacing": list(upload.image.spacing),
            "classes": classes, "areas": dict(zip(classes, counts, strict=True)),
            "millilitres": {c: round(n * voxel_ml, 3) for c, n in zip(classes, counts, strict=True)},
        })  # fmt: skip


def refused(error: InputError) -> Rejection:
    """The 422 of an upload that decoded but that the Segmenter cannot take (its one-line reason)."""
    return Rejection(422, str(error))


def alpha_png(alpha: np.ndarray) -> bytes:
    """A float α map in [0, 1] as an 8-bit grey PNG (255 = 1)."""
    encoded = io.BytesIO()
    Image.fromarray(np.round(np.clip(alpha, 0, 1) * 255).astype(np.uint8)).save(encoded, format="PNG")
    return encoded.getvalue()


def data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
