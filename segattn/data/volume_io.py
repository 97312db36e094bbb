"""Reading and writing volumes (CT/MR scans and their label maps), with errors that name the file.

Axis convention, one rule everywhere: a volume array is in the file's own voxel axis order
(nibabel's i, j, k; never transposed or resampled when read), called D×H×W. `spacing` is the
voxel size in mm per axis in that order, and `affine` (4×4) maps voxel indices (i, j, k, 1) to
RAS+ world coordinates in mm, as NIfTI and nibabel define it. A 4-D scan's last axis is its
channels (modalities): `image_array` returns it as float32 C×D×H×W.

Formats: NIfTI (.nii, .nii.gz) through nibabel; NRRD (.nrrd, .nhdr), MetaImage (.mha, .mhd) and a
DICOM series (a folder) through SimpleITK, the optional `medical` extra. SimpleITK's arrays come
z, y, x: they are transposed back to the file's i, j, k; its origin/direction/spacing are in
LPS+ and become the RAS+ affine diag(−1, −1, 1) · [direction · diag(spacing) | origin].

Label maps are written (`write_label_volume`) in their reference's own grid and atomically; a
NIfTI label map carries segattn's output marker in its header's `descrip` field, so that
`segattn.data.io.is_own_output` recognises it. `read_grid` reads a reference's grid alone.
"""

from __future__ import annotations

import gzip
import locale
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from segattn.atomic import atomic_write, write_bytes
from segattn.data.folder import apply_lut, label_lut
from segattn.data.io import ITK_SUFFIXES, NIFTI_SUFFIXES, OUTPUT_MARKER, VOLUME_SUFFIXES
from segattn.errors import InputError, MissingPathError

# Single-file formats whose writer takes any file name: MetaImage picks .mha or .mhd + .raw by
# the name's suffix, so it cannot write under atomic_write's temporary name.
ITK_WRITERS = {".nrrd": "NrrdImageIO"}
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])
WHOLE = "a whole, uncorrupted"  # what an unreadable file was expected to be


@dataclass
class Volume:
    """A scan as read: `array` D×H×W (or D×H×W×C) in the file's dtype (NIfTI scaling applied),
    `affine` float64 4×4 voxel → RAS+ mm, `spacing` (mm per axis, D, H, W), `header` the NIfTI
    header to write outputs in the same grid (None for SimpleITK formats), `path` the source."""

    array: np.ndarray
    affine: np.ndarray
    spacing: tuple[float, float, float]
    header: Any
    path: Path

    @property
    def shape(self) -> tuple[int, int, int]:
        """The spatial shape D×H×W."""
        return tuple(int(n) for n in self.array.shape[:3])  # type: ignore[return-value]


def read_volume(path: str | os.PathLike) -> Volume:
    """Reads a NIfTI, NRRD or MetaImage file, or a folder holding one DICOM series (see the
    module docstring for axes and affine). An unreadable, truncated or empty file is an
    InputError naming it; a 3-D scan must have at least one voxel per axis."""
    path = Path(path)
    if not path.exists():
        raise MissingPathError(f"{path}: volume not found", path)
    if path.is_file() and path.stat().st_size == 0:
        raise InputError(f"{path}: the file is empty (0 bytes); expected a volume")
    name = path.name.lower()
    if path.is_file() and name.endswith(NIFTI_SUFFIXES):
        volume = read_nifti(path)
    elif path.is_dir() or name.endswith(ITK_SUFFIXES):
        volume = read_itk(path)
    else:
        raise InputError(
            f"{path}: unknown volume format; expected one of {', '.join(VOLUME_SUFFIXES)} or a DICOM folder"
        )
    check_volume_shape(volume.array, path)
    return volume


def check_volume_shape(array: np.ndarray, source: object) -> None:
    """An InputError naming `source` unless `array` is D×H×W (or D×H×W×C) with a voxel per axis."""
    if array.ndim not in (3, 4) or 0 in array.shape:
        raise InputError(f"{source}: expected a 3-D volume (or 3-D × channels), got shape {array.shape}")


