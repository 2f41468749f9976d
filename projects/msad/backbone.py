"""
Feature pyramids for MSAD's level alignment.

A half-size image's P_k has the size of the full-size image's P_{k+1}, so a low-resolution path
takes the place of a detector's levels once its pyramid is renamed one level up (``level_shift``
= 1). The backbone therefore produces one level finer than the detector reads: P2..P7 for
detectors on P3..P7 (RetinaNet, FCOS) and P1..P6 for detectors on P2..P6 (Mask R-CNN), P1 being
built from C1 (the stem's 7x7 conv block before its max-pool) like any other FPN level
(supplement E). ``AlignedFPN`` computes that finest level only when a path needs it: at full
resolution P1 alone would cost more than the rest of the network.

Level pairing is by stride (``shifted_levels``): names are only labels, so any detectron2
backbone whose strides line up works; ``extract_levels`` runs a backbone for the levels a path
needs and names them as the detector expects.
"""
import math
from typing import Dict, Mapping, Sequence

import torch
import torch.nn.functional as F

from detectron2.config import CfgNode
from detectron2.layers import ShapeSpec
from detectron2.modeling import BACKBONE_REGISTRY, Backbone
from detectron2.modeling.backbone import FPN, BasicStem, ResNet
from detectron2.modeling.backbone.fpn import LastLevelMaxPool, LastLevelP6P7

from projects.common.modeling import scaled_resnet_stages

from .fusion import CrossFeatureFusion

__all__ = [
    "AlignedFPN",
    "DualResolutionBackbone",
    "ResNetWithC1",
    "aligned_resnet_fpn",
    "build_aligned_resnet_fpn_backbone",
    "build_dual_resolution_backbone",
    "downsample_nearest",
    "extract_levels",
    "level_shift_of_scale",
    "shifted_levels",
]

C1 = "c1"
PYRAMID_LEVELS = ("p2-p7", "p1-p6")


class ResNetWithC1(ResNet):
    """
    detectron2's ``ResNet`` that can also output ``"c1"``: the stem's 7x7 conv + norm + ReLU
    before its max-pool (stride 2, the stem's channels), from which P1 is built.

    Parameters and their names are ResNet's (``stem.conv1``, ``res2``...), so ResNet checkpoints
    such as ``detectron2://ImageNetPretrained/MSRA/R-50.pkl`` load unchanged. The stem must be a
    ``BasicStem`` (conv -> ReLU -> 3x3 max-pool of stride 2).
    """

    def __init__(self, stem: BasicStem, stages, out_features: Sequence[str], freeze_at: int = 0):
        if not isinstance(stem, BasicStem):
            raise TypeError(f"ResNetWithC1 splits a BasicStem (conv -> ReLU -> max-pool), got {type(stem).__name__}")
        resnet_features = [name for name in out_features if name != C1]
        if not resnet_features:
            raise ValueError(f"out_features={list(out_features)} needs a ResNet output besides 'c1', e.g. 'res2'")
        super().__init__(stem, stages, out_features=resnet_features, freeze_at=freeze_at)
        self._out_features = list(out_features)
        self._out_feature_strides[C1] = stem.stride // 2
        self._out_feature_channels[C1] = stem.out_channels

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        if x.dim() != 4:
            raise ValueError(f"ResNetWithC1 takes an (N, C, H, W) batch, got shape {list(x.shape)}")
        c1 = F.relu(self.stem.conv1(x))
        outputs = {C1: c1} if C1 in self._out_features else {}
        x = F.max_pool2d(c1, kernel_size=3, stride=2, padding=1)
        if "stem" in self._out_features:
            outputs["stem"] = x
        for name, stage in zip(self.stage_names, self.stages):
            x = stage(x)
            if name in self._out_features:
                outputs[name] = x
        return outputs


