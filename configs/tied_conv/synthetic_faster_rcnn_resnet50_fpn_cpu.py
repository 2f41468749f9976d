"""Baseline of synthetic_faster_rcnn_tied_resnet50_fpn_cpu.py: the same detector and data with a
quarter-width ResNet-50 (detectron2's bottleneck blocks) in place of the TiedResNet-50."""
from ..common.models.cpu import shrink_resnet_fpn
from ..common.models.faster_rcnn_fpn_cpu import model
from .synthetic_occlusion_cpu import NUM_CLASSES, dataloader, lr_multiplier, optimizer, train

shrink_resnet_fpn(model.backbone, depth=50, width=0.25)
model.roi_heads.num_classes = NUM_CLASSES
train.output_dir = "output/tied_conv/synthetic_faster_rcnn_resnet50_fpn_cpu"