def read_nifti(path: Path, voxels: bool = True) -> Volume:
    """voxels False: the header alone; `array` is then a read-only zero placeholder of the
    volume's shape that takes no memory (np.broadcast_to)."""
    try:
        image = nib.load(path)
        array = np.asanyarray(image.dataobj) if voxels else np.broadcast_to(np.uint8(0), image.shape)
    except Exception as exc:  # nibabel raises ImageFileError, EOFError, OSError, zlib errors, ...
        raise unreadable_nifti(path, exc) from exc
    return nifti_volume(image, array, path)


def nifti_header_size(data: bytes) -> int | None:
    """The header size a NIfTI file starts with, 348 (NIfTI-1) or 540 (NIfTI-2), in either byte
    order; None for bytes that are no NIfTI file."""
    return next((n for order in ("little", "big") if (n := int.from_bytes(data[:4], order)) in (348, 540)), None)


def nifti_from_bytes(data: bytes, name: str) -> Volume:
    """A whole (uncompressed) NIfTI-1 or NIfTI-2 file's bytes as a Volume named `name`, checked
    as `read_volume` checks a file's."""
    try:
        kind = nib.Nifti2Image if nifti_header_size(data) == 540 else nib.Nifti1Image
        image = kind.from_bytes(data)
        array = np.asanyarray(image.dataobj)
    except Exception as exc:  # as in read_nifti
        raise unreadable_nifti(name, exc) from exc
    volume = nifti_volume(image, array, Path(name))
    check_volume_shape(volume.array, name)
    return volume


def unreadable_nifti(source: object, exc: Exception) -> InputError:
    """The one-line error for a NIfTI file nibabel could not read."""
    detail = f"{type(exc).__name__}: {exc}".splitlines()[0]
    return InputError(f"{source}: cannot read the NIfTI file ({detail}); expected {WHOLE} NIfTI volume")


def nifti_volume(image: Any, array: np.ndarray, path: Path) -> Volume:
    """The Volume of a nibabel image and its voxels."""
    if array.ndim == 5 and array.shape[3] == 1:  # NIfTI stores vector data as i, j, k, t=1, c
        array = array[:, :, :, 0]
    zooms = image.header.get_zooms()[:3]
    spacing = tuple(float(z) for z in zooms) + (1.0,) * (3 - len(zooms))
    return Volume(array, image.affine.astype(np.float64), spacing, image.header, path)  # type: ignore[arg-type]


def read_grid(path: str | os.PathLike) -> Volume:
    """The grid of a volume file, as the reference `write_label_volume` writes labels in: a NIfTI
    file's header alone (`read_nifti` without voxels: no voxel is read or held), any other
    format read whole (`read_volume`)."""
    path = Path(path)
    if path.is_file() and path.name.lower().endswith(NIFTI_SUFFIXES):
        return read_nifti(path, voxels=False)
    return read_volume(path)


def sitk_module() -> Any:
    """SimpleITK, imported on first use; an InputError naming the extra when it is missing."""
    try:
        import SimpleITK
    except ImportError:
        raise InputError("reading NRRD, MetaImage or DICOM needs SimpleITK: pip install 'segattn[medical]'") from None
    return SimpleITK


@contextmanager
def kept_locale() -> Iterator[None]:
    """Restores the process locale after SimpleITK: GDCM's DICOM writer leaves it at "C", which
    turns Python's default text encoding into ASCII for the rest of the process."""
    saved = locale.setlocale(locale.LC_ALL)
    try:
        yield
    finally:
        locale.setlocale(locale.LC_ALL, saved)


def read_itk(path: Path) -> Volume:
    sitk = sitk_module()
    try:
        with kept_locale():
            image = read_itk_image(sitk, path)
    except RuntimeError as exc:
        first = next((line for line in str(exc).splitlines() if line.strip()), "")
        raise InputError(f"{path}: cannot read the volume ({first.strip()}); expected {WHOLE} volume") from exc
    if image.GetDimension() != 3:
        raise InputError(f"{path}: expected a 3-D volume, got {image.GetDimension()} dimensions")
    array = sitk.GetArrayFromImage(image)  # z, y, x (, components)
    array = np.ascontiguousarray(array.transpose(2, 1, 0, *range(3, array.ndim)))
    affine = itk_to_affine(image.GetOrigin(), image.GetDirection(), image.GetSpacing())
    return Volume(array, affine, tuple(float(s) for s in image.GetSpacing()), None, path)  # type: ignore[arg-type]


