"""segattn: attention-based semantic segmentation.

Public API: AttentionUNet, build_model, Segmenter, SegMetrics, SegmentationTask, SegDataModule,
the data sets in `segattn.data`, `segattn.evaluate` (scoring a Segmenter on a data set) and
`segattn.viz` (overlays, attention maps, curves).
"""

from segattn import data, evaluate, viz
from segattn.data import SegDataModule
from segattn.errors import InputError, MissingPathError
from segattn.inference import Segmenter
from segattn.metrics import SegMetrics, segmentation_scores
from segattn.models import AttentionGate, AttentionUNet, available_models, build_model
from segattn.task import SegmentationTask

__version__ = "0.1.0"

__all__ = [
    "AttentionGate",
    "AttentionUNet",
    "InputError",
    "MissingPathError",
    "SegDataModule",
    "SegMetrics",
    "SegmentationTask",
    "Segmenter",
    "available_models",
    "build_model",
    "data",
    "evaluate",
    "segmentation_scores",
    "viz",
]
