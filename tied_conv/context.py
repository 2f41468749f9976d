"""Attention on the residual branch of ResNet bottlenecks: the one registry of those modules, and
detectron2's bottleneck with one of them before the addition (GCNet's placement of GCB, used for
the paper's Table 4: Mask R-CNN R50 with GCB / TiedGCB in res3-res5)."""
from torch import nn
from torch.nn import functional as F

from detectron2.modeling.backbone.resnet import BottleneckBlock

from projects.common.modeling import scaled_resnet_stages

from .attention import TiedGCB, TiedSE

# Residual-branch attention modules, name -> constructor taking (channels, B, **module_kwargs);
# B=1 gives the untied module (GCB / SE). Used by ContextBottleneckBlock (``context=``) and
# tied_conv.resnet.TiedBottleneckBlock (``attention=``).
RESIDUAL_ATTENTION_MODULES = {"gcb": TiedGCB, "se": TiedSE}


def build_residual_attention(name: str, channels: int, B: int = 1, **module_kwargs) -> nn.Module:
    """The registered residual-branch attention module ``name`` for ``channels`` channels, tied
    over ``B`` blocks; one lookup so every block accepts the same names and fails the same way."""
    if name not in RESIDUAL_ATTENTION_MODULES:
        raise ValueError(
            f"residual-branch attention {name!r} is unknown: use one of "
            f"{sorted(RESIDUAL_ATTENTION_MODULES)}"
        )
    return RESIDUAL_ATTENTION_MODULES[name](channels, B=B, **module_kwargs)


class ContextBottleneckBlock(BottleneckBlock):
    """detectron2's ``BottleneckBlock`` whose residual branch passes through a registered
    residual-branch attention module (``TiedGCB`` or ``TiedSE``; B=1: plain GCB / SE) before the
    addition. The block's own weights keep ``BottleneckBlock``'s names, so ImageNet ResNet
    checkpoints still load (``context.*`` is new)."""

    def __init__(self, in_channels, out_channels, *, context="gcb", context_B=1, context_kwargs=None, **kwargs):
        super().__init__(in_channels, out_channels, **kwargs)
        self.context = build_residual_attention(context, out_channels, B=context_B, **(context_kwargs or {}))

    def forward(self, x):
        out = F.relu_(self.conv1(x))
        out = F.relu_(self.conv2(out))
        out = self.context(self.conv3(out))
        shortcut = x if self.shortcut is None else self.shortcut(x)
        return F.relu_(out + shortcut)


def context_resnet_stages(depth=50, *, context="gcb", context_B=1, context_kwargs=None,
                          context_stages=("res3", "res4", "res5"), **block_kwargs):
    """detectron2's ResNet stages with ``ContextBottleneckBlock`` in ``context_stages``
    (GCNet and the paper's Table 4: GCB with ratio 1/4 in res3-res5)."""
    context_block = dict(block_class=ContextBottleneckBlock, context=context, context_B=context_B,
                         context_kwargs=dict(context_kwargs or {}))
    return scaled_resnet_stages(depth, stage_overrides={stage: context_block for stage in context_stages},
                                **block_kwargs)