class AlignedFPN(FPN):
    """
    detectron2's ``FPN`` whose finest level can be skipped: ``forward(x, skip_finest_level=True)``
    omits the finest lateral and output convs (the other levels are unchanged), which a path
    that does not read that level saves. With ``skip_finest_level=False`` it is ``FPN.forward``.

    Built like ``FPN``; on ``in_features=["c1", "res2", ..., "res5"]`` (a ``ResNetWithC1``) the
    finest level is P1 = output conv(lateral conv(C1) + 2x nearest-upsampled top-down P2), the
    standard FPN top-down step, with weights ``fpn_lateral1`` / ``fpn_output1``.
    """

    @property
    def finest_level(self) -> str:
        return self._out_features[0]

    def forward(self, x: torch.Tensor, skip_finest_level: bool = False) -> Dict[str, torch.Tensor]:
        bottom_up_features = self.bottom_up(x)
        top_down = self.lateral_convs[0](bottom_up_features[self.in_features[-1]])
        results = [self.output_convs[0](top_down)]
        num_levels = len(self.lateral_convs) - int(skip_finest_level)
        for index in range(1, num_levels):
            lateral = self.lateral_convs[index](bottom_up_features[self.in_features[-index - 1]])
            top_down = lateral + F.interpolate(top_down, scale_factor=2.0, mode="nearest")
            if self._fuse_type == "avg":
                top_down = top_down / 2
            results.insert(0, self.output_convs[index](top_down))
        names = self._out_features[int(skip_finest_level):]
        if self.top_block is not None:
            in_feature = self.top_block.in_feature
            if in_feature in bottom_up_features:
                top_block_input = bottom_up_features[in_feature]
            else:
                top_block_input = results[names.index(in_feature)]
            results.extend(self.top_block(top_block_input))
        return dict(zip(names, results))


def aligned_resnet_fpn(
    levels: str,
    depth: int = 50,
    width: float = 1.0,
    out_channels: int = 256,
    norm: str = "FrozenBN",
    stride_in_1x1: bool = True,
    freeze_at: int = 0,
    fpn_norm: str = "",
) -> AlignedFPN:
    """
    A (slimmed) ResNet bottom-up with an ``AlignedFPN``, for MSAD teachers and students.

    Args:
        levels: "p2-p7" (FPN on res2..res5, P6/P7 from res5 as the MSAD authors; for detectors on
            P3..P7) or "p1-p6" (FPN on c1, res2..res5, P6 by max-pool of P5; for R-CNNs on P2..P6).
        depth, width: ResNet-``depth`` with every channel count (stem included) times ``width``:
            the slimmed ResNet-50s of supplement Table 1 are widths 0.25, 0.5, 0.75 and 1.0.
        out_channels: FPN channels (256 at every width in the paper).
        norm: the ResNet's norm ("FrozenBN" for pre-trained weights, "BN" from scratch).
        stride_in_1x1: bottleneck stride in the 1x1 conv (MSRA weights) or in the 3x3
            (torchvision weights); ignored for the basic blocks of depth < 50.
        freeze_at: ``ResNet.freeze`` stages (2 = stem and res2, detectron2's fine-tuning default).
        fpn_norm: the FPN's norm ("" as detectron2's configs).
    """
    if levels not in PYRAMID_LEVELS:
        raise ValueError(f"levels={levels!r}: use 'p2-p7' (heads on P3..P7) or 'p1-p6' (heads on P2..P6)")
    stem_channels = int(round(64 * width))
    stem = BasicStem(in_channels=3, out_channels=stem_channels, norm=norm)
    block_options = {"norm": norm}
    if depth >= 50:
        block_options["stride_in_1x1"] = stride_in_1x1
    stages = scaled_resnet_stages(depth, width, stem_channels, **block_options)
    stage_names = ["res2", "res3", "res4", "res5"]
    if levels == "p2-p7":
        bottom_up = ResNet(stem, stages, out_features=stage_names, freeze_at=freeze_at)
        top_block = LastLevelP6P7(bottom_up.output_shape()["res5"].channels, out_channels, in_feature="res5")
        in_features = stage_names
    else:
        in_features = [C1] + stage_names
        bottom_up = ResNetWithC1(stem, stages, out_features=in_features, freeze_at=freeze_at)
        top_block = LastLevelMaxPool()
    return AlignedFPN(bottom_up, in_features, out_channels, norm=fpn_norm, top_block=top_block)


