"""TiedResNet (TBC paper, Fig. 4a) as detectron2 backbones.

The paper's text leaves the tied bottleneck under-determined; this module implements the reading
that best matches its ResNet-50 parameter counts (Tables 1, 5, 6):

* split width: ``base_width * 2**stage`` (res2: ``base_width``; res5: ``8 * base_width``), like
  ResNeXt's width_per_group and Res2Net's "26w x 4s" naming, which the paper's "4s x 32w" follows;
* entry 1x1: ``TiedBlockConv2d`` with B=2, ``in_channels -> splits * split_width``;
* 3x3: the entry output is cut into ``splits`` contiguous slices of ``split_width`` channels; slice
  j goes through its own 3x3 ``TiedBlockConv2d`` (``split_width -> split_width``, the block's
  stride) with ``B = 2 ** (j % 4)``, i.e. 1, 2, 4, 8, 1, 2, ... (the paper's 1, 2, 4, 8 for four
  splits, repeated for more). With the default pattern, a B that does not divide a narrow stage's
  split width (18-wide res2 splits and B=4/8) falls back to the largest power of two that does;
* mixer: a standard 1x1 conv + norm reading the element-wise sum of the split outputs
  (``split_width -> splits * split_width``; ``mixer="concat"`` reads their concatenation instead,
  ``splits * split_width -> splits * split_width``). Its output is added to the concatenated split
  outputs, so every split channel receives the cross-split information;
* exit 1x1: standard conv ``splits * split_width -> out_channels``; shortcut and stride placement
  as detectron2's ``BottleneckBlock`` with ``stride_in_1x1=False``.

Counts at 224x224 (BN affine counted as parameters, as torchvision; one multiply-add = one FLOP),
ours vs paper: TiedResNet50 22.15M/4.13GF vs 22.0/4.4; -S 13.36M/2.29GF vs 13.9/2.5; concat mixer
25.92M vs 26.7; 2s x 48w 23.44M vs 23.8; 6s x 24w 23.83M vs 23.0; 8s x 18w 21.85M vs 23.8;
TiedResNet101 37.82M/7.89GF vs 39.4/8.6; TiedResNet101-S 21.10M/4.13GF vs 24.0/4.8.

Alternatives tried (analytic search over entry width, split inputs, mixer input/kernel/width/
destination and B patterns; RMS relative error of params and FLOPs over the six ResNet-50
targets in brackets, ours 0.069):
* literal reading, exit conv reading the element-wise sum of the splits: 13.3M;
* mixer 1x1 ``split_width -> split_width`` concatenated as an extra split before the exit:
  23.7M / -S 14.5M / concat 24.7M / R101 40.8M [0.067, but 1.7M off the headline 22.0M and 2M
  off the concat ablation];
* our mixer feeding the exit alone: the same counts, but it discards the split outputs;
* splits reading all entry channels (entry ``-> 64 * 2**stage``): 23.9M / -S 16.0M [0.087];
* 3x3 mixers: >= 24.1M; B patterns 1, 2, 4, ..., 2**(s-1) or 1, 1, 2, 2, 4, 4, ...: the Table 5
  rows 0.3-1.2M further off.

No reading matches every number: the 17 extra res4 blocks of ResNet-101 fix the size of one
res4 tied block at (39.4-22.0)/17 = 1.02M (0.59M for -S), about 0.15M more than entry + splits
+ exit. Any extra layer that grows with the stage width (x4 parameters per stage) then brings
TiedResNet50 to about 23.7M, not 22.0M: the paper's 50- and 101-layer counts cannot both come
from one uniform block. We match ResNet-50 (six numbers) and accept 4% / 12% lower counts for
TiedResNet101 / TiedResNet101-S.

Other Table 1 networks, as options of the same block:
* TiedSENet (``attention="se"``): a ``TiedSE(out_channels, attention_B)`` on the residual branch
  before the addition, SENet's placement. The paper gives no B; its TiedSENet101 - TiedResNet101
  difference, 2.4M for both widths, is what the SE adds. B=2 adds 1.20M (TiedSENet101 39.02M vs
  41.8, -S 22.30M vs 26.4), B=1 (SE) adds 4.78M (42.60M / 25.87M), B=4 0.31M. We use B=2: a tied
  SE, as the name says, and the closer increment (1.2M off vs 2.4M off); B=1 totals are closer
  only because our TiedResNet101 counts are low. Neither matches the paper's +0.4-0.5 GFLOPs (an
  SE costs < 0.01 GFLOPs). ``attention="gcb"`` puts a ``TiedGCB`` (ratio 1/4) there instead: the
  paper applies TiedGCB to ResNet blocks (Table 4); it is not a Table 1 network. The choices are
  ``tied_conv.context.RESIDUAL_ATTENTION_MODULES``, shared with ``ContextBottleneckBlock``.
* TiedResNeXt (``split_groups``): each split's 3x3 TBC becomes a TGC (Eq. 4) with
  ``split_groups`` groups, so ResNeXt's cardinality is ``splits * split_groups``; B is lowered
  until ``B * split_groups`` divides the split width. Table 1's TiedResNeXt101-S (64.0M, 14.6GF),
  named "TiedResNeXt-101-32x8d" in Table A.2, is matched by 4s x 64w with 8 groups per split
  (cardinality 32, 8-wide groups as 32x8d): 64.86M / 13.47GF. The text's -S widths, 4s x 36w,
  give 35-43M for any group count (and cannot hold 8-wide groups).
* TiedResNeSt (ResNeSt's split-attention block with its 3x3 and entry 1x1 as B=2 TBCs) is a
  different block (radix convs, attention FCs, avg-pool downsampling): tied_conv/resnest.py.
"""
from typing import Optional, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from detectron2.config import CfgNode as CN
from detectron2.layers import Conv2d, ShapeSpec, get_norm
from detectron2.modeling.backbone import BACKBONE_REGISTRY, Backbone
from detectron2.modeling.backbone.fpn import LastLevelMaxPool, LastLevelP6P7
from detectron2.modeling.backbone.resnet import BasicStem, CNNBlockBase, ResNet
from fvcore.nn import weight_init

