"""ResNeSt (Zhang et al. 2020) and TiedResNeSt (TBC paper, Fig. 4c, Table 1) as detectron2 backbones.

ResNeSt's split-attention bottleneck, built from the ResNeSt paper's description:

* entry 1x1 ``in_channels -> C`` (C = ``bottleneck_width / 64 * out_channels / 4``; cardinality 1,
  as every published ResNeSt);
* split-attention conv: a 3x3 conv ``C -> R*C`` with ``R`` groups (R = radix), norm, ReLU; the sum
  of the R splits is globally pooled, goes through a 1x1 "FC" ``C -> max(R*C/4, 32)`` with bias,
  norm and ReLU, and a 1x1 FC to ``R*C``; a softmax over the radix (sigmoid when R=1) gives the
  weights of the R splits, whose weighted sum is the output (C channels);
* exit 1x1 ``C -> out_channels`` + norm; residual addition, ReLU;
* downsampling blocks: "avd", a 3x3 average pool with the block's stride, before the
  split-attention conv (``fast=True``, ResNeSt-fast) or after it (``fast=False``); the conv itself
  always runs at stride 1. The shortcut is "avg-down": a stride x stride average pool, then the
  1x1 conv + norm;
* deep stem (:class:`DeepStem`): three 3x3 convs ``3 -> w -> w -> 2w`` (w = 32 for ResNeSt-50),
  the first at stride 2, then a 3x3 max pool at stride 2.

ResNeSt's released code also puts a stride-1 3x3 average pool in the first res2 block; ResNeSt's
paper describes avd for downsampling only, so we pool only in strided blocks (no parameters or
FLOPs change).

TiedResNeSt: "we only replace all 3x3 convolution to be TBC with B = 2 as in 1x1 convolution".
With ``B=2`` the entry 1x1 and the split-attention 3x3 become ``TiedBlockConv2d(B=2)``; the 3x3
keeps its R groups inside each block (a TGC, Eq. 4, as TiedResNeXt's 3x3s), so it has B^2 = 4x
fewer parameters and 2x fewer FLOPs. The exit 1x1, the attention FCs and the shortcut stay
standard, and so does the stem: the paper ties bottleneck convolutions only (TiedResNet keeps
ResNet's stem) and the first stem conv reads 3 channels, which B=2 cannot divide.

Counts at 224x224, classification form (BN affine counted, one multiply-add = one FLOP), ours vs
the ResNeSt paper and the TBC paper's Table 1:

* ResNeSt-50-fast (``B=1, fast=True``): 27,483,240 parameters (27.48M) / 4.33 GF vs 27.5M /
  4.34 GF (ResNeSt's paper; the TBC paper gives 4.4); ResNeSt-50 (``fast=False``) 27.48M / 5.37 GF
  vs 27.5M / 5.39 GF. This validates the block.
* TiedResNeSt50-S (``B=2, fast=False``): 15.75M (57% of ResNeSt-50-fast) / 3.46 GF (80%) vs
  16.5M (60%) / 3.6 GF (82%).

The paper calls its baseline both "ResNeSt-50-fast" (Table 1) and "ResNeSt-50-S" (text), so "-S"
does not name a narrower network as it does for TiedResNet. Readings of TiedResNeSt50-S tried
(params M / GFLOPs; RMS relative error against 16.5 / 3.6 in brackets):

* entry + 3x3 tied, avd after the 3x3 (``fast=False``): 15.75 / 3.46 [0.043], our choice. The
  3x3 then runs at the block's input resolution and the tied 3x3 halves that cost, which leaves
  80% of the fast baseline's FLOPs (paper: 82%);
* entry + 3x3 tied on ResNeSt-50-fast: 15.75 / 2.94 [0.134]: the same parameters, but 68% of the
  baseline's FLOPs instead of 82%;
* the 3x3's R radix groups tied to each other (``TiedBlockConv2d(C, R*C, groups=1, B=R)``: half
  the 3x3 parameters, the same FLOPs), entry tied, fast: 18.58 / 3.86 [0.103];
* the 3x3 only tied (entry standard), fast: 19.00 / 3.41 [0.114];
* TiedResNet-S's widening (bottleneck width 72 = 4 x 18 instead of 64): fast 17.77 / 3.35
  [0.074], not fast 17.77 / 4.00 [0.096];
* tying the stem's 32 -> 32 and 32 -> 64 3x3s as well: 0.17 GF fewer, further from 3.6.

No natural reading gives both numbers: tying the entry and the 3x3 gives 15.75M whatever the avd
placement, 0.75M (5%) under the paper's 16.5M. A bottleneck width of 68 (16.74M / 3.72 GF
[0.027], not fast) would come closer, but no ResNeSt uses that width and the paper does not
suggest it.
"""
from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from detectron2.config import CfgNode as CN
from detectron2.layers import Conv2d, ShapeSpec, get_norm
from detectron2.modeling.backbone import BACKBONE_REGISTRY, Backbone
from detectron2.modeling.backbone.fpn import LastLevelMaxPool
from detectron2.modeling.backbone.resnet import CNNBlockBase, ResNet
from fvcore.nn import weight_init

