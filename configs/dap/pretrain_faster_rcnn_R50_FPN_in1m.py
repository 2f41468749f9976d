"""DAP pre-training of Faster R-CNN R50-FPN on the pseudo boxes of ImageNet-1M (paper Table 1/2
"IN-1M DAP"); see imagenet_pretrain_base.py for data, initialisation and schedule."""
from ..common.models.faster_rcnn_fpn import model
from .imagenet_pretrain_base import NUM_CLASSES, dataloader, lr_multiplier, optimizer, train
from .models import torchvision_style_backbone

torchvision_style_backbone(model, depth=50)
model.roi_heads.num_classes = NUM_CLASSES
