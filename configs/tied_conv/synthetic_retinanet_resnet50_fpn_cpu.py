"""Baseline of synthetic_retinanet_tied_resnet50_fpn_cpu.py with a quarter-width ResNet-50."""
from ..common.models.cpu import shrink_resnet_fpn
from ..common.models.retinanet_cpu import model
from .synthetic_occlusion_cpu import NUM_CLASSES, dataloader, lr_multiplier, optimizer, train

shrink_resnet_fpn(model.backbone, depth=50, width=0.25)
model.num_classes = NUM_CLASSES
train.output_dir = "output/tied_conv/synthetic_retinanet_resnet50_fpn_cpu"
