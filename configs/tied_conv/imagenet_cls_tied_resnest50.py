"""TiedResNeSt50-S ImageNet classification (TBC paper, Table 1) with the recipe of
imagenet_cls_tied_resnet50.py (SGD momentum 0.9, batch 256, LR 0.1 divided by 10 every 30 epochs,
100 epochs, 224 crops), whose settings are imported. The ResNeSt-50-fast baseline:
``model.backbone.B=1 model.backbone.fast=True``."""
from detectron2.config import LazyCall as L

from tied_conv import build_tied_resnest

from .imagenet_cls_tied_resnet50 import dataloader, lr_multiplier, model, optimizer, train

# trained from scratch: BN, nothing frozen, classification head on res5
model.backbone = L(build_tied_resnest)(
    depth=50, B=2, fast=False, norm="BN", freeze_at=0, out_features=["res5"],
)
train.output_dir = "output/tied_conv/imagenet_cls_tied_resnest50"
