"""Reading and writing images and label maps, with errors that name the file.

Orientation, one rule on every read path: an image or mask that carries an EXIF orientation tag
(phone JPEGs, some TIFF/PNG/WebP) is read as every viewer shows it, the tag applied, as Pillow's
`ImageOps.exif_transpose` does. Training, evaluation, `predict`, `infer` and overlays all read
through `read_image` / `read_mask`, so a mask drawn on the displayed image pairs with it.

Writes are atomic (`segattn.atomic`); label maps and overlays carry a marker (`OUTPUT_MARKER`) so
that a later run recognises its own outputs in a folder it reads (`is_own_output`).
"""

from __future__ import annotations

import gzip
import io
import os
import zlib
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, PngImagePlugin, UnidentifiedImageError

from segattn.atomic import atomic_write, write_bytes
from segattn.errors import InputError, MissingPathError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif", ".webp")
NIFTI_SUFFIXES = (".nii", ".nii.gz")
ITK_SUFFIXES = (".nrrd", ".nhdr", ".mha", ".mhd")
VOLUME_SUFFIXES = NIFTI_SUFFIXES + ITK_SUFFIXES  # read by segattn.data.volume_io
KINDS = {"image": IMAGE_SUFFIXES, "volume": VOLUME_SUFFIXES}  # file kinds by suffix (.nii.gz whole)
# Written into every label map (a PNG text chunk) and overlay (a JPEG comment) segattn writes,
# near the start of the file, where `is_own_output` looks for it.
OUTPUT_MARKER = "written by segattn"
MARKER_WINDOW = 4096  # PIL writes both within the first hundred bytes; NIfTI's descrip is at 148
GZIP_MAGIC = b"\x1f\x8b"
# Any depth, any colour, orientation applied: OpenCV's IMREAD_UNCHANGED would ignore the EXIF
# orientation (and keep alpha, which `match_channels` drops anyway).
DECODE_FLAGS = cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR


def read_image(path: str | os.PathLike, channels: int = 3) -> np.ndarray:
    """Reads an image as H×W×C, C = `channels` (3: RGB, 1: grey), uint8 or uint16 as stored.

    PNG/JPEG/TIFF/BMP/WebP through OpenCV, GIF through Pillow. 8- or 16-bit grey, RGB and RGBA
    are accepted: alpha is dropped, grey is repeated to RGB for channels=3, RGB is converted to
    grey (ITU-R 601 weights) for channels=1.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingPathError(f"{path}: image file not found")
    if channels not in (1, 3):
        raise InputError(f"channels: expected 1 or 3, got {channels}")
    return match_channels(decode(path), channels, str(path))


def match_channels(image: np.ndarray, channels: int, source: str) -> np.ndarray:
    """An H×W, H×W×1, H×W×3 or H×W×4 uint8/uint16 array as H×W×`channels` (see `read_image`)."""
    if image.dtype not in (np.uint8, np.uint16):
        raise InputError(f"{source}: expected uint8 or uint16 pixels, got {image.dtype}")
    if image.ndim < 2 or image.shape[0] == 0 or image.shape[1] == 0:
        raise InputError(f"{source}: the image has no pixels (shape {image.shape})")
    if image.ndim == 3 and image.shape[2] == 4:
        image = image[..., :3]
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim == 2:
        return image[..., None] if channels == 1 else np.repeat(image[..., None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3:
        raise InputError(f"{source}: expected a grey, RGB or RGBA image, got shape {image.shape}")
    if channels == 3:
        return np.ascontiguousarray(image)
    return cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)[..., None]


def decode(path: Path) -> np.ndarray:
    """The stored pixels, RGB order, uint8 or uint16."""
    if path.suffix.lower() == ".gif":
        return read_with_pillow(path, "image")
    # Bytes through Python, decoding by OpenCV: cv2.imread crashes on paths that are not valid
    # UTF-8 (OpenCV 5.0 segfaults on surrogate-escaped names).
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise InputError(f"{path}: cannot read the file ({exc.strerror or exc})") from exc
    return decode_bytes(data, str(path))


def decode_bytes(data: np.ndarray | bytes, source: str) -> np.ndarray:
    """An encoded image's pixels (PNG/JPEG/TIFF/BMP/WebP by OpenCV, GIF by Pillow), RGB order,
    uint8 or uint16, as `read_image` decodes a file; `source` names it in errors."""
    if len(data) == 0:
        raise InputError(f"{source}: the file is empty (0 bytes); expected an image")
    if bytes(data[:4]) == b"GIF8":
        return read_with_pillow(io.BytesIO(bytes(data)), "image", source)
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), DECODE_FLAGS)
    except cv2.error as exc:
        raise InputError(f"{source}: cannot decode as an image ({str(exc).strip().splitlines()[-1]})") from exc
    if image is None:
        raise InputError(f"{source}: cannot decode as an image (corrupt or unsupported format)")
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB, dst=image)  # in place: a large scan is held once
    return image


def read_mask(path: str | os.PathLike) -> np.ndarray:
    """Reads a label image as stored: H×W integer values (palette PNGs give their indices).

    Through Pillow, which keeps palette-PNG indices and 16-bit values; GIF masks give their grey
    values; RGB label images are rejected, since their colours are not class indices.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingPathError(f"{path}: mask file not found")
    mask = read_with_pillow(path, "mask")
    if mask.ndim != 2:
        raise InputError(f"{path}: expected a single-channel label image, got shape {mask.shape}")
    return mask


