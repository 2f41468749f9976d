"""The TiedResNet backbone nodes the tied_conv configs share (TBC paper, Table 1 networks).

Depth and variant are overrides of the backbone node, e.g. ``model.backbone.bottom_up.depth=101
model.backbone.bottom_up.variant=S`` (detection) or ``model.backbone.depth=101`` (classification).
"""
from detectron2.config import LazyCall as L

from tied_conv import build_tied_resnet

# ImageNet-pretrained detection backbone: FrozenBN, stem + res2 frozen, as detectron2's R50 configs
detection_bottom_up = L(build_tied_resnet)(
    depth=50, variant="default", norm="FrozenBN", freeze_at=2,
    out_features=["res2", "res3", "res4", "res5"],
)

# CPU-sized, trained from scratch on the synthetic data: a quarter-width TiedResNet-50
cpu_detection_bottom_up = L(build_tied_resnet)(
    depth=50, variant="default", width=0.25, norm="BN", freeze_at=0,
    out_features=["res2", "res3", "res4", "res5"],
)

# trained from scratch on ImageNet: BN, nothing frozen, classification head on res5
classification_backbone = L(build_tied_resnet)(
    depth=50, variant="default", norm="BN", freeze_at=0, out_features=["res5"],
)
