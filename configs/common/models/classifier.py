"""ImageNet-style classifier: ResNet-50 (torchvision-style, trainable BN) -> global pool -> FC."""
from detectron2.config import LazyCall as L
from detectron2.modeling.backbone import BasicStem, ResNet

from projects.common.modeling import ImageClassifier

model = L(ImageClassifier)(
    backbone=L(ResNet)(
        stem=L(BasicStem)(in_channels=3, out_channels=64, norm="BN"),
        stages=L(ResNet.make_default_stages)(depth=50, stride_in_1x1=False, norm="BN"),
        out_features=["res5"],
    ),
    in_feature="res5",
    num_classes=1000,
    pixel_mean=[103.530, 116.280, 123.675],
    pixel_std=[57.375, 57.120, 58.395],
    input_format="BGR",
)
