"""Backbone helpers shared by the projects' configs: ResNets at a fraction of the usual width
(the CPU configs' backbones), for LazyConfigs and as yacs builders."""
from typing import Dict, List, Optional

from detectron2.config import CfgNode
from detectron2.layers import ShapeSpec
from detectron2.modeling import BACKBONE_REGISTRY, Backbone
from detectron2.modeling.backbone import FPN
from detectron2.modeling.backbone.fpn import LastLevelMaxPool, LastLevelP6P7
from detectron2.modeling.backbone.resnet import BasicBlock, BasicStem, BottleneckBlock, ResNet

# blocks in res2..res5 of ResNet-{depth} (He et al. 2016; detectron2's make_default_stages)
RESNET_BLOCKS_PER_STAGE = {18: [2, 2, 2, 2], 34: [3, 4, 6, 3], 50: [3, 4, 6, 3], 101: [3, 4, 23, 3], 152: [3, 8, 36, 3]}


def scaled_resnet_stages(depth: int, width: float = 1.0, stem_channels: int = 64,
                         stage_overrides: Optional[Dict[str, dict]] = None, **block_kwargs) -> List[list]:
    """``ResNet.make_default_stages(depth)`` with every stage's channels multiplied by ``width``.

    ``width=1.0`` gives exactly detectron2's stages; smaller widths give the cheap backbones of
    the CPU configs (and slimmed ResNets). ``stem_channels`` must equal the stem's out_channels.
    ``block_kwargs`` (e.g. ``norm``, ``stride_in_1x1``) are passed to every block;
    ``stage_overrides`` maps a stage name ("res2".."res5") to extra block kwargs for that stage,
    ``block_class`` included (e.g. blocks with a context module in res3-res5 only).
    """
    if depth not in RESNET_BLOCKS_PER_STAGE:
        raise ValueError(f"depth={depth} is not one of {sorted(RESNET_BLOCKS_PER_STAGE)}")
    if width <= 0:
        raise ValueError(f"width={width} must be positive")
    basic = depth < 50
    out_channels = [int(round(c * width)) for c in ([64, 128, 256, 512] if basic else [256, 512, 1024, 2048])]
    in_channels = [stem_channels] + out_channels[:-1]
    overrides = dict(stage_overrides or {})
    unknown = sorted(set(overrides) - {"res2", "res3", "res4", "res5"})
    if unknown:
        raise ValueError(f"stage_overrides has unknown stages {unknown}: use res2..res5")
    stages = []
    stage_specs = zip(RESNET_BLOCKS_PER_STAGE[depth], [1, 2, 2, 2], in_channels, out_channels)
    for stage_index, (num_blocks, stride, in_c, out_c) in enumerate(stage_specs, start=2):
        kwargs = dict(block_kwargs)
        if not basic:
            kwargs["bottleneck_channels"] = out_c // 4
        kwargs.update(overrides.get(f"res{stage_index}", {}))
        block_class = kwargs.pop("block_class", BasicBlock if basic else BottleneckBlock)
        stages.append(
            ResNet.make_stage(
                block_class=block_class,
                num_blocks=num_blocks,
                stride_per_block=[stride] + [1] * (num_blocks - 1),
                in_channels=in_c,
                out_channels=out_c,
                **kwargs,
            )
        )
    return stages


def add_scaled_resnet_config(cfg: CfgNode) -> None:
    """Add ``cfg.MODEL.RESNETS.WIDTH`` (1.0): the channel multiplier of the collection's ResNet
    builders (``build_scaled_resnet_*``, ResNet-WS, SAN ResNet, MSAD's aligned pyramids)."""
    cfg.MODEL.RESNETS.WIDTH = 1.0


