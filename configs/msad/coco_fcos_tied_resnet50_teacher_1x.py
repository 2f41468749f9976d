"""MSAD multi-scale fusion teacher, FCOS with a TiedResNet-50 aligned pyramid on COCO 2017
(README.md, "Combinations", run 3 at full scale): coco_fcos_R50_teacher_1x.py with the backbone
swapped (FrozenBN, stem and res2 frozen), initialised from the TBC ImageNet classifier
(tied_conv/imagenet_cls_tied_resnet50.py), which normalises with the ImageNet std:

    python -m projects.common.checkpoint --input output/tied_conv/imagenet_cls_tied_resnet50/model_final.pth \\
        --output output/msad/tied_resnet50_imagenet_init.pth --backbone-prefix detector.backbone.bottom_up.
"""
from ..common.backbones import pyramid
from ..dap.models import TORCHVISION_PIXEL_STD
from .coco_fcos_R50_teacher_1x import dataloader, lr_multiplier, model, optimizer, train

model.detector.backbone = pyramid("tied_resnet50", out_channels=model.fusion.channels, top_block="p6p7", aligned=True,
                                  norm="FrozenBN", freeze_at=2)
model.detector.pixel_std = TORCHVISION_PIXEL_STD
train.init_checkpoint = "output/msad/tied_resnet50_imagenet_init.pth"
train.output_dir = "output/msad/coco_fcos_tied_resnet50_teacher_1x"
