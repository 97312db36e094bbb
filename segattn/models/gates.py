"""The additive attention gate of Attention U-Net (Oktay et al., 2018)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from segattn.errors import InputError
from segattn.models.blocks import Norm, make_norm

OPEN_GATE_BIAS = 3.0  # sigmoid(3) ≈ 0.95: gates start open, so training starts as a plain U-Net


class AttentionGate(nn.Module):
    """Additive attention gate, Oktay et al. 2018, eq. 1–2 ("grid attention").

    With x the skip feature (N×C_x×H×W) and g the gating signal (N×C_g×h×w, coarser):

        θx = W_θ ∗ x            strided conv, kernel = stride = `sub_sample` (1, 2 or 4)
        φg = W_φ ∗ g            1×1 conv, resampled bilinearly to θx's grid
        q  = ψ ∗ ReLU(θx + φg)  ψ: 1×1 conv to one channel            (eq. 1)
        α  = sigmoid(q)         resampled bilinearly to H×W            (eq. 2)
        y  = W(α · x)           W: 1×1 conv + norm

    `forward(x, g)` returns (y: N×C_x×H×W, α: N×1×H×W in [0, 1]). ψ starts with zero weights
    and a positive bias, so α ≈ 0.95 everywhere at initialisation (the gate starts open).
    """

    def __init__(
        self,
        skip_channels: int,
        gating_channels: int,
        inter_channels: int | None = None,
        sub_sample: int = 2,
        norm: Norm = "batch",
    ) -> None:
        super().__init__()
        if sub_sample not in (1, 2, 4):
            raise InputError(f"sub_sample: expected 1, 2 or 4, got {sub_sample!r}")
        inter = inter_channels or max(skip_channels // 2, 1)
        self.theta = nn.Conv2d(skip_channels, inter, sub_sample, stride=sub_sample, bias=False)
        self.phi = nn.Conv2d(gating_channels, inter, 1, bias=True)
        self.psi = nn.Conv2d(inter, 1, 1, bias=True)
        self.out = nn.Sequential(nn.Conv2d(skip_channels, skip_channels, 1), make_norm(norm, skip_channels))
        nn.init.zeros_(self.psi.weight)
        nn.init.constant_(self.psi.bias, OPEN_GATE_BIAS)

    def forward(self, x: Tensor, g: Tensor) -> tuple[Tensor, Tensor]:
        theta_x = self.theta(x)
        phi_g = F.interpolate(self.phi(g), size=theta_x.shape[-2:], mode="bilinear", align_corners=False)
        alpha = self.psi(F.relu(theta_x + phi_g)).sigmoid()
        if alpha.shape[-2:] != x.shape[-2:]:
            alpha = F.interpolate(alpha, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return self.out(alpha * x), alpha
