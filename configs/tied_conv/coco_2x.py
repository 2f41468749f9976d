"""What the tied_conv COCO detection configs share: COCO 2017 data, SGD at batch 16 with LR 0.02,
detectron2's 2x schedule (180k iterations; the paper's "LS=2x" in MMDetection is 24 epochs).

Backbones start from an ImageNet-trained TiedResNet classifier of
imagenet_cls_tied_resnet50.py, converted for detection with
``python -m projects.common.checkpoint --input <classifier>/model_final.pth --output <file> --fpn``
and passed as ``train.init_checkpoint=<file>``.
"""
from ..common.data.coco import dataloader
from ..common.optim import SGD as optimizer
from ..common.schedules import lr_multiplier_2x as lr_multiplier
from ..common.train import train

train.max_iter = 180000
train.eval_period = 20000
optimizer.lr = 0.02
