"""ResNet18-WS ImageNet pre-training (appendix A.1, Table A1): the classification form of the
backbone (output stride 16, trainable BN) -> 2x2 max-pool -> redundant adaptation neck
(4096, 4096) -> 1000-way fc, so that the neck is pre-trained with the backbone.

The paper's recipe: 120 epochs at batch 128 (4 GPUs x 32) and LR 0.05; SGD momentum 0.9 and
weight decay 1e-4 on every parameter, LR x0.1 every 30 epochs, as the authors' ImageNet script.
224 random-resized crops + flips; validation on the 224 centre crop of the 256-resized image.
Paper: 28.5% top-1 error. ``model_final.pth`` is the ``train.init_checkpoint`` of the
ResNet18-WS WSOD configs (its ``backbone.*`` and ``neck.*``; ``fc.*`` is unused).
"""
from ..common.data.imagenet import dataloader
from ..common.optim import SGD as optimizer
from ..common.schedules import step_schedule
from ..common.train import train
from .models import resnet_ws_classifier

model = resnet_ws_classifier(depth=18)

dataloader.train.total_batch_size = 128

ITERS_PER_EPOCH = 1281167 // 128
train.max_iter = 120 * ITERS_PER_EPOCH
train.eval_period = 5 * ITERS_PER_EPOCH
train.checkpointer.period = ITERS_PER_EPOCH
train.output_dir = "output/resnet_ws/imagenet_classifier_R18_WS"

optimizer.lr = 0.05
optimizer.weight_decay = 1e-4
optimizer.params.weight_decay_norm = None  # the authors decay every parameter, BN included
lr_multiplier = step_schedule(
    milestones=[30 * ITERS_PER_EPOCH, 60 * ITERS_PER_EPOCH, 90 * ITERS_PER_EPOCH], max_iter=train.max_iter
)
