"""voc07_oicr_R50_WS.py with ResNet101-WS (and its neck)."""
from .models import resnet_ws_backbone, resnet_ws_neck
from .voc07_oicr_R50_WS import dataloader, lr_multiplier, model, optimizer, test_time_augmentation, train

model.backbone = resnet_ws_backbone(101)
model.neck = resnet_ws_neck(101)
train.init_checkpoint = "output/resnet_ws/imagenet_classifier_R101_WS/model_final.pth"
train.output_dir = "output/resnet_ws/voc07_oicr_R101_WS"