@BACKBONE_REGISTRY.register()
def build_aligned_resnet_fpn_backbone(cfg: CfgNode, input_shape: ShapeSpec) -> AlignedFPN:
    """yacs builder of ``aligned_resnet_fpn``: MODEL.MSAD.PYRAMID_LEVELS, MODEL.RESNETS.{DEPTH,
    WIDTH, NORM, STRIDE_IN_1X1}, MODEL.FPN.{OUT_CHANNELS, NORM} and MODEL.BACKBONE.FREEZE_AT. The
    levels fix the pyramid's inputs, so FPN.IN_FEATURES and RESNETS.OUT_FEATURES are not read."""
    if input_shape.channels != 3:
        raise ValueError(
            f"aligned_resnet_fpn reads 3-channel images, got {input_shape.channels} channels: give "
            "MODEL.PIXEL_MEAN and MODEL.PIXEL_STD 3 values"
        )
    resnets = cfg.MODEL.RESNETS
    return aligned_resnet_fpn(
        levels=cfg.MODEL.MSAD.PYRAMID_LEVELS,
        depth=resnets.DEPTH,
        width=resnets.WIDTH,
        out_channels=cfg.MODEL.FPN.OUT_CHANNELS,
        norm=resnets.NORM,
        stride_in_1x1=resnets.STRIDE_IN_1X1,
        freeze_at=cfg.MODEL.BACKBONE.FREEZE_AT,
        fpn_norm=cfg.MODEL.FPN.NORM,
    )


def level_shift_of_scale(scale: float) -> int:
    """k for an input scale of 2**-k (0.5 -> 1, 1.0 -> 0): the levels a downscaled input moves."""
    shift = -math.log2(scale) if scale > 0 else math.nan
    if not shift >= 0 or shift != round(shift):
        raise ValueError(f"scale={scale} must be 2**-k (1.0, 0.5, 0.25...) so that its levels align")
    return int(round(shift))


def downsample_nearest(x: torch.Tensor, level_shift: int) -> torch.Tensor:
    """``x`` (N, C, H, W) nearest-downsampled by 2**level_shift (the MSAD authors' low-resolution
    input: pixel (i, j) is pixel (2i, 2j) of the normalised, padded high-resolution batch)."""
    if level_shift == 0:
        return x
    return F.interpolate(x, scale_factor=0.5**level_shift, mode="nearest")


def shifted_levels(level_strides: Mapping[str, int], backbone: Backbone, level_shift: int) -> Dict[str, str]:
    """
    For each level (name -> stride in the full-resolution frame), the output of ``backbone``
    whose stride is 2**level_shift times smaller: on an input 2**level_shift times smaller it has
    the level's size and takes its place. ``level_shift=0`` pairs each level with itself.
    """
    names_by_stride = {shape.stride: name for name, shape in backbone.output_shape().items()}
    pairs = {}
    for level, stride in level_strides.items():
        source_stride = stride // 2**level_shift
        if source_stride * 2**level_shift != stride or source_stride not in names_by_stride:
            raise ValueError(
                f"level {level} (stride {stride}) needs a backbone output of stride {stride / 2**level_shift:g} "
                f"at level_shift={level_shift}, but the backbone's strides are {sorted(names_by_stride)}: build "
                "it with one finer level, aligned_resnet_fpn(levels='p2-p7') for heads on P3..P7 or "
                "levels='p1-p6' for heads on P2..P6"
            )
        pairs[level] = names_by_stride[source_stride]
    return pairs


def extract_levels(backbone: Backbone, x: torch.Tensor, sources: Mapping[str, str]) -> Dict[str, torch.Tensor]:
    """``{level: backbone(x)[source]}`` for ``sources`` (level -> backbone output, see
    ``shifted_levels``); an ``AlignedFPN`` skips its finest level when no level reads it."""
    if isinstance(backbone, AlignedFPN):
        outputs = backbone(x, skip_finest_level=backbone.finest_level not in sources.values())
    else:
        outputs = backbone(x)
    return {level: outputs[source] for level, source in sources.items()}


