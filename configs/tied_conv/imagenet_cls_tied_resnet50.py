"""TiedResNet-50 ImageNet classification with the paper's recipe: SGD momentum 0.9, batch 256,
LR 0.1 divided by 10 every 30 epochs, 100 epochs, 224 crops (TBC paper, Table 1).
TiedResNet-50-S / -101: ``model.backbone.variant=S`` / ``model.backbone.depth=101``."""
from ..common.data.imagenet import dataloader
from ..common.models.classifier import model
from ..common.optim import SGD as optimizer
from ..common.schedules import step_schedule
from ..common.train import train
from .tied_resnet import classification_backbone

model.backbone = classification_backbone

ITERS_PER_EPOCH = 1281167 // 256
train.max_iter = 100 * ITERS_PER_EPOCH
train.eval_period = 5 * ITERS_PER_EPOCH
train.checkpointer.period = ITERS_PER_EPOCH
train.output_dir = "output/tied_conv/imagenet_cls_tied_resnet50"

dataloader.train.total_batch_size = 256
optimizer.lr = 0.1
optimizer.weight_decay = 1e-4
optimizer.params.weight_decay_norm = 1e-4  # torchvision's ImageNet recipe decays BN too
lr_multiplier = step_schedule(milestones=[30 * ITERS_PER_EPOCH, 60 * ITERS_PER_EPOCH, 90 * ITERS_PER_EPOCH],
                              max_iter=train.max_iter)
