"""Faster R-CNN with a TiedResNet-50 FPN backbone on COCO, 2x schedule (TBC paper, Tables A.1/A.2).
TiedResNet-50-S / -101: ``model.backbone.bottom_up.variant=S`` / ``model.backbone.bottom_up.depth=101``."""
from ..common.models.faster_rcnn_fpn import model
from .coco_2x import dataloader, lr_multiplier, optimizer, train
from .tied_resnet import detection_bottom_up

model.backbone.bottom_up = detection_bottom_up
train.output_dir = "output/tied_conv/coco_faster_rcnn_tied_resnet50_fpn_2x"
dataloader.train.mapper.use_instance_mask = False
