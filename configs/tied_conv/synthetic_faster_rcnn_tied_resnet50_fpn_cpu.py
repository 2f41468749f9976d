"""CPU-sized Faster R-CNN FPN with a quarter-width TiedResNet-50 trained from scratch on the
occluded synthetic shapes; compare with synthetic_faster_rcnn_resnet50_fpn_cpu.py (same size)."""
from detectron2.data import MetadataCatalog

from ..common.models.faster_rcnn_fpn_cpu import model
from .synthetic_occlusion_cpu import dataloader, lr_multiplier, optimizer, train
from .tied_resnet import detection_bottom_up

model.backbone.bottom_up = detection_bottom_up
model.backbone.bottom_up.update(width=0.25, norm="BN", freeze_at=0)
model.roi_heads.num_classes = len(MetadataCatalog.get("synthetic_shapes_occluded_train").thing_classes)
train.output_dir = "output/tied_conv/synthetic_faster_rcnn_tied_resnet50_fpn_cpu"
