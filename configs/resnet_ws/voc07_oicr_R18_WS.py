"""voc07_oicr_R50_WS.py with ResNet18-WS (and its neck: 4096/4096)."""
from .models import resnet_ws_backbone, resnet_ws_neck
from .voc07_oicr_R50_WS import dataloader, lr_multiplier, model, optimizer, test_time_augmentation, train

model.backbone = resnet_ws_backbone(18)
model.neck = resnet_ws_neck(18)
train.init_checkpoint = "output/resnet_ws/imagenet_classifier_R18_WS/model_final.pth"
train.output_dir = "output/resnet_ws/voc07_oicr_R18_WS"
