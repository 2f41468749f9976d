"""RetinaNet with a TiedResNet-50 FPN backbone on COCO, 2x schedule (TBC paper, Table A.1).
TiedResNet-50-S / -101: ``model.backbone.bottom_up.variant=S`` / ``model.backbone.bottom_up.depth=101``."""
from ..common.models.retinanet import model
from .coco_2x import dataloader, lr_multiplier, optimizer, train
from .tied_resnet import detection_bottom_up

model.backbone.bottom_up = detection_bottom_up
model.backbone.bottom_up.out_features = ["res3", "res4", "res5"]
dataloader.train.mapper.use_instance_mask = False
optimizer.lr = 0.01  # detectron2's RetinaNet LR at batch 16
train.output_dir = "output/tied_conv/coco_retinanet_tied_resnet50_fpn_2x"
