"""An upload to `segattn serve` read as `Segmenter.predict` reads a file: its size and pixel count
checked before any pixel is decoded, its options checked, and every refusal an HTTP status with
a one-line reason (`Rejection`), answered to that request alone."""

from __future__ import annotations

import io
import zlib
from typing import Any, NamedTuple

import numpy as np
from PIL import Image, UnidentifiedImageError

from segattn.data.io import GZIP_MAGIC, decode_bytes, match_channels
from segattn.data.volume_io import Volume, nifti_from_bytes, nifti_header_size
from segattn.errors import InputError

FORMATS = ("png", "json")
YES, NO = ("true", "1", "yes"), ("false", "0", "no")
READABLE = "PNG, JPEG, TIFF, BMP, GIF or WebP"
NIFTI_HEADROOM = 2**20  # bytes a NIfTI file may hold beyond its voxels (header, extensions)


class Rejection(NamedTuple):
    """A request refused: its HTTP status and the one-line reason."""

    status: int
    detail: str


class Upload(NamedTuple):
    """A decoded request: its file name, H×W×C pixels as `read_image` gives them (a volume
    network: the NIfTI Volume), the response format ("png": the label map, a volume's as
    .nii.gz; "json": areas, the label map and, on request, each gate's α)."""

    name: str
    image: np.ndarray | Volume
    format: str
    attention: bool


def read_upload(form: Any, channels: int, max_pixels: int, volumes: bool = False) -> Upload | Rejection:
    """The upload of a parsed multipart form: a file field `image` (volumes: a .nii or .nii.gz
    file), optional fields `format` (png | json) and `attention` (true | false; JSON, images
    only). max_pixels: an image's W × H, a volume's voxels."""
    file = form.get("image") if hasattr(form, "get") else None
    if file is None or not hasattr(file, "read"):
        return Rejection(400, f"expected a multipart file field `image` holding a {READABLE} image")
    name = getattr(file, "filename", None) or "image"
    format = str(form.get("format") or "png").lower()
    if format not in FORMATS:
        return Rejection(400, f"format {format!r}: expected one of {', '.join(FORMATS)}")
    attention = str(form.get("attention") or "false").lower()
    if attention not in YES + NO:
        return Rejection(400, f"attention {attention!r}: expected true or false")
    if attention in YES and format != "json":
        return Rejection(400, "attention maps come in JSON: add the field format=json")
    if attention in YES and volumes:
        return Rejection(400, "attention maps of volumes are not served; Segmenter.attention gives them")
    data = file.file.read() if hasattr(file, "file") else file.read()
    image = decode_volume(data, name, max_pixels) if volumes else decode_image(data, name, channels, max_pixels)
    return image if isinstance(image, Rejection) else Upload(name, image, format, attention in YES)


def decode_image(data: bytes, name: str, channels: int, max_pixels: int) -> np.ndarray | Rejection:
    """H×W×`channels` pixels of an encoded image, or why not: 400 empty or corrupt, 413 over
    `max_pixels` (read off the header, before decoding: a decompression bomb never expands),
    415 not an image."""
    if not data:
        return Rejection(400, f"{name}: the upload is empty (0 bytes); expected a {READABLE} image")
    try:
        with Image.open(io.BytesIO(data)) as header:  # reads the header only
            width, height = header.size
    except Image.DecompressionBombError as exc:  # Pillow's own ceiling, above any sane max_pixels
        return Rejection(413, f"{name}: {exc}; this server takes at most {max_pixels} pixels")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return Rejection(415, f"{name}: not a {READABLE} image")
    if width * height > max_pixels:
        return Rejection(
            413, f"{name}: {width}×{height} = {width * height} pixels; this server takes at most {max_pixels}"
        )
    try:
        return match_channels(decode_bytes(data, name), channels, name)
    except InputError as exc:
        return Rejection(400, str(exc))


def decode_volume(data: bytes, name: str, max_voxels: int) -> Volume | Rejection:
    """The Volume of a NIfTI upload (.nii, or gzip-compressed .nii.gz), or why not: 400 empty or
    unreadable, 413 over `max_voxels` (a .nii.gz is decompressed only up to what that many voxels
    can hold, so a gzip bomb never expands), 415 not NIfTI."""
    if not data:
        return Rejection(400, f"{name}: the upload is empty (0 bytes); expected a NIfTI volume (.nii, .nii.gz)")
    limit = 8 * max_voxels + NIFTI_HEADROOM  # float64 voxels, the widest NIfTI stores
    if data[:2] == GZIP_MAGIC:
        stream = zlib.decompressobj(wbits=31)
        try:
            data = stream.decompress(data, limit + 1)
        except zlib.error as exc:
            return Rejection(400, f"{name}: cannot decompress ({exc}); expected a whole .nii.gz volume")
        if len(data) > limit:
            return Rejection(413, f"{name}: decompresses past {limit} bytes; this server takes {max_voxels} voxels")
    if len(data) < 348 or nifti_header_size(data) is None:
        return Rejection(415, f"{name}: not a NIfTI volume (.nii, .nii.gz)")
    try:
        volume = nifti_from_bytes(data, name)
    except InputError as exc:
        return Rejection(400, str(exc))
    voxels = int(np.prod(volume.shape))
    if voxels > max_voxels:
        return Rejection(413, f"{name}: {voxels} voxels; this server takes at most {max_voxels}")
    return volume
