"""Attention U-Net: model (encoder + gated decoder + heads), decoder and deep-supervision head."""

from segattn.models.attention_unet.model import AttentionUNet

__all__ = ["AttentionUNet"]
