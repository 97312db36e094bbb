"""Channel, spatial and self-attention blocks (the decoder's and the bottleneck's options).

Every block maps N×C×H×W float to N×C×H×W float, or N×C×D×H×W with `spatial_dims` 3 (the
same definitions over three axes: global pooling over D×H×W, a 7×7×7 CBAM kernel, non-local
affinities between all D·H·W positions).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from segattn.errors import check_choice
from segattn.models.blocks import layer, make_norm
from segattn.models.options import ChannelAttention, Norm, SpatialAttention

SE_REDUCTION = 16  # Hu et al. 2018's default ratio r


class SqueezeExcite(nn.Module):
    """Channel attention, Hu et al. 2018, "Squeeze-and-Excitation Networks", eq. 2–4:

    z = GAP(x)                    squeeze: N×C×1×1
    s = σ(W₂ ReLU(W₁ z))          excitation; W₁: C → max(C // 16, 1), W₂: back to C
    y = s ⊙ x                     channel-wise rescaling
    """

    def __init__(self, channels: int, reduction: int = SE_REDUCTION, spatial_dims: int = 2) -> None:
        super().__init__()
        hidden = max(channels // reduction, 1)
        conv = layer("Conv", spatial_dims)
        self.excite = nn.Sequential(
            layer("AdaptiveAvgPool", spatial_dims)(1),
            conv(channels, hidden, 1),
            nn.ReLU(inplace=True),
            conv(hidden, channels, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x * self.excite(x)


class SCSE(nn.Module):
    """Concurrent spatial and channel squeeze & excitation, Roy et al. 2018 ("scSE"):

    y = cSE(x) + sSE(x),  cSE = SqueezeExcite,  sSE(x) = σ(conv1×1(x)) ⊙ x  (N×1×H×W map)
    """

    def __init__(self, channels: int, reduction: int = SE_REDUCTION, spatial_dims: int = 2) -> None:
        super().__init__()
        self.channel = SqueezeExcite(channels, reduction, spatial_dims)
        self.spatial = nn.Sequential(layer("Conv", spatial_dims)(channels, 1, 1), nn.Sigmoid())

    def forward(self, x: Tensor) -> Tensor:
        return self.channel(x) + x * self.spatial(x)


class CBAMSpatial(nn.Module):
    """Spatial attention of CBAM, Woo et al. 2018, eq. 3:

    M_s = σ(conv7×7([mean_c(x); max_c(x)]))    N×1×H×W, from the channel-wise mean and max
    y   = M_s ⊙ x
    """

    def __init__(self, kernel_size: int = 7, spatial_dims: int = 2) -> None:
        super().__init__()
        self.conv = layer("Conv", spatial_dims)(2, 1, kernel_size, padding=kernel_size // 2)

    def forward(self, x: Tensor) -> Tensor:
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return x * self.conv(pooled).sigmoid()


class NonLocal(nn.Module):
    """Embedded-Gaussian non-local block, Wang et al. 2018, "Non-local Neural Networks", eq. 1, 3, 6:

        f_ij = softmax_j(θ(x_i)ᵀ φ(x_j))      θ, φ: 1×1 convs to C' = max(C // 2, 1); N×HW×HW
        y_i  = Σ_j f_ij g(x_j)                g: 1×1 conv to C'
        z_i  = W_z y_i + x_i                  W_z: 1×1 conv to C + norm

    The norm's scale starts at zero, so the block starts as the identity (the paper's init).
    Memory grows as (H·W)², which is why it sits at the bottleneck.
    """

    def __init__(self, channels: int, norm: Norm = "batch", spatial_dims: int = 2) -> None:
        super().__init__()
        inter = max(channels // 2, 1)
        conv = layer("Conv", spatial_dims)
        self.theta = conv(channels, inter, 1)
        self.phi = conv(channels, inter, 1)
        self.g = conv(channels, inter, 1)
        self.out = nn.Sequential(conv(inter, channels, 1, bias=False), make_norm(norm, channels, spatial_dims))
        nn.init.zeros_(self.out[1].weight)

    def forward(self, x: Tensor) -> Tensor:
        n = x.shape[0]
        theta = self.theta(x).flatten(2).transpose(1, 2)  # N×HW×C'
        phi = self.phi(x).flatten(2)  # N×C'×HW
        g = self.g(x).flatten(2).transpose(1, 2)  # N×HW×C'
        y = torch.bmm(torch.bmm(theta, phi).softmax(dim=-1), g)  # N×HW×C'
        return x + self.out(y.transpose(1, 2).reshape(n, -1, *x.shape[2:]))


def channel_attention(kind: ChannelAttention | None, channels: int, spatial_dims: int = 2) -> nn.Module:
    """SqueezeExcite for "se", SCSE for "scse", the identity for None."""
    check_choice("channel_attention", kind, ChannelAttention, optional=True)
    if kind == "se":
        return SqueezeExcite(channels, spatial_dims=spatial_dims)
    if kind == "scse":
        return SCSE(channels, spatial_dims=spatial_dims)
    return nn.Identity()


def spatial_attention(kind: SpatialAttention | None, spatial_dims: int = 2) -> nn.Module:
    """CBAMSpatial for "cbam", the identity for None."""
    check_choice("spatial_attention", kind, SpatialAttention, optional=True)
    return CBAMSpatial(spatial_dims=spatial_dims) if kind == "cbam" else nn.Identity()
