"""ResNet bottlenecks with a (tied) context module on the residual branch: GCNet's placement of
GCB, used for the paper's Table 4 (Mask R-CNN R50 with GCB / TiedGCB in res3-res5)."""
from torch.nn import functional as F

from detectron2.modeling.backbone.resnet import BottleneckBlock

from projects.common.modeling import scaled_resnet_stages

from .attention import TiedGCB, TiedSE

CONTEXT_MODULES = {"gcb": TiedGCB, "se": TiedSE}


class ContextBottleneckBlock(BottleneckBlock):
    """detectron2's ``BottleneckBlock`` whose residual branch passes through ``TiedGCB`` or
    ``TiedSE`` (B=1: plain GCB / SE) before the addition. The block's own weights keep
    ``BottleneckBlock``'s names, so ImageNet ResNet checkpoints still load (``context.*`` is new)."""

    def __init__(self, in_channels, out_channels, *, context="gcb", context_B=1, context_kwargs=None, **kwargs):
        super().__init__(in_channels, out_channels, **kwargs)
        if context not in CONTEXT_MODULES:
            raise ValueError(f"context={context!r}: choose one of {sorted(CONTEXT_MODULES)}")
        self.context = CONTEXT_MODULES[context](out_channels, B=context_B, **(context_kwargs or {}))

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