def read_itk_image(sitk: Any, path: Path) -> Any:
    """The SimpleITK image of a file, or of the one DICOM series in a folder."""
    if path.is_dir():
        series = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(path))
        if len(series) != 1:
            listed = f": {', '.join(series)}; split the folder, one series per folder" if series else ""
            raise InputError(f"{path}: expected one DICOM series in the folder, found {len(series)}{listed}")
        reader = sitk.ImageSeriesReader()
        reader.SetFileNames(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(path), series[0]))
        return reader.Execute()
    return sitk.ReadImage(str(path))


def itk_to_affine(origin: Any, direction: Any, spacing: Any) -> np.ndarray:
    """The RAS+ 4×4 affine of an ITK image's LPS+ origin, direction (row-major 3×3) and spacing."""
    affine = np.eye(4)
    affine[:3, :3] = LPS_TO_RAS @ np.reshape(direction, (3, 3)) @ np.diag(spacing)
    affine[:3, 3] = LPS_TO_RAS @ np.asarray(origin, dtype=np.float64)
    return affine


def affine_to_itk(affine: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]]:
    """The inverse of `itk_to_affine`: (origin, direction, spacing) in ITK's LPS+ convention."""
    linear = LPS_TO_RAS @ affine[:3, :3]
    spacing = np.linalg.norm(linear, axis=0)
    direction = linear / spacing
    origin = LPS_TO_RAS @ affine[:3, 3]
    return tuple(origin.tolist()), tuple(direction.ravel().tolist()), tuple(spacing.tolist())


def image_array(volume: Volume) -> np.ndarray:
    """The scan as float32 C×D×H×W (a 3-D scan has C = 1; a 4-D scan's last axis is C)."""
    array = volume.array if volume.array.ndim == 4 else volume.array[..., None]
    return np.ascontiguousarray(np.moveaxis(array, -1, 0), dtype=np.float32)


def check_finite(image: np.ndarray, name: object) -> np.ndarray:
    """`image`, or an InputError naming `name` when a voxel is NaN or infinite (it would turn a
    z-score, and then the loss or the prediction, into NaN)."""
    if not np.isfinite(image).all():
        raise InputError(f"{name}: holds NaN or infinite voxels; expected finite intensities")
    return image


def read_label_volume(
    path: str | os.PathLike, value_map: dict[int, int] | None = None, classes: int | list[str] | None = None
) -> tuple[np.ndarray, Volume]:
    """Reads a label volume: (int64 D×H×W class indices, 255 = ignore; the Volume as read).

    Stored values must be whole numbers (float files holding whole numbers are accepted, as two
    of MSD Hippocampus' are); a fraction is an error naming the file and the value. They are
    mapped as `ImageMaskFolder` maps masks: through `value_map` (stored value 0..65535 → class
    index or 255), else they must be class indices 0..`classes`−1 (0..254 when
    `classes` is None); 255 is not implied, so values of 255 and over need a value_map.
    `classes`: that number, or the class names (an error then names them).
    """
    num_classes = classes if classes is None or isinstance(classes, int) else len(classes)
    volume = read_volume(path)
    raw = volume.array
    if raw.ndim != 3:
        raise InputError(f"{volume.path}: a label volume must be 3-D, got shape {raw.shape}")
    if raw.dtype.kind == "f":
        fraction = raw[(raw != np.round(raw)) | ~np.isfinite(raw)]
        if fraction.size:
            raise InputError(f"{volume.path}: label values must be whole numbers, found {fraction.flat[0]!r}")
    elif raw.dtype.kind not in "iub":
        raise InputError(f"{volume.path}: expected integer labels, got {raw.dtype}")
    low, high = (raw.min(), raw.max()) if raw.size else (0, 0)
    if low < 0 or high > 65535:
        raise InputError(f"{volume.path}: label values must lie in 0..65535, got {low}..{high}")
    if value_map is None and num_classes is not None and high >= num_classes:
        bad = np.unique(raw[raw >= num_classes]).astype(np.int64)[:10].tolist()
        raise InputError(
            f"{volume.path}: label value(s) {bad} outside the {num_classes} classes{class_list(classes)}; expected "
            f"class indices 0..{num_classes - 1} (or a value_map)"
        )
    lut = label_lut(value_map, num_classes if num_classes is not None else 255)
    return apply_lut(lut, raw.astype(np.uint16), volume.path), volume


