"""Data sets, Albumentations pipelines and the LightningDataModule."""

from segattn.data.base import SegDataset
from segattn.data.coco import CocoSegmentation
from segattn.data.datamodule import SegDataModule
from segattn.data.folder import ImageMaskFolder
from segattn.data.synthetic import SyntheticShapes, make_synthetic
from segattn.labels import IGNORE_INDEX

__all__ = [
    "IGNORE_INDEX",
    "CocoSegmentation",
    "ImageMaskFolder",
    "SegDataModule",
    "SegDataset",
    "SyntheticShapes",
    "make_synthetic",
]
