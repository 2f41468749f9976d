"""FCOS R50-FPN as the MSAD authors train it (projects/common/modeling/fcos.py): an FPN on
res2..res5 with P6/P7 computed from C5, the detector reading p3..p7 (p2 is there for MSAD's
low-resolution path, which feeds p2..p6 of a half-size image in place of p3..p7), and a GroupNorm
head of 4 + 4 convs with a learnable scale per level.

ImageNet initialisation, as detectron2's RetinaNet R50 training configs do (MSRA caffe weights:
BGR input, unit pixel_std, stride in the 1x1 conv, FrozenBN): a training config sets
``train.init_checkpoint = IMAGENET_R50_CHECKPOINT`` and ``model.backbone.bottom_up.freeze_at = 2``.
"""
from detectron2.config import LazyCall as L
from detectron2.layers import ShapeSpec
from detectron2.modeling.backbone import FPN, BasicStem, ResNet
from detectron2.modeling.backbone.fpn import LastLevelP6P7

from projects.common.modeling import FCOS, FCOSHead

IMAGENET_R50_CHECKPOINT = "detectron2://ImageNetPretrained/MSRA/R-50.pkl"

model = L(FCOS)(
    backbone=L(FPN)(
        bottom_up=L(ResNet)(
            stem=L(BasicStem)(in_channels=3, out_channels=64, norm="FrozenBN"),
            stages=L(ResNet.make_default_stages)(depth=50, stride_in_1x1=True, norm="FrozenBN"),
            out_features=["res2", "res3", "res4", "res5"],
        ),
        in_features=["res2", "res3", "res4", "res5"],
        out_channels=256,
        top_block=L(LastLevelP6P7)(in_channels=2048, out_channels="${..out_channels}", in_feature="res5"),
    ),
    head=L(FCOSHead)(
        input_shape=[ShapeSpec(channels=256)] * 5,
        num_classes="${..num_classes}",
        conv_dims=[256, 256, 256, 256],
        norm="GN",
        num_groups=32,
        prior_prob=0.01,
    ),
    head_in_features=["p3", "p4", "p5", "p6", "p7"],
    num_classes=80,
    size_ranges=[[-1, 64], [64, 128], [128, 256], [256, 512], [512, float("inf")]],
    center_sampling_radius=1.5,
    focal_loss_alpha=0.25,
    focal_loss_gamma=2.0,
    test_score_thresh=0.05,
    test_topk_candidates=1000,
    test_nms_thresh=0.6,
    max_detections_per_image=100,
    pixel_mean=[103.530, 116.280, 123.675],
    pixel_std=[1.0, 1.0, 1.0],
)
