"""DAP pre-training of Faster R-CNN R101-FPN on ImageNet-1M pseudo boxes (paper Tables 4/5;
the authors' R-101 run: batch 32, LR 0.004). Initialise from a converted ResNet-101 classifier."""
from .pretrain_faster_rcnn_R50_FPN_in1m import dataloader, lr_multiplier, model, optimizer, train

model.backbone.bottom_up.stages.depth = 101
train.init_checkpoint = "output/dap/imagenet/cls_init_R101.pth"
train.output_dir = "output/dap/imagenet/pretrain_faster_rcnn_R101_FPN"
