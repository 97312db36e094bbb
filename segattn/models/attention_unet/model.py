"""AttentionUNet: a U-Net whose skip connections pass through additive attention gates."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from segattn.errors import InputError, check_choice, check_count, check_flag
from segattn.models.attention import NonLocal
from segattn.models.attention_unet.decoder import AttentionUNetDecoder
from segattn.models.attention_unet.heads import DeepSupervisionHead
from segattn.models.base import SegmentationNetwork
from segattn.models.blocks import layer, per_axis
from segattn.models.encoders import build_encoder
from segattn.models.options import (
    BottleneckAttention,
    ChannelAttention,
    Downsample,
    Gating,
    Norm,
    SpatialAttention,
    SpatialDims,
    Upsample,
)
from segattn.models.padding import crop, crop_to_input, pad_to_multiple

SMP_DECODER_WIDTHS = (16, 32, 64, 128, 256)  # finest first; smp Unet's decoder_channels reversed


class AttentionUNet(SegmentationNetwork):
    """Attention U-Net (Oktay et al. 2018, "Attention U-Net: Learning Where to Look for the
    Pancreas") for 2-D and 3-D semantic segmentation, with the multi-scale, channel, spatial and
    self-attention options listed below. Every option is a plain JSON value.

    Args:
        in_channels: image channels (1 grey, 3 RGB, ...).
        num_classes: K, the number of output channels (background included).
        encoder: "native", the U-Net's own conv encoder (Ronneberger et al. 2015), or an smp
            encoder name ("resnet34", "efficientnet-b0", "mit_b0", "tu-…"); smp encoders give
            no stride-1 skip (theirs is the input), mit_b* none at stride 2 either.
        widths: native encoder only: channels per level, finest first (default 32, 64, 128,
            256, 512); depth = len(widths) - 1 poolings.
        encoder_depth: smp encoders only: levels below the input, 1–5 (default 5, stride 32).
        encoder_weights: smp encoders only: None (random init), "imagenet" (or another smp
            weights name; downloaded on first use), or a local file holding the encoder's
            state_dict for 3 input channels (torch.save or .safetensors, smp's format).
        decoder_widths: channels of each decoder level, finest first, one per level below the
            bottleneck (default: the native widths without the last; 16, 32, 64, 128, 256 for
            smp encoders).
        gates: False gives the plain U-Net of the same widths (the ablation baseline; the gate
            options are then unused).
        gate_finest: also gate the finest skip (the paper does not).
        sub_sample: θ's stride in each gate (1, 2 or 4), Oktay et al. eq. 1.
        gate_transform: each gate's output transform W (1×1 conv + norm on the gated skip, as
            Oktay et al.); False gives α·x alone, as MONAI's AttentionUnet (see AttentionGate).
        gating: the gating signal of each gate: "coarser" (the next-coarser decoder output, as
            in the paper's code), "bottleneck" (the bottleneck feature, the paper's fig. 1), or
            "multi" (the bottleneck and every coarser decoder output, each through its own φ
            and summed before ψ's ReLU; see AttentionGate).
        gates_per_skip: gates per gated skip; > 1 fuses their outputs by 1×1 conv + norm + ReLU
            (the paper's multi-dimensional attention, sec. 2; MultiAttentionGate).
        deep_supervision: a 1×1 head at every decoder scale, upsampled and fused into the main
            output (the paper's dsv; DeepSupervisionHead); `forward(x, return_deep=True)` also
            gives the per-scale logits for per-scale losses (losses.DeepSupervisionLoss).
        channel_attention: None, "se" (Hu et al. 2018, eq. 2–4) or "scse" (Roy et al. 2018) after
            every decoder block.
        spatial_attention: None or "cbam" (Woo et al. 2018, eq. 3) after every decoder block,
            after the channel attention.
        bottleneck_attention: None or "nonlocal" (Wang et al. 2018, embedded Gaussian, eq. 1, 3
            and 6; starts as the identity) on the bottleneck feature.
        norm: "batch", "instance" or "group" in the native encoder, the decoder and the gates.
        upsample: how a decoder level takes the coarser output: "reduce" (default; a 1×1 conv
            + norm + ReLU to the level's width at the coarse resolution, then bilinear
            upsampling: the U-Net's channel-halving up-convolution, about a third fewer decoder
            FLOPs), "full" (bilinear upsampling of all its channels, as in Oktay et al.'s
            reference code) or "transposed" (a learned 3×3 stride-2 transposed conv + norm +
            ReLU to the level's width, as MONAI's AttentionUnet).
        downsample: native encoder only: "pool" (2×2 max-pool between levels, Ronneberger et
            al.) or "conv" (the first conv of each level has stride 2, as MONAI's AttentionUnet).
        decoder_convs: 3×3 conv + norm + ReLU layers in each decoder block: 2 (U-Net) or 1 (as
            MONAI's AttentionUnet; about a fifth fewer FLOPs).
        spatial_dims: 2 (images, N×C×H×W) or 3 (volumes, N×C×D×H×W; native encoder only). Every
            option above has its 3-D form: 3×3×3 convs, 3-D norms and pooling, trilinear
            resampling, gates and attention blocks over D×H×W. Not with `multiscale`.
        strides: native encoder only: one per downsampling (len(widths) - 1), each an int (every
            axis) or one int per axis, e.g. [[1, 2, 2], [2, 2, 2]] (D, H, W; nnU-Net's plans for
            anisotropic voxels); default 2 everywhere. With `downsample="pool"` the pool's window.
            The gate at level i sub-samples θ by `sub_sample` on the axes that strides[i] steps.
        kernel_sizes: native encoder only: the conv kernel of each level (len(widths)), an odd
            int or one per axis, e.g. [[1, 3, 3], [3, 3, 3], [3, 3, 3]]; default 3. Level i's
            decoder block uses kernel_sizes[i].

    `forward(x)`: x float N×C×H×W, any H×W → logits float N×K×H×W (padded to `output_stride`
    inside, cropped back), in train and eval mode; N×C×D×H×W → N×K×D×H×W in 3-D (the maps
    below N×1×d_i×h_i×w_i). Extra outputs follow in this order:
    `return_attention=True` adds {gate name: α float N×1×h_i×w_i in [0, 1]} ("gate{i}" at
    level i's stride: 2**i, or the product of strides[:i] per axis; "gate{i}.{j}" for gate j of
    several); `return_deep=True` (deep_supervision
    only) adds [per-scale logits N×K×H×W, finest first]. So: logits; (logits, maps);
    (logits, deep); (logits, maps, deep).

    Declares (see SegmentationNetwork): returns_attention (maps empty with gates=False),
    deep_supervision as built, output_stride: the encoder's stride and each gate's θ grid (an
    int, or per axis where `strides` make it differ), spatial_dims.
    The options after `num_classes` are keyword-only.
    """

    returns_attention = True

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 2,
        *,
        encoder: str = "native",
        widths: Sequence[int] | None = None,
        gates: bool = True,
        gate_finest: bool = False,
        sub_sample: int = 2,
        norm: Norm = "batch",
        encoder_weights: str | None = None,
        encoder_depth: int | None = None,
        decoder_widths: Sequence[int] | None = None,
        gating: Gating = "coarser",
        gates_per_skip: int = 1,
        deep_supervision: bool = False,
        channel_attention: ChannelAttention | None = None,
        spatial_attention: SpatialAttention | None = None,
        bottleneck_attention: BottleneckAttention | None = None,
        upsample: Upsample = "reduce",
        downsample: Downsample = "pool",
        decoder_convs: int = 2,
        gate_transform: bool = True,
        spatial_dims: SpatialDims = 2,
        strides: Sequence[int | Sequence[int]] | None = None,
        kernel_sizes: Sequence[int | Sequence[int]] | None = None,
    ) -> None:
        super().__init__()
        check_choice("spatial_dims", spatial_dims, SpatialDims)
        check_choice("gating", gating, Gating)
        check_choice("upsample", upsample, Upsample)
        check_choice("bottleneck_attention", bottleneck_attention, BottleneckAttention, optional=True)
        check_count("gates_per_skip", gates_per_skip)
        check_count("decoder_convs", decoder_convs)
        for key, flag in [
            ("gates", gates),
            ("gate_finest", gate_finest),
            ("deep_supervision", deep_supervision),
            ("gate_transform", gate_transform),
        ]:
            check_flag(key, flag)
        self.encoder, channels = build_encoder(
            encoder,
            in_channels,
            widths=widths,
            depth=encoder_depth,
            weights=encoder_weights,
            norm=norm,
            downsample=downsample,
            spatial_dims=spatial_dims,
            strides=strides,
            kernel_sizes=kernel_sizes,
        )
        self.spatial_dims = spatial_dims
        levels = len(channels) - 1
        if decoder_widths is None:
            decoder_widths = channels[:-1] if encoder == "native" else SMP_DECODER_WIDTHS[:levels]
        decoder_widths = tuple(decoder_widths)
        if len(decoder_widths) != levels or min(decoder_widths) < 1:
            raise InputError(
                f"decoder_widths: expected {levels} positive channel counts (one per decoder level, finest first), "
                f"got {list(decoder_widths)}"
            )
        self.bottleneck = (
            NonLocal(channels[-1], norm, spatial_dims) if bottleneck_attention == "nonlocal" else nn.Identity()
        )
        level_strides = getattr(self.encoder, "level_strides", None) or [(2**i,) * 2 for i in range(levels + 1)]
        steps = [tuple(b // a for a, b in zip(*level_strides[i : i + 2], strict=True)) for i in range(levels)]
        self.decoder = AttentionUNetDecoder(
            channels[:-1],
            channels[-1],
            decoder_widths,
            gates=gates,
            gate_finest=gate_finest,
            sub_sample=sub_sample,
            norm=norm,
            gating=gating,
            gates_per_skip=gates_per_skip,
            channel=channel_attention,
            spatial=spatial_attention,
            upsample=upsample,
            convs=decoder_convs,
            gate_transform=gate_transform,
            spatial_dims=spatial_dims,
            steps=steps,
            kernel_sizes=getattr(self.encoder, "kernel_sizes", None),
        )
        self.deep_supervision = deep_supervision
        self.head = (
            DeepSupervisionHead(decoder_widths, num_classes, spatial_dims)
            if deep_supervision
            else layer("Conv", spatial_dims)(decoder_widths[0], num_classes, 1)
        )
        self.num_classes = num_classes
        self.in_channels = in_channels
        # each axis is padded to a multiple of this: the encoder's stride, and each gate's θ grid
        grids = [per_axis(self.encoder.output_stride, spatial_dims)]
        grids += [
            tuple(a * t for a, t in zip(level_strides[i], self.decoder.theta_strides[i], strict=True))
            for i in self.decoder.gated_levels
        ]
        stride = tuple(max(axis) for axis in zip(*grids, strict=True))
        self.output_stride = stride[0] if len(set(stride)) == 1 else stride

    def forward(self, x: Tensor, return_attention: bool = False, return_deep: bool = False) -> Tensor | tuple:
        """logits, or (logits, maps), (logits, deep), (logits, maps, deep); see the class docstring."""
        if x.ndim != 2 + self.spatial_dims or x.shape[1] != self.in_channels:
            axes = "×D×H×W" if self.spatial_dims == 3 else "×H×W"
            raise InputError(f"expected input N×{self.in_channels}{axes}, got shape {tuple(x.shape)}")
        if return_deep and not self.deep_supervision:
            raise InputError("return_deep: the model was built with deep_supervision=False")
        size = x.shape[2:]
        padded = pad_to_multiple(x, self.output_stride)
        features = list(self.encoder(padded))
        features[-1] = self.bottleneck(features[-1])
        outputs, maps = self.decoder(features)
        if self.deep_supervision:
            logits, deep = self.head(outputs, padded.shape[2:])
        else:
            logits, deep = self.head(outputs[0]), []
        result: tuple = (crop(logits, *size),)
        if return_attention:
            result += ({name: crop_to_input(a, padded.shape[2:], size) for name, a in maps.items()},)
        if return_deep:
            result += ([crop(d, *size) for d in deep],)
        return result if len(result) > 1 else result[0]