class DualResolutionBackbone(Backbone):
    """
    Two pyramids fused by C-FF (supplement D, Table 3): ``high_res`` (typically a thin backbone)
    reads the input, ``low_res`` reads it nearest-downsampled by 2**level_shift, and their
    aligned levels are fused per image by ``fusion``. The outputs are the high-resolution levels
    that have a low-resolution partner (P3..P7 of two "p2-p7" pyramids at level_shift 1), under
    their high-resolution names and strides, so any detectron2 head reads them unchanged.
    """

    def __init__(self, high_res: Backbone, low_res: Backbone, fusion: CrossFeatureFusion, level_shift: int = 1):
        super().__init__()
        if level_shift < 1:
            raise ValueError(f"level_shift={level_shift}: the low-resolution input must be smaller (level_shift >= 1)")
        self.high_res = high_res
        self.low_res = low_res
        self.fusion = fusion
        self.level_shift = level_shift
        high_shapes = high_res.output_shape()
        low_strides = {shape.stride for shape in low_res.output_shape().values()}
        self._out_features = [
            name for name, shape in sorted(high_shapes.items(), key=lambda item: item[1].stride)
            if shape.stride % 2**level_shift == 0 and shape.stride // 2**level_shift in low_strides
        ]
        if not self._out_features:
            raise ValueError(
                f"no high-resolution level has a low-resolution partner at level_shift={level_shift} "
                f"(high-resolution strides {sorted(s.stride for s in high_shapes.values())}, low-resolution "
                f"strides {sorted(low_strides)})"
            )
        self._out_feature_strides = {name: high_shapes[name].stride for name in self._out_features}
        self.high_res_sources = {name: name for name in self._out_features}
        self.low_res_sources = shifted_levels(self._out_feature_strides, low_res, level_shift)
        low_shapes = low_res.output_shape()
        self._out_feature_channels = {}
        for name, source in self.low_res_sources.items():
            channels = {high_shapes[name].channels, low_shapes[source].channels, fusion.channels}
            if len(channels) != 1:
                raise ValueError(
                    f"level {name}: high-resolution {high_shapes[name].channels}, low-resolution "
                    f"{low_shapes[source].channels} and fusion {fusion.channels} channels must agree: give "
                    "both FPNs the same out_channels and CrossFeatureFusion(channels=) that number"
                )
            self._out_feature_channels[name] = high_shapes[name].channels

    @property
    def size_divisibility(self) -> int:
        """Paired levels have equal sizes when the input is a multiple of this."""
        return max(self.high_res.size_divisibility, self.low_res.size_divisibility * 2**self.level_shift)

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        high = extract_levels(self.high_res, x, self.high_res_sources)
        low = extract_levels(self.low_res, downsample_nearest(x, self.level_shift), self.low_res_sources)
        return self.fusion(high, low)


@BACKBONE_REGISTRY.register()
def build_dual_resolution_backbone(cfg: CfgNode, input_shape: ShapeSpec) -> DualResolutionBackbone:
    """yacs builder of the dual-resolution student's backbone (supplement Table 3): two
    ``build_aligned_resnet_fpn_backbone`` pyramids of widths MODEL.MSAD.DUAL_RESOLUTION.HIGH_RES_WIDTH
    and LOW_RES_WIDTH (RESNETS.WIDTH is not read), the low one on the input scaled by
    MODEL.MSAD.LOW_RES_SCALE, fused by C-FF of FPN.OUT_CHANNELS channels."""
    dual = cfg.MODEL.MSAD.DUAL_RESOLUTION

    def branch(width: float) -> AlignedFPN:
        branch_cfg = cfg.clone()
        branch_cfg.defrost()
        branch_cfg.MODEL.RESNETS.WIDTH = width
        return build_aligned_resnet_fpn_backbone(branch_cfg, input_shape)

    return DualResolutionBackbone(
        high_res=branch(dual.HIGH_RES_WIDTH),
        low_res=branch(dual.LOW_RES_WIDTH),
        fusion=CrossFeatureFusion(cfg.MODEL.FPN.OUT_CHANNELS, cfg.MODEL.MSAD.FUSION_HIDDEN_CHANNELS),
        level_shift=level_shift_of_scale(cfg.MODEL.MSAD.LOW_RES_SCALE),
    )
