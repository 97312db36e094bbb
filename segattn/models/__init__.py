"""Segmentation networks: Attention U-Net, its attention gates, multi-scale attention, and smp
baselines via build_model."""

from segattn.models.attention_unet import AttentionUNet
from segattn.models.base import SegmentationNetwork
from segattn.models.gates import AttentionGate, MultiAttentionGate
from segattn.models.multiscale import MultiScaleAttention
from segattn.models.registry import available_models, build_model

__all__ = [
    "AttentionGate",
    "AttentionUNet",
    "MultiAttentionGate",
    "MultiScaleAttention",
    "SegmentationNetwork",
    "available_models",
    "build_model",
]