def read_with_pillow(path: Path | io.BytesIO, what: str, source: str | None = None) -> np.ndarray:
    """A file's (or in-memory file's, named `source` in errors) pixels through Pillow."""
    try:
        with Image.open(path) as stored:
            image = ImageOps.exif_transpose(stored)  # the module's orientation rule
            if image.mode == "P" and what == "image":
                image = image.convert("RGB")
            elif image.mode == "1" or (image.mode == "P" and stored.format == "GIF"):
                # GIF stores every image through a palette, so its indices mean nothing: take the
                # grey value. (A palette PNG keeps its indices: those are the labels.)
                image = image.convert("L")
            return np.array(image)
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as exc:
        raise InputError(f"{source or path}: cannot decode as an {what} ({exc})") from exc


def write_label_map(path: str | os.PathLike, mask: np.ndarray, palette: list[list[int]]) -> None:
    """Saves an H×W integer label map as PNG, read back exactly by `read_mask`: labels 0–255 as a
    palette PNG (pixel values are the labels; viewers show the palette's colours), labels up to
    65535 (more than 256 classes) as a 16-bit grey PNG. Other values are refused, never wrapped."""
    with atomic_write(path) as temporary:
        temporary.write_bytes(label_map_png(mask, palette, str(path)))


def label_map_png(mask: np.ndarray, palette: list[list[int]], source: str = "label map") -> bytes:
    """The PNG file of an H×W integer label map, as `write_label_map` writes it."""
    low, high = int(mask.min()), int(mask.max())
    if low < 0 or high > 65535 or mask.dtype.kind not in "iu":
        raise InputError(f"{source}: a PNG label map holds integer labels 0..65535, got {mask.dtype} {low}..{high}")
    if high <= 255:
        image = Image.fromarray(mask.astype(np.uint8, copy=False), mode="P")
        flat = [v for colour in palette[:256] for v in colour]
        image.putpalette(flat + [255] * (768 - len(flat)))
    else:
        image = Image.fromarray(mask.astype(np.uint16))
    info = PngImagePlugin.PngInfo()
    info.add_text("Software", OUTPUT_MARKER)
    encoded = io.BytesIO()
    image.save(encoded, format="PNG", pnginfo=info)
    return encoded.getvalue()


def write_overlay(path: str | os.PathLike, image: np.ndarray) -> None:
    """Saves an RGB uint8 H×W×3 overlay as JPEG (quality 95) with segattn's marker."""
    with atomic_write(path) as temporary:
        Image.fromarray(image).save(temporary, format="JPEG", quality=95, comment=OUTPUT_MARKER)


def is_own_output(path: str | os.PathLike) -> bool:
    """Whether the file is a label map or overlay that segattn wrote (it carries the marker near
    its start; a NIfTI label volume in its header's `descrip`); read without decoding the pixels.
    A gzip file (.nii.gz) is looked into through gzip: its first MARKER_WINDOW bytes unpacked."""
    try:
        with open(path, "rb") as file:
            start = file.read(MARKER_WINDOW)
        if start.startswith(GZIP_MAGIC):
            with gzip.open(path, "rb") as file:
                start = file.read(MARKER_WINDOW)
        return OUTPUT_MARKER.encode() in start
    except (OSError, EOFError, zlib.error):  # gzip.BadGzipFile is an OSError
        return False


def write_image(path: str | os.PathLike, image: np.ndarray) -> None:
    """Saves an RGB (H×W×3) or grey (H×W or H×W×1) uint8/uint16 image (format from the suffix)."""
    path = Path(path)
    pixels = image[..., ::-1] if image.ndim == 3 and image.shape[2] == 3 else image
    try:
        ok, encoded = cv2.imencode(path.suffix, np.ascontiguousarray(pixels))
    except cv2.error:
        ok = False
    if not ok:
        raise InputError(f"{path}: could not encode the image as {path.suffix!r} (unknown suffix?)")
    write_bytes(path, encoded.tobytes())  # through Python, like read_image: any file name works
