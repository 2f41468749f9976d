"""Tied Block Convolution (TBC paper): TBC/TGC/TFC layers and the tied networks built from them."""
from .attention import TiedGCB, TiedSE
from .context import (
    RESIDUAL_ATTENTION_MODULES,
    ContextBottleneckBlock,
    build_residual_attention,
    context_resnet_stages,
)
from .layers import TiedBlockConv2d, TiedLinear
from .resnest import (
    DeepStem,
    SplitAttention,
    SplitAttentionBottleneckBlock,
    add_tied_resnest_config,
    build_tied_resnest,
    build_tied_resnest_backbone,
    build_tied_resnest_fpn_backbone,
    make_resnest_stages,
)
from .resnet import (
    TiedBottleneckBlock,
    add_tied_resnet_config,
    build_retinanet_tied_resnet_fpn_backbone,
    build_tied_resnet,
    build_tied_resnet_backbone,
    build_tied_resnet_fpn_backbone,
    default_split_blocks,
    make_tied_resnet_stages,
)

__all__ = [
    "TiedBlockConv2d",
    "TiedLinear",
    "TiedSE",
    "TiedGCB",
    "RESIDUAL_ATTENTION_MODULES",
    "build_residual_attention",
    "ContextBottleneckBlock",
    "context_resnet_stages",
    "TiedBottleneckBlock",
    "default_split_blocks",
    "make_tied_resnet_stages",
    "build_tied_resnet",
    "add_tied_resnet_config",
    "build_tied_resnet_backbone",
    "build_tied_resnet_fpn_backbone",
    "build_retinanet_tied_resnet_fpn_backbone",
    "SplitAttention",
    "SplitAttentionBottleneckBlock",
    "DeepStem",
    "make_resnest_stages",
    "build_tied_resnest",
    "add_tied_resnest_config",
    "build_tied_resnest_backbone",
    "build_tied_resnest_fpn_backbone",
]