from projects.common.modeling.backbone import RESNET_BLOCKS_PER_STAGE, fpn_from_config

from .context import build_residual_attention
from .layers import TiedBlockConv2d

# the bottleneck depths of ResNet
TIED_RESNET_BLOCKS_PER_STAGE = {depth: RESNET_BLOCKS_PER_STAGE[depth] for depth in (50, 101, 152)}
TIED_RESNET_VARIANT_BASE_WIDTH = {"default": 32, "S": 18}
MIXERS = ("sum", "concat")
ENTRY_BLOCKS = 2


def default_split_blocks(splits: int, split_width: int, groups: int = 1) -> list:
    """The paper's B = 1, 2, 4, 8 for four splits, repeated for more splits (1, 2, 4, 8, 1, 2, ...);
    each B is lowered to the largest power of two such that ``B * groups`` divides ``split_width``
    (18-wide splits; ``groups``: the TGC groups of each split, 1 for TBC)."""
    blocks = []
    for index in range(splits):
        B = 2 ** (index % 4)
        while B > 1 and split_width % (B * groups):
            B //= 2
        blocks.append(B)
    return blocks


class TiedBottleneckBlock(CNNBlockBase):
    """Tied bottleneck (paper Fig. 4a, see the module docstring for the reading of the paper):
    TBC(B=2) 1x1 entry -> ``splits`` 3x3 TBCs on channel slices -> mixer -> standard 1x1 exit,
    plus detectron2's residual shortcut. ``split_groups > 1`` makes the 3x3 TBCs TGCs (TiedResNeXt,
    Fig. 4b); ``attention="se"`` adds a TiedSE before the addition (TiedSENet), ``"gcb"`` a
    TiedGCB."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        split_width: int,
        splits: int = 4,
        split_blocks: Optional[Sequence[int]] = None,
        mixer: str = "sum",
        stride: int = 1,
        norm="BN",
        split_groups: int = 1,
        attention: Optional[str] = None,
        attention_B: int = 1,
    ):
        """
        Args:
            split_width: channels of each 3x3 split.
            splits: number of 3x3 splits; the bottleneck is ``splits * split_width`` wide.
            split_blocks: B of each split's TBC; must divide ``split_width``. None: the paper's
                pattern (:func:`default_split_blocks`).
            mixer: "sum" (the paper's default) or "concat": what the mixer reads.
            stride: stride of the 3x3 splits and the shortcut (detectron2's stride_in_1x1=False).
            norm: any of detectron2's ``get_norm`` names or a callable, for every conv.
            split_groups: groups of each split's 3x3, which becomes a TGC (paper Eq. 4; ResNeXt's
                cardinality is ``splits * split_groups``). 1: TBCs (TiedResNet).
            attention: None or a name in ``tied_conv.context.RESIDUAL_ATTENTION_MODULES``
                ("se": TiedSE, TiedSENet; "gcb": TiedGCB), built as
                ``(out_channels, B=attention_B)`` on the residual branch before the addition.
            attention_B: B of the attention module's tied layers (1: the SE / GCB module).
        """
        super().__init__(in_channels, out_channels, stride)
        if splits < 1 or split_width < 1:
            raise ValueError(f"splits={splits} and split_width={split_width} must be positive")
        if mixer not in MIXERS:
            raise ValueError(f"mixer={mixer!r} is not one of {MIXERS}")
        if split_groups < 1 or split_width % split_groups:
            raise ValueError(
                f"split_groups={split_groups} must be a positive divisor of split_width={split_width}"
            )
        if split_blocks is None:
            split_blocks = default_split_blocks(splits, split_width, split_groups)
        if len(split_blocks) != splits:
            raise ValueError(
                f"split_blocks={list(split_blocks)} gives {len(split_blocks)} B values for "
                f"splits={splits}: give one B per split"
            )
        for index, B in enumerate(split_blocks):
            if B < 1 or split_width % (B * split_groups):
                raise ValueError(
                    f"split {index} has B={B}, which with {split_groups} groups per split does not "
                    f"divide its {split_width} channels: use B * groups dividing {split_width} or "
                    "split_blocks=None (the paper's pattern lowered to divisors)"
                )
        width = splits * split_width
        if in_channels % ENTRY_BLOCKS or width % ENTRY_BLOCKS:
            raise ValueError(
                f"the B={ENTRY_BLOCKS} entry TBC needs even channels, got {in_channels} -> {width}: "
                "use even in_channels and splits * split_width"
            )
        self.split_width = split_width
        self.mixer_input = mixer

        self.entry = TiedBlockConv2d(in_channels, width, 1, bias=False, B=ENTRY_BLOCKS)
        self.entry_norm = get_norm(norm, width)
        self.split_convs = nn.ModuleList(
            TiedBlockConv2d(split_width, split_width, 3, stride=stride, padding=1,
                            groups=split_groups, bias=False, B=B)
            for B in split_blocks
        )
        # One norm over the concatenated splits: per-channel norms (BN) are the same as one per
        # split, and GN's 32 groups can span splits narrower than 32 channels.
        self.split_norm = get_norm(norm, width)
        mixer_in = split_width if mixer == "sum" else width
        self.mixer = Conv2d(mixer_in, width, 1, bias=False, norm=get_norm(norm, width))
        self.exit = Conv2d(width, out_channels, 1, bias=False, norm=get_norm(norm, out_channels))
        self.attention = (
            None if attention is None else build_residual_attention(attention, out_channels, B=attention_B)
        )
        if in_channels != out_channels or stride != 1:
            self.shortcut = Conv2d(
                in_channels, out_channels, 1, stride=stride, bias=False,
                norm=get_norm(norm, out_channels),
            )
        else:
            self.shortcut = None
        for conv in [self.entry, *self.split_convs, self.mixer, self.exit, self.shortcut]:
            if conv is not None:
                weight_init.c2_msra_fill(conv)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu_(self.entry_norm(self.entry(x)))
        slices = torch.split(out, self.split_width, dim=1)
        out = torch.cat([conv(part) for conv, part in zip(self.split_convs, slices)], dim=1)
        out = F.relu_(self.split_norm(out))
        if self.mixer_input == "sum":
            fused = torch.stack(torch.split(out, self.split_width, dim=1)).sum(dim=0)
        else:
            fused = out
        out = F.relu_(out + self.mixer(fused))
        out = self.exit(out)
        if self.attention is not None:
            out = self.attention(out)
        out = out + (x if self.shortcut is None else self.shortcut(x))
        return F.relu_(out)


def check_choice(name: str, value, choices) -> None:
    """Refuse an argument ``name`` whose value is not one of ``choices``, naming them."""
    if value not in choices:
        raise ValueError(f"{name}={value!r} is not supported; use one of {list(choices)}")


def make_tied_resnet_stages(
    depth: int = 50,
    *,
    variant: str = "default",
    splits: int = 4,
    base_width: Optional[int] = None,
    mixer: str = "sum",
    norm="BN",
    in_channels: int = 64,
    split_blocks: Optional[Sequence[int]] = None,
    width: float = 1.0,
    split_groups: int = 1,
    attention: Optional[str] = None,
    attention_B: int = 1,
) -> list:
    """The four stages (res2..res5) of TiedResNet-``depth``, like ``ResNet.make_default_stages``.

    ``base_width`` (res2 split width, doubled per stage) defaults to the variant's: 32 for
    "default" (4s x 32w), 18 for "S" (4s x 18w). ``in_channels`` is the stem's out_channels.
    ``width`` scales every stage's channels and split widths (1.0: the paper's network; the
    CPU configs use 0.25, like ``projects.common.modeling.scaled_resnet_stages`` for ResNet).
    ``split_groups``, ``attention`` and ``attention_B`` go to every ``TiedBottleneckBlock``:
    TiedResNeXt (e.g. base_width=64, split_groups=8: "4s x 64w", cardinality 32) and TiedSENet
    (attention="se"; "gcb" puts a TiedGCB in every block).
    """
    if width <= 0:
        raise ValueError(f"width={width} must be positive")
    check_choice("depth", depth, TIED_RESNET_BLOCKS_PER_STAGE)
    check_choice("variant", variant, TIED_RESNET_VARIANT_BASE_WIDTH)
    check_choice("mixer", mixer, MIXERS)
    if base_width is None:
        base_width = TIED_RESNET_VARIANT_BASE_WIDTH[variant]
    base_width = int(round(base_width * width))
    stages = []
    for stage, num_blocks in enumerate(TIED_RESNET_BLOCKS_PER_STAGE[depth]):
        out_channels = int(round(256 * 2**stage * width))
        stages.append(
            ResNet.make_stage(
                TiedBottleneckBlock,
                num_blocks,
                stride_per_block=[1 if stage == 0 else 2] + [1] * (num_blocks - 1),
                in_channels=in_channels,
                out_channels=out_channels,
                split_width=base_width * 2**stage,
                splits=splits,
                split_blocks=split_blocks,
                mixer=mixer,
                norm=norm,
                split_groups=split_groups,
                attention=attention,
                attention_B=attention_B,
            )
        )
        in_channels = out_channels
    return stages


def build_tied_resnet(
    depth: int = 50,
    variant: str = "default",
    splits: int = 4,
    base_width: Optional[int] = None,
    mixer: str = "sum",
    norm="FrozenBN",
    stem_norm=None,
    freeze_at: int = 2,
    out_features: Sequence[str] = ("res5",),
    in_channels: int = 3,
    split_blocks: Optional[Sequence[int]] = None,
    width: float = 1.0,
    split_groups: int = 1,
    attention: Optional[str] = None,
    attention_B: int = 1,
) -> ResNet:
    """TiedResNet as a detectron2 ``ResNet`` backbone: same stem and output names, strides and
    channels (res2..res5: 256..2048 at strides 4..32) as detectron2's ResNet, so LazyConfig FPN
    models only swap ``bottom_up``. ``stem_norm`` defaults to ``norm``; ``freeze_at`` as
    detectron2's ``ResNet.freeze`` (0: nothing, 1: stem, 2: stem + res2, ...). ``width`` scales
    the stem and every stage (channels then differ from ResNet's by that factor); ``split_groups``,
    ``attention``, ``attention_B``: see ``make_tied_resnet_stages`` (TiedResNeXt, TiedSENet)."""
    if not 0 <= freeze_at <= 5:
        raise ValueError(f"freeze_at={freeze_at} must be in 0..5 (stem + 4 stages)")
    stem_channels = int(round(64 * width))
    stages = make_tied_resnet_stages(  # first: it validates the arguments
        depth, variant=variant, splits=splits, base_width=base_width, mixer=mixer, norm=norm,
        in_channels=stem_channels, split_blocks=split_blocks, width=width,
        split_groups=split_groups, attention=attention, attention_B=attention_B,
    )
    stem = BasicStem(in_channels=in_channels, out_channels=stem_channels,
                     norm=norm if stem_norm is None else stem_norm)
    return ResNet(stem, stages, out_features=list(out_features), freeze_at=freeze_at)


def add_tied_resnet_config(cfg: CN) -> None:
    """Add ``cfg.MODEL.TIED_RESNET`` to a detectron2 config, one key per ``build_tied_resnet``
    option of the tied block: VARIANT, SPLITS, BASE_WIDTH (0: the variant's), MIXER, SPLIT_GROUPS,
    ATTENTION ("": none, as detectron2's empty norm names), ATTENTION_B and WIDTH (the channel
    multiplier of the CPU configs). Depth, norm, outputs and freezing are read from
    ``cfg.MODEL.RESNETS`` and ``cfg.MODEL.BACKBONE``."""
    cfg.MODEL.TIED_RESNET = CN()
    cfg.MODEL.TIED_RESNET.VARIANT = "default"
    cfg.MODEL.TIED_RESNET.SPLITS = 4
    cfg.MODEL.TIED_RESNET.BASE_WIDTH = 0
    cfg.MODEL.TIED_RESNET.MIXER = "sum"
    cfg.MODEL.TIED_RESNET.SPLIT_GROUPS = 1
    cfg.MODEL.TIED_RESNET.ATTENTION = ""
    cfg.MODEL.TIED_RESNET.ATTENTION_B = 1
    cfg.MODEL.TIED_RESNET.WIDTH = 1.0


def reject_unsupported_resnets_options(cfg: CN, backbone_name: str, num_groups_hint: str) -> None:
    """Refuse MODEL.RESNETS options a tied backbone does not have (groups, dilation, deformable
    convs, other stem/res2 widths) instead of silently ignoring them."""
    resnets = cfg.MODEL.RESNETS
    unsupported = {  # key: (value, the supported value, how to get the option instead)
        "NUM_GROUPS": (resnets.NUM_GROUPS, 1, num_groups_hint),
        "RES5_DILATION": (resnets.RES5_DILATION, 1, ""),
        "STEM_OUT_CHANNELS": (resnets.STEM_OUT_CHANNELS, 64, ""),
        "RES2_OUT_CHANNELS": (resnets.RES2_OUT_CHANNELS, 256, ""),
        "DEFORM_ON_PER_STAGE": (any(resnets.DEFORM_ON_PER_STAGE), False, ""),
    }
    for key, (value, supported, alternative) in unsupported.items():
        if value != supported:
            raise ValueError(
                f"MODEL.RESNETS.{key}={value} is not supported by the {backbone_name} backbone: "
                f"set it to its default ({supported}){alternative}"
            )


@BACKBONE_REGISTRY.register()
def build_tied_resnet_backbone(cfg: CN, input_shape: ShapeSpec) -> Backbone:
    """yacs builder (``MODEL.BACKBONE.NAME = "build_tied_resnet_backbone"``).

    Reads MODEL.RESNETS.{DEPTH, NORM, OUT_FEATURES}, MODEL.BACKBONE.FREEZE_AT and
    MODEL.TIED_RESNET.*; MODEL.RESNETS.STRIDE_IN_1X1 and WIDTH_PER_GROUP are ignored (the tied
    block strides in its 3x3 splits; TIED_RESNET.BASE_WIDTH sets the width). RESNETS options the
    tied block does not have (dilation, deformable convs, other widths) are rejected, and so is
    RESNETS.NUM_GROUPS: TIED_RESNET.SPLIT_GROUPS sets the groups (per split).
    """
    if "TIED_RESNET" not in cfg.MODEL:
        raise KeyError("cfg.MODEL.TIED_RESNET is missing: call add_tied_resnet_config(cfg) first")
    resnets = cfg.MODEL.RESNETS
    reject_unsupported_resnets_options(
        cfg, "TiedResNet",
        num_groups_hint="; for grouped 3x3s set MODEL.TIED_RESNET.SPLIT_GROUPS (groups per split, "
        "cardinality SPLITS * SPLIT_GROUPS)",
    )
    tied = cfg.MODEL.TIED_RESNET
    return build_tied_resnet(
        depth=resnets.DEPTH,
        variant=tied.VARIANT,
        splits=tied.SPLITS,
        base_width=tied.BASE_WIDTH or None,
        mixer=tied.MIXER,
        split_groups=tied.SPLIT_GROUPS,
        attention=tied.ATTENTION or None,
        attention_B=tied.ATTENTION_B,
        width=tied.WIDTH,
        norm=resnets.NORM,
        freeze_at=cfg.MODEL.BACKBONE.FREEZE_AT,
        out_features=resnets.OUT_FEATURES,
        in_channels=input_shape.channels,
    )


@BACKBONE_REGISTRY.register()
def build_tied_resnet_fpn_backbone(cfg: CN, input_shape: ShapeSpec) -> Backbone:
    """yacs builder: TiedResNet + FPN with P6 by max-pooling, as detectron2's
    ``build_resnet_fpn_backbone`` (reads MODEL.FPN.*)."""
    return fpn_from_config(cfg, build_tied_resnet_backbone(cfg, input_shape), LastLevelMaxPool())


@BACKBONE_REGISTRY.register()
def build_retinanet_tied_resnet_fpn_backbone(cfg: CN, input_shape: ShapeSpec) -> Backbone:
    """yacs builder: TiedResNet + FPN with RetinaNet's P6/P7 from res5, as detectron2's
    ``build_retinanet_resnet_fpn_backbone``."""
    bottom_up = build_tied_resnet_backbone(cfg, input_shape)
    top_block = LastLevelP6P7(bottom_up.output_shape()["res5"].channels, cfg.MODEL.FPN.OUT_CHANNELS)
    return fpn_from_config(cfg, bottom_up, top_block)