from projects.common.modeling.backbone import RESNET_BLOCKS_PER_STAGE, fpn_from_config

from .layers import TiedBlockConv2d
from .resnet import check_choice, reject_unsupported_resnets_options

# ResNeSt-50 and -101 (He et al.'s bottleneck depths) and their deep-stem widths (ResNeSt paper)
RESNEST_STEM_WIDTH = {50: 32, 101: 64}
RESNEST_BLOCKS_PER_STAGE = {depth: RESNET_BLOCKS_PER_STAGE[depth] for depth in RESNEST_STEM_WIDTH}
ATTENTION_REDUCTION = 4
MIN_ATTENTION_CHANNELS = 32


class SplitAttention(nn.Module):
    """ResNeSt's split attention: weights ``R`` feature-map splits per channel from their pooled
    sum (FC, norm, ReLU, FC; softmax over the radix, sigmoid when R=1) and returns their weighted
    sum. With R >= 2 the output is, per sample and channel, a convex combination of the splits."""

    def __init__(self, channels: int, radix: int = 2, norm="BN"):
        """
        Args:
            channels: channels C of each split; the input has ``radix * C`` channels, split r
                being the contiguous range ``[r*C, (r+1)*C)``.
            radix: number of splits R.
            norm: detectron2 ``get_norm`` name or callable for the norm after the first FC.
                "GN" gives no norm there: on the pooled (N, C', 1, 1) vector GN would normalise
                groups of C'/32 values of one sample (a single value, i.e. a constant, for the
                usual C' = 32), so the FC keeps only its bias.
        """
        super().__init__()
        if radix < 1 or channels < 1:
            raise ValueError(f"radix={radix} and channels={channels} must be positive")
        self.channels, self.radix = channels, radix
        inter_channels = max(radix * channels // ATTENTION_REDUCTION, MIN_ATTENTION_CHANNELS)
        reduce_norm = get_norm("" if norm == "GN" else norm, inter_channels)
        self.reduce = Conv2d(channels, inter_channels, 1, norm=reduce_norm, activation=F.relu)
        self.expand = Conv2d(inter_channels, radix * channels, 1)
        for fc in (self.reduce, self.expand):
            weight_init.c2_msra_fill(fc)

    def attention_weights(self, splits: torch.Tensor) -> torch.Tensor:
        """(N, R, C, 1, 1) weights of the splits ``(N, R*C, H, W)``; they sum to 1 over R >= 2."""
        n = splits.shape[0]
        stacked = splits.reshape(n, self.radix, self.channels, *splits.shape[2:])
        pooled = stacked.sum(dim=1).mean(dim=(2, 3), keepdim=True)
        logits = self.expand(self.reduce(pooled)).reshape(n, self.radix, self.channels, 1, 1)
        return logits.softmax(dim=1) if self.radix > 1 else logits.sigmoid()

    def forward(self, splits: torch.Tensor) -> torch.Tensor:
        if splits.dim() != 4 or splits.shape[1] != self.radix * self.channels:
            raise ValueError(
                f"SplitAttention: expected splits of shape (N, {self.radix * self.channels}, H, W) "
                f"(radix {self.radix} x {self.channels} channels), got {list(splits.shape)}"
            )
        stacked = splits.reshape(splits.shape[0], self.radix, self.channels, *splits.shape[2:])
        return (self.attention_weights(splits) * stacked).sum(dim=1)


class SplitAttentionBottleneckBlock(CNNBlockBase):
    """ResNeSt bottleneck (B=1) or TiedResNeSt bottleneck (B=2, paper Fig. 4c): entry 1x1 ->
    split-attention 3x3 (R groups, then :class:`SplitAttention`) -> exit 1x1, with avd and avg-down
    in downsampling blocks; ``B`` ties the entry 1x1 and the 3x3 (see the module docstring)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        bottleneck_channels: int,
        stride: int = 1,
        radix: int = 2,
        fast: bool = True,
        B: int = 1,
        norm="BN",
    ):
        """
        Args:
            bottleneck_channels: C, the channels of the entry output and of each radix split.
            stride: 1 or 2; downsampling by the avd average pool and the avg-down shortcut.
            radix: number of splits R of the split-attention conv.
            fast: avd pool before the split-attention conv (ResNeSt-fast) instead of after it.
            B: blocks of the tied entry 1x1 and 3x3 (1: ResNeSt; 2: TiedResNeSt).
            norm: detectron2 ``get_norm`` name or callable, for every norm of the block.
        """
        super().__init__(in_channels, out_channels, stride)
        if stride not in (1, 2):
            raise ValueError(f"stride={stride} is not supported: ResNeSt blocks use 1 or 2")
        if bottleneck_channels % (B * radix) or in_channels % B:
            raise ValueError(
                f"B={B} tied blocks of the {radix}-group 3x3 need bottleneck_channels="
                f"{bottleneck_channels} divisible by B * radix = {B * radix} and in_channels="
                f"{in_channels} divisible by B: change the width or use B=1"
            )
        self.fast = fast
        self.entry = TiedBlockConv2d(in_channels, bottleneck_channels, 1, bias=False, B=B)
        self.entry_norm = get_norm(norm, bottleneck_channels)
        self.split_conv = TiedBlockConv2d(bottleneck_channels, radix * bottleneck_channels, 3,
                                          padding=1, groups=radix, bias=False, B=B)
        self.split_norm = get_norm(norm, radix * bottleneck_channels)
        self.attention = SplitAttention(bottleneck_channels, radix, norm)
        self.exit = Conv2d(bottleneck_channels, out_channels, 1, bias=False,
                           norm=get_norm(norm, out_channels))
        if in_channels != out_channels or stride != 1:
            self.shortcut = Conv2d(in_channels, out_channels, 1, bias=False,
                                   norm=get_norm(norm, out_channels))
        else:
            self.shortcut = None
        for conv in (self.entry, self.split_conv, self.exit, self.shortcut):
            if conv is not None:
                weight_init.c2_msra_fill(conv)

    def _avd(self, x: torch.Tensor) -> torch.Tensor:
        """ResNeSt's avd: downsampling by a 3x3 average pool (identity in stride-1 blocks)."""
        return x if self.stride == 1 else F.avg_pool2d(x, 3, self.stride, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu_(self.entry_norm(self.entry(x)))
        if self.fast:
            out = self._avd(out)
        out = self.attention(F.relu_(self.split_norm(self.split_conv(out))))
        if not self.fast:
            out = self._avd(out)
        out = self.exit(out)
        if self.shortcut is None:
            return F.relu_(out + x)
        if self.stride != 1:
            x = F.avg_pool2d(x, self.stride, self.stride, ceil_mode=True, count_include_pad=False)
        return F.relu_(out + self.shortcut(x))


class DeepStem(CNNBlockBase):
    """ResNeSt's deep stem: 3x3 convs ``in -> w`` (stride 2), ``w -> w``, ``w -> 2w``, each with
    norm and ReLU, then a 3x3 max pool at stride 2 (output stride 4, ``2w`` channels)."""

    def __init__(self, in_channels: int = 3, stem_width: int = 32, norm="BN"):
        super().__init__(in_channels, 2 * stem_width, 4)
        self.convs = nn.Sequential(*(
            Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False,
                   norm=get_norm(norm, c_out), activation=F.relu)
            for c_in, c_out, stride in (
                (in_channels, stem_width, 2), (stem_width, stem_width, 1), (stem_width, 2 * stem_width, 1)
            )
        ))
        for conv in self.convs:
            weight_init.c2_msra_fill(conv)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(self.convs(x), kernel_size=3, stride=2, padding=1)


def make_resnest_stages(
    depth: int = 50,
    *,
    B: int = 1,
    fast: bool = True,
    radix: int = 2,
    bottleneck_width: int = 64,
    norm="BN",
    in_channels: int = 64,
    width: float = 1.0,
) -> list:
    """The four stages (res2..res5) of ResNeSt-``depth`` (B=1) or TiedResNeSt (B=2), like
    ``ResNet.make_default_stages``: 256..2048 output channels, strides 1, 2, 2, 2.

    ``bottleneck_width``: ResNeSt's "64d" (res2's C = 64 * bottleneck_width / 64, doubled per
    stage). ``in_channels`` is the stem's out_channels. ``width`` scales every stage's channels
    (1.0: the paper's network; small values give CPU-sized networks).
    """
    if width <= 0:
        raise ValueError(f"width={width} must be positive")
    check_choice("depth", depth, RESNEST_BLOCKS_PER_STAGE)
    stages = []
    for stage, num_blocks in enumerate(RESNEST_BLOCKS_PER_STAGE[depth]):
        out_channels = int(round(256 * 2**stage * width))
        stages.append(
            ResNet.make_stage(
                SplitAttentionBottleneckBlock,
                num_blocks,
                stride_per_block=[1 if stage == 0 else 2] + [1] * (num_blocks - 1),
                in_channels=in_channels,
                out_channels=out_channels,
                bottleneck_channels=int(round(bottleneck_width * 2**stage * width)),
                radix=radix,
                fast=fast,
                B=B,
                norm=norm,
            )
        )
        in_channels = out_channels
    return stages


def build_tied_resnest(
    depth: int = 50,
    B: int = 2,
    fast: bool = False,
    radix: int = 2,
    bottleneck_width: int = 64,
    norm="FrozenBN",
    stem_norm=None,
    freeze_at: int = 2,
    out_features: Sequence[str] = ("res5",),
    in_channels: int = 3,
    width: float = 1.0,
) -> ResNet:
    """TiedResNeSt (default: TiedResNeSt50-S, ``B=2, fast=False``) or ResNeSt (``B=1``;
    ResNeSt-50-fast: ``B=1, fast=True``) as a detectron2 ``ResNet`` backbone with a
    :class:`DeepStem`: outputs res2..res5 with 256..2048 channels at strides 4..32, as detectron2's
    ResNet. ``stem_norm`` defaults to ``norm``; ``freeze_at`` as ``ResNet.freeze`` (0: nothing,
    1: stem, 2: stem + res2, ...); ``width`` scales the stem and every stage."""
    if not 0 <= freeze_at <= 5:
        raise ValueError(f"freeze_at={freeze_at} must be in 0..5 (stem + 4 stages)")
    check_choice("depth", depth, RESNEST_STEM_WIDTH)
    stem_width = int(round(RESNEST_STEM_WIDTH[depth] * width))
    stages = make_resnest_stages(  # first: it validates the arguments
        depth, B=B, fast=fast, radix=radix, bottleneck_width=bottleneck_width, norm=norm,
        in_channels=2 * stem_width, width=width,
    )
    stem = DeepStem(in_channels, stem_width, norm=norm if stem_norm is None else stem_norm)
    return ResNet(stem, stages, out_features=list(out_features), freeze_at=freeze_at)


def add_tied_resnest_config(cfg: CN) -> None:
    """Add ``cfg.MODEL.TIED_RESNEST`` to a detectron2 config: B (1: ResNeSt, 2: TiedResNeSt),
    FAST, RADIX, BOTTLENECK_WIDTH and WIDTH (channel multiplier), defaulting to TiedResNeSt50-S.
    Depth, norm, outputs and freezing are read from ``cfg.MODEL.RESNETS`` and ``cfg.MODEL.BACKBONE``."""
    cfg.MODEL.TIED_RESNEST = CN()
    cfg.MODEL.TIED_RESNEST.B = 2
    cfg.MODEL.TIED_RESNEST.FAST = False
    cfg.MODEL.TIED_RESNEST.RADIX = 2
    cfg.MODEL.TIED_RESNEST.BOTTLENECK_WIDTH = 64
    cfg.MODEL.TIED_RESNEST.WIDTH = 1.0


@BACKBONE_REGISTRY.register()
def build_tied_resnest_backbone(cfg: CN, input_shape: ShapeSpec) -> Backbone:
    """yacs builder (``MODEL.BACKBONE.NAME = "build_tied_resnest_backbone"``).

    Reads MODEL.RESNETS.{DEPTH, NORM, OUT_FEATURES}, MODEL.BACKBONE.FREEZE_AT and
    MODEL.TIED_RESNEST.*. RESNETS options that the ResNeSt block does not have (groups, dilation,
    deformable convs, other stem or res2 widths) are rejected.
    """
    if "TIED_RESNEST" not in cfg.MODEL:
        raise KeyError("cfg.MODEL.TIED_RESNEST is missing: call add_tied_resnest_config(cfg) first")
    resnets = cfg.MODEL.RESNETS
    reject_unsupported_resnets_options(cfg, "TiedResNeSt", num_groups_hint="; ResNeSt's splits are MODEL.TIED_RESNEST.RADIX")
    tied = cfg.MODEL.TIED_RESNEST
    return build_tied_resnest(
        depth=resnets.DEPTH,
        B=tied.B,
        fast=tied.FAST,
        radix=tied.RADIX,
        bottleneck_width=tied.BOTTLENECK_WIDTH,
        width=tied.WIDTH,
        norm=resnets.NORM,
        freeze_at=cfg.MODEL.BACKBONE.FREEZE_AT,
        out_features=resnets.OUT_FEATURES,
        in_channels=input_shape.channels,
    )


@BACKBONE_REGISTRY.register()
def build_tied_resnest_fpn_backbone(cfg: CN, input_shape: ShapeSpec) -> Backbone:
    """yacs builder: TiedResNeSt + FPN with P6 by max-pooling, as detectron2's
    ``build_resnet_fpn_backbone`` (reads MODEL.FPN.*)."""
    return fpn_from_config(cfg, build_tied_resnest_backbone(cfg, input_shape), LastLevelMaxPool())