def class_list(classes: int | list[str]) -> str:
    """ " (0 background, 1 liver, ...)" for class names (the first 10), "" for a count."""
    if isinstance(classes, int):
        return ""
    named = ", ".join(f"{i} {name}" for i, name in enumerate(classes[:10]))
    return f" ({named}{', ...' if len(classes) > 10 else ''})"


def write_label_volume(labels: np.ndarray, reference: Volume, path: str | os.PathLike) -> Path:
    """Writes D×H×W `labels` (uint8, or uint16 when a value exceeds 255) in `reference`'s grid:
    same shape and affine; NIfTI outputs (.nii, .nii.gz) also keep the reference's qform/sform
    codes and orientation (its header, with the label dtype and no intensity scaling); NRRD
    outputs need SimpleITK. The file appears complete or not at all (`segattn.atomic`).
    A shape other than the reference's is an InputError."""
    path = Path(path)
    labels = np.asarray(labels)
    if labels.shape != reference.shape:
        raise InputError(
            f"{path}: labels are {labels.shape} but the reference {reference.path.name} is {reference.shape}"
        )
    if labels.size and (labels.min() < 0 or labels.max() > 65535):
        raise InputError(f"{path}: label values must lie in 0..65535, got {labels.min()}..{labels.max()}")
    data = labels.astype(np.uint16 if labels.size and labels.max() > 255 else np.uint8)
    name = path.name.lower()
    if name.endswith(NIFTI_SUFFIXES):
        write_bytes(path, nifti_bytes(data, reference, gz=name.endswith(".gz")))
    elif (suffix := path.suffix.lower()) in ITK_WRITERS:
        sitk = sitk_module()
        image = sitk.GetImageFromArray(np.ascontiguousarray(data.transpose(2, 1, 0)))
        origin, direction, spacing = affine_to_itk(reference.affine)
        image.SetOrigin(origin), image.SetDirection(direction), image.SetSpacing(spacing)
        with atomic_write(path) as temporary, kept_locale():
            sitk.WriteImage(image, str(temporary), True, imageIO=ITK_WRITERS[suffix])
    else:
        raise InputError(f"{path}: cannot write labels in this format; expected .nii, .nii.gz or .nrrd")
    return path


def nifti_bytes(data: np.ndarray, reference: Volume, gz: bool) -> bytes:
    """`data` as a NIfTI-1 file in the reference's grid (its header where it has one)."""
    if isinstance(reference.header, nib.Nifti1Header):
        header = reference.header.copy()
        kind = nib.Nifti2Image if isinstance(header, nib.Nifti2Header) else nib.Nifti1Image
        image = kind(data, reference.affine, header)
        image.set_qform(header.get_qform(), code=int(header["qform_code"]))
        image.set_sform(header.get_sform(), code=int(header["sform_code"]))
    else:  # a SimpleITK reference: scanner coordinates, as ITK's own NIfTI writer marks them
        image = nib.Nifti1Image(data, reference.affine)
        image.set_qform(reference.affine, code=1)
        image.set_sform(reference.affine, code=1)
    image.header.set_data_dtype(data.dtype)
    image.header.set_slope_inter(1.0, 0.0)
    image.header["cal_min"], image.header["cal_max"] = 0, 0
    image.header["descrip"] = OUTPUT_MARKER.encode()  # 80 bytes at offset 148: `is_own_output` finds it
    raw = image.to_bytes()
    return gzip.compress(raw, compresslevel=6) if gz else raw
