"""SAN MobileNetV2 (width 1.0) on ImageNet at 224..96: san_R18_imagenet.py's training with the
MobileNetV2 recipe, LR 0.05, weight decay 4e-5, 150 epochs (supplement Table 3 right)."""
from detectron2.config import LazyCall as L

from projects.san import SANMobileNetV2

from ..common.schedules import cosine_schedule
from .san_R18_imagenet import ITERS_PER_EPOCH, dataloader, model, optimizer, train

model.backbone = L(SANMobileNetV2)(resolutions="${...dataloader.train.mapper.resolutions}", width_mult=1.0)
train.max_iter = 150 * ITERS_PER_EPOCH
train.output_dir = "output/san/san_MobileNetV2_imagenet"
optimizer.lr = 0.05
optimizer.weight_decay = 4e-5
lr_multiplier = cosine_schedule()
