"""Baseline of synthetic_mask_rcnn_tied_resnet50_fpn_cpu.py with a quarter-width ResNet-50."""
from ..common.models.cpu import shrink_resnet_fpn
from ..common.models.mask_rcnn_fpn_cpu import model
from .synthetic_occlusion_cpu import NUM_CLASSES, dataloader, lr_multiplier, optimizer, train

shrink_resnet_fpn(model.backbone, depth=50, width=0.25)
model.roi_heads.num_classes = NUM_CLASSES
dataloader.train.mapper.use_instance_mask = True
train.output_dir = "output/tied_conv/synthetic_mask_rcnn_resnet50_fpn_cpu"
