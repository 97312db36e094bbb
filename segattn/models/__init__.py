"""Segmentation networks: Attention U-Net, its attention gates, and smp baselines via build_model."""

from segattn.models.attention_unet import AttentionUNet
from segattn.models.gates import AttentionGate
from segattn.models.registry import available_models, build_model

__all__ = ["AttentionGate", "AttentionUNet", "available_models", "build_model"]