def _reject_unsupported_resnets_options(cfg: CfgNode) -> None:
    """MODEL.RESNETS options of detectron2's ResNet that the scaled builders do not have are
    refused rather than ignored."""
    resnets = cfg.MODEL.RESNETS
    unsupported = {
        "NUM_GROUPS": (resnets.NUM_GROUPS, 1),
        "WIDTH_PER_GROUP": (resnets.WIDTH_PER_GROUP, 64),
        "RES5_DILATION": (resnets.RES5_DILATION, 1),
        "DEFORM_ON_PER_STAGE": (any(resnets.DEFORM_ON_PER_STAGE), False),
    }
    for key, (value, supported) in unsupported.items():
        if value != supported:
            raise ValueError(
                f"MODEL.RESNETS.{key}={value} is not supported by the scaled ResNet builders: set it to "
                f"{supported}, or use detectron2's build_resnet_backbone (which has no WIDTH)"
            )


@BACKBONE_REGISTRY.register()
def build_scaled_resnet_backbone(cfg: CfgNode, input_shape: ShapeSpec) -> ResNet:
    """yacs builder of a ``ResNet`` whose stem and stages have MODEL.RESNETS.WIDTH x the usual
    channels (``scaled_resnet_stages``; WIDTH 1.0 is detectron2's ResNet). Reads RESNETS.DEPTH,
    NORM, STRIDE_IN_1X1 (bottlenecks only), OUT_FEATURES and BACKBONE.FREEZE_AT; the channel
    keys STEM_OUT_CHANNELS and RES2_OUT_CHANNELS are implied by DEPTH and WIDTH."""
    resnets = cfg.MODEL.RESNETS
    _reject_unsupported_resnets_options(cfg)
    stem_channels = int(round(64 * resnets.WIDTH))
    block_options = {"norm": resnets.NORM}
    if resnets.DEPTH >= 50:
        block_options["stride_in_1x1"] = resnets.STRIDE_IN_1X1
    stem = BasicStem(in_channels=input_shape.channels, out_channels=stem_channels, norm=resnets.NORM)
    stages = scaled_resnet_stages(resnets.DEPTH, resnets.WIDTH, stem_channels, **block_options)
    return ResNet(stem, stages, out_features=resnets.OUT_FEATURES, freeze_at=cfg.MODEL.BACKBONE.FREEZE_AT)


def fpn_from_config(cfg: CfgNode, bottom_up: Backbone, top_block) -> FPN:
    """detectron2's FPN over ``bottom_up`` from MODEL.FPN.*, as its ``build_resnet_fpn_backbone``."""
    return FPN(
        bottom_up=bottom_up,
        in_features=cfg.MODEL.FPN.IN_FEATURES,
        out_channels=cfg.MODEL.FPN.OUT_CHANNELS,
        norm=cfg.MODEL.FPN.NORM,
        top_block=top_block,
        fuse_type=cfg.MODEL.FPN.FUSE_TYPE,
    )


@BACKBONE_REGISTRY.register()
def build_scaled_resnet_fpn_backbone(cfg: CfgNode, input_shape: ShapeSpec) -> FPN:
    """yacs builder: ``build_scaled_resnet_backbone`` + FPN with P6 by max-pooling (the CPU
    R-CNNs of configs/common/models/cpu.py; detectron2's ``build_resnet_fpn_backbone`` at WIDTH 1)."""
    return fpn_from_config(cfg, build_scaled_resnet_backbone(cfg, input_shape), LastLevelMaxPool())


@BACKBONE_REGISTRY.register()
def build_retinanet_scaled_resnet_fpn_backbone(cfg: CfgNode, input_shape: ShapeSpec) -> FPN:
    """yacs builder: ``build_scaled_resnet_backbone`` + FPN with P6/P7 from res5 (the CPU
    RetinaNet and FCOS; detectron2's ``build_retinanet_resnet_fpn_backbone`` at WIDTH 1)."""
    bottom_up = build_scaled_resnet_backbone(cfg, input_shape)
    top_block = LastLevelP6P7(bottom_up.output_shape()["res5"].channels, cfg.MODEL.FPN.OUT_CHANNELS, in_feature="res5")
    return fpn_from_config(cfg, bottom_up, top_block)
