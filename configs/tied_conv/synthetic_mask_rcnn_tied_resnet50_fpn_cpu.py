"""CPU-sized Mask R-CNN FPN (the paper's occlusion study detector, Fig. 7) with a quarter-width
TiedResNet-50 on the occluded synthetic shapes; baseline: synthetic_mask_rcnn_resnet50_fpn_cpu.py."""
from ..common.models.mask_rcnn_fpn_cpu import model
from .synthetic_occlusion_cpu import NUM_CLASSES, dataloader, lr_multiplier, optimizer, train
from .tied_resnet import cpu_detection_bottom_up

model.backbone.bottom_up = cpu_detection_bottom_up
model.roi_heads.num_classes = NUM_CLASSES
dataloader.train.mapper.use_instance_mask = True
train.output_dir = "output/tied_conv/synthetic_mask_rcnn_tied_resnet50_fpn_cpu"
