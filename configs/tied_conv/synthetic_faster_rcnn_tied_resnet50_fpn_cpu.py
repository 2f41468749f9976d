"""CPU-sized Faster R-CNN FPN with a quarter-width TiedResNet-50 trained from scratch on the
occluded synthetic shapes; compare with synthetic_faster_rcnn_resnet50_fpn_cpu.py (same size)."""
from ..common.models.faster_rcnn_fpn_cpu import model
from .synthetic_occlusion_cpu import NUM_CLASSES, dataloader, lr_multiplier, optimizer, train
from .tied_resnet import cpu_detection_bottom_up

model.backbone.bottom_up = cpu_detection_bottom_up
model.roi_heads.num_classes = NUM_CLASSES
train.output_dir = "output/tied_conv/synthetic_faster_rcnn_tied_resnet50_fpn_cpu"
