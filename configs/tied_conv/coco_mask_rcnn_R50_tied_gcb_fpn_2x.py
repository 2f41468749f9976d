"""Mask R-CNN R50-FPN with TiedGCB (B=2, ratio 1/4) after the last 1x1 of every res3-res5
bottleneck, COCO 2x (TBC paper, Table 4). ``...context_B=1`` is plain GCB, ``=4`` TiedGCB B=4.
Starts from detectron2's ImageNet ResNet-50 (the context blocks start as identities)."""
from detectron2.config import LazyCall as L

from tied_conv import context_resnet_stages

from ..common.models.mask_rcnn_fpn import model
from .coco_2x import dataloader, lr_multiplier, optimizer, train

model.backbone.bottom_up.stages = L(context_resnet_stages)(
    depth=50, context="gcb", context_B=2, context_kwargs={"ratio": 0.25}, stride_in_1x1=True, norm="FrozenBN"
)
train.init_checkpoint = "detectron2://ImageNetPretrained/MSRA/R-50.pkl"
train.output_dir = "output/tied_conv/coco_mask_rcnn_R50_tied_gcb_fpn_2x"
