"""CPU-sized RetinaNet with a quarter-width TiedResNet-50 on the occluded synthetic shapes;
baseline: synthetic_retinanet_resnet50_fpn_cpu.py."""
from ..common.models.retinanet_cpu import model
from .synthetic_occlusion_cpu import NUM_CLASSES, dataloader, lr_multiplier, optimizer, train
from .tied_resnet import cpu_detection_bottom_up

model.backbone.bottom_up = cpu_detection_bottom_up
model.backbone.bottom_up.out_features = ["res3", "res4", "res5"]
model.backbone.top_block.in_channels = 512  # res5 of the quarter-width network
model.num_classes = NUM_CLASSES
train.output_dir = "output/tied_conv/synthetic_retinanet_tied_resnet50_fpn_cpu"
