"""The additive attention gate of Attention U-Net (Oktay et al., 2018) and its multi-gate form."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from segattn.errors import InputError
from segattn.models.blocks import Size, interpolation, layer, make_norm, per_axis
from segattn.models.options import Norm

OPEN_GATE_BIAS = 3.0  # sigmoid(3) ≈ 0.95: gates start open, so training starts as a plain U-Net


class AttentionGate(nn.Module):
    """Additive attention gate, Oktay et al. 2018, eq. 1–2 ("grid attention").

    With x the skip feature (N×C_x×H×W) and g_1..g_m the gating signals (N×C_j×h_j×w_j, coarser):

        θx   = W_θ ∗ x                 strided conv, kernel = stride = `sub_sample` (1, 2 or 4;
                                       or one per axis)
        φ_jg = W_φj ∗ g_j              1×1 conv, resampled bilinearly to θx's grid
        q    = ψ ∗ ReLU(θx + Σ_j φ_jg)  ψ: 1×1 conv to one channel                  (eq. 1)
        α    = sigmoid(q)              resampled bilinearly to H×W                   (eq. 2)
        y    = W(α · x)                W: 1×1 conv + norm; with transform=False, y = α · x

    The paper has one gating signal (m = 1); several (segattn's "multi" gating) are summed
    before the ReLU, each through its own φ_j. `gating_channels` is C_g for one signal or the
    list of C_j. `forward(x, g)` takes a tensor or a list of m tensors and returns
    (y: N×C_x×H×W, α: N×1×H×W in [0, 1]). ψ starts with zero weights and a positive bias, so
    α = sigmoid(3) ≈ 0.95 everywhere at initialisation (the gate starts open), and W's conv as the
    identity, so y starts as norm(0.95·x): training starts as a plain U-Net, its skips re-normalised.
    `transform=False` leaves W out, as MONAI's AttentionBlock does; on DRIVE that cost 0.89 vessel
    Dice and saved no CPU training time (docs/benchmarks.md, "The gates without their W").
    `spatial_dims` 3: the same on N×C×D×H×W (trilinear resampling, α N×1×D×H×W).
    """

    def __init__(
        self,
        skip_channels: int,
        gating_channels: int | Sequence[int],
        inter_channels: int | None = None,
        sub_sample: Size = 2,
        norm: Norm = "batch",
        transform: bool = True,
        spatial_dims: int = 2,
    ) -> None:
        super().__init__()
        if isinstance(sub_sample, bool) or not all(s in (1, 2, 4) for s in per_axis(sub_sample, spatial_dims)):
            raise InputError(f"sub_sample: expected 1, 2 or 4, got {sub_sample!r}")
        gating = [gating_channels] if isinstance(gating_channels, int) else list(gating_channels)
        inter = inter_channels or max(skip_channels // 2, 1)
        conv = layer("Conv", spatial_dims)
        self.sub_sample = sub_sample
        self.mode = interpolation(spatial_dims)
        self.theta = conv(skip_channels, inter, sub_sample, stride=sub_sample, bias=False)
        self.phi = nn.ModuleList(conv(c, inter, 1, bias=True) for c in gating)
        self.psi = conv(inter, 1, 1, bias=True)
        nn.init.zeros_(self.psi.weight)
        nn.init.constant_(self.psi.bias, OPEN_GATE_BIAS)
        self.out = nn.Identity()
        if transform:
            self.out = nn.Sequential(
                conv(skip_channels, skip_channels, 1), make_norm(norm, skip_channels, spatial_dims)
            )
            # a random W would mix the skip's channels before anything is learnt: on DRIVE (100 steps) that
            # made training seed-dependent (docs/benchmarks.md, "Why seed 1 failed")
            nn.init.dirac_(self.out[0].weight)
            nn.init.zeros_(self.out[0].bias)

    def forward(self, x: Tensor, g: Tensor | Sequence[Tensor]) -> tuple[Tensor, Tensor]:
        signals = [g] if isinstance(g, Tensor) else list(g)
        if len(signals) != len(self.phi):
            raise InputError(f"attention gate: expected {len(self.phi)} gating signal(s), got {len(signals)}")
        theta_x = self.theta(x)
        grid = theta_x.shape[2:]
        summed = theta_x
        for phi, signal in zip(self.phi, signals, strict=True):
            summed = summed + F.interpolate(phi(signal), size=grid, mode=self.mode, align_corners=False)
        alpha = self.psi(F.relu(summed)).sigmoid()
        if max(per_axis(self.sub_sample, x.ndim - 2)) > 1:
            alpha = F.interpolate(alpha, size=x.shape[2:], mode=self.mode, align_corners=False)
        return self.out(alpha * x), alpha


class MultiAttentionGate(nn.Module):
    """`count` independent AttentionGates on one skip, their outputs concatenated and fused by a
    1×1 conv + norm + ReLU: the "multi-dimensional attention coefficients" of Oktay et al. 2018
    (sec. 2), the MultiAttentionBlock of their code.

    `forward(x, g)` → (y: N×C_x×H×W, α: N×count×H×W in [0, 1], channel j = gate j; D×H×W in 3-D). The fusing conv
    starts as the mean of the gates' outputs, so like one gate the block starts as an identity.
    """

    def __init__(
        self,
        count: int,
        skip_channels: int,
        gating_channels: int | Sequence[int],
        sub_sample: Size = 2,
        norm: Norm = "batch",
        transform: bool = True,
        spatial_dims: int = 2,
    ) -> None:
        super().__init__()
        self.gates = nn.ModuleList(
            AttentionGate(
                skip_channels,
                gating_channels,
                sub_sample=sub_sample,
                norm=norm,
                transform=transform,
                spatial_dims=spatial_dims,
            )
            for _ in range(count)
        )
        self.combine = nn.Sequential(
            layer("Conv", spatial_dims)(count * skip_channels, skip_channels, 1, bias=False),
            make_norm(norm, skip_channels, spatial_dims),
            nn.ReLU(inplace=True),
        )
        with torch.no_grad():
            mean = torch.eye(skip_channels).repeat(1, count) / count  # C × count·C
            self.combine[0].weight.copy_(mean.reshape(*mean.shape, *(1,) * spatial_dims))

    def forward(self, x: Tensor, g: Tensor | Sequence[Tensor]) -> tuple[Tensor, Tensor]:
        outputs, alphas = zip(*(gate(x, g) for gate in self.gates), strict=True)
        return self.combine(torch.cat(outputs, dim=1)), torch.cat(alphas, dim=1)
