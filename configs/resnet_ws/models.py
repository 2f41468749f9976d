"""LazyConfig model pieces of the ResNet-WS project, shared by its classification (ImageNet
pre-training) and WSOD configs (imported by them, not a config itself).

A WSOD detector initialised from a classifier of ``resnet_ws_classifier`` must use the same
depth, width, neck dims, pooled size and pixel normalisation: build its pieces with the same
arguments (``resnet_ws_backbone`` keeps the WSOD form, ``resnet_ws_neck`` the neck).
"""
from detectron2.config import LazyCall as L
from detectron2.modeling.backbone import BasicStem, ResNet

from projects.resnet_ws.backbones import Res5BoxHead, ResNetWS, resnet_ws_stage_channels
from projects.resnet_ws.classification import NeckClassifier
from projects.resnet_ws.neck import RedundantAdaptationNeck

# The collection's classifier normalisation (ImageNet mean / std in BGR, 0..255): the WSOD
# detectors must normalise as their classification pre-training did.
PIXEL_MEAN = [103.530, 116.280, 123.675]
PIXEL_STD = [57.375, 57.120, 58.395]

# Widths of the redundant adaptation neck (Tables A1 / A4).
NECK_HIDDEN_DIMS = {18: (4096, 4096), 50: (2048, 4096), 101: (2048, 4096)}

# CPU size (synthetic data): quarter-width ResNet18-WS, a (256, 256) neck on 2x2 pooled maps
# (64 px classification crops -> 4x4 res5 -> 2x2; the CPU detectors RoIPool to 2x2).
CPU_WIDTH = 0.25
CPU_NECK_HIDDEN_DIMS = (256, 256)
CPU_POOLED_SIZE = 2


def resnet_ws_backbone(depth, *, output_stride=8, norm="FrozenBN", freeze_at=5, width=1.0):
    """ResNet-WS with its res5 output; the defaults are the paper's WSOD setting (Table A4,
    FrozenBN, F5). ImageNet pre-training: ``output_stride=16, norm="BN", freeze_at=0``."""
    return L(ResNetWS)(depth=depth, output_stride=output_stride, norm=norm, freeze_at=freeze_at,
                       out_features=["res5"], width=width)


def resnet_ws_neck(depth, *, width=1.0, hidden_dims=None, pooled_size=7):
    """The redundant adaptation neck on ResNet-``depth``-WS's res5 (paper dims by default)."""
    return L(RedundantAdaptationNeck)(
        in_channels=resnet_ws_stage_channels(depth, width)["res5"],
        pooled_size=pooled_size,
        hidden_dims=list(hidden_dims or NECK_HIDDEN_DIMS[depth]),
        dropout=0.5,
    )


def resnet_ws_classifier(depth, *, num_classes=1000, width=1.0, hidden_dims=None, pooled_size=7):
    """Table A1: ResNet-WS (classification form, trainable BN) -> 2x2 max-pool -> neck -> fc,
    for ``2 * 16 * pooled_size`` px crops (224 at the paper's 7x7)."""
    return L(NeckClassifier)(
        backbone=resnet_ws_backbone(depth, output_stride=16, norm="BN", freeze_at=0, width=width),
        in_feature="res5",
        neck=resnet_ws_neck(depth, width=width, hidden_dims=hidden_dims, pooled_size=pooled_size),
        num_classes=num_classes,
        pixel_mean=PIXEL_MEAN,
        pixel_std=PIXEL_STD,
        input_format="BGR",
    )


def plain_resnet_backbone(depth, arrangement, *, norm="FrozenBN", freeze_at=2):
    """The plain-ResNet baselines as detectron2 ResNets (7x7 stem, torchvision-style stride in
    the 3x3 conv like the collection's ImageNet classifiers): ``arrangement="C5"`` (Table A3)
    outputs res5 at stride 32; ``"C4"`` (Table A2) stops at res4 (stride 16), conv5_x then runs
    per RoI in ``res5_box_head``. ``freeze_at=2`` is the paper's F2 baseline. CPU size:
    ``configs/common/models/cpu.py``'s ``shrink_resnet``."""
    out_feature = {"C5": "res5", "C4": "res4"}.get(arrangement)
    if out_feature is None:
        raise ValueError(f"arrangement={arrangement!r} must be 'C4' (Table A2) or 'C5' (Table A3)")
    block_options = {} if depth < 50 else {"stride_in_1x1": False}
    return L(ResNet)(
        stem=L(BasicStem)(in_channels=3, out_channels=64, norm=norm),
        stages=L(ResNet.make_default_stages)(depth=depth, norm=norm, **block_options),
        out_features=[out_feature],
        freeze_at=freeze_at,
    )


def res5_box_head(depth, *, norm="FrozenBN", freeze=False, width=1.0):
    """conv5_x per RoI for the C4 arrangement: (R, 1024, 7, 7) -> (R, 2048) for R50/R101
    ((R, 256, 7, 7) -> (R, 512) for R18); ``freeze=True`` for the F5 variant."""
    return L(Res5BoxHead)(depth=depth, norm=norm, freeze=freeze, width=width)
