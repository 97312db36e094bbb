"""Data sets, Albumentations pipelines and the LightningDataModule."""

from segattn.data.base import SegDataset
from segattn.data.coco import CocoSegmentation
from segattn.data.datamodule import SegDataModule
from segattn.data.folder import ImageMaskFolder
from segattn.data.intensity import check_intensity, ct_statistics, normalize_volume
from segattn.data.patches import VolumePatches
from segattn.data.synthetic import SyntheticShapes, make_synthetic
from segattn.data.volume_io import Volume, read_label_volume, read_volume, write_label_volume
from segattn.data.volumes import Decathlon, VolumeDataset, VolumeFolder
from segattn.labels import IGNORE_INDEX

__all__ = [
    "IGNORE_INDEX",
    "CocoSegmentation",
    "Decathlon",
    "ImageMaskFolder",
    "SegDataModule",
    "SegDataset",
    "SyntheticShapes",
    "Volume",
    "VolumeDataset",
    "VolumeFolder",
    "VolumePatches",
    "check_intensity",
    "ct_statistics",
    "make_synthetic",
    "normalize_volume",
    "read_label_volume",
    "read_volume",
    "write_label_volume",
]
