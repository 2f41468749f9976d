"""DAP step 1 on ImageNet-1M: a torchvision-style ResNet-50 classifier. The paper uses
torchvision's pre-trained weights instead of training one (it cannot be downloaded here):

    python -m projects.common.checkpoint --from-torchvision --input resnet50-0676ba61.pth \\
        --output output/dap/imagenet/classifier/model_final.pth

Training it yourself: torchvision's recipe, SGD 0.1 at batch 256, 90 epochs, LR x0.1 every 30.
ResNet-101 (the authors' CAM network): ``model.backbone.stages.depth=101``.
"""
from ..common.data.imagenet import dataloader
from ..common.models.classifier import model
from ..common.optim import SGD as optimizer
from ..common.schedules import step_schedule
from ..common.train import train

ITERS_PER_EPOCH = 1281167 // 256
train.max_iter = 90 * ITERS_PER_EPOCH
train.eval_period = 5 * ITERS_PER_EPOCH
train.checkpointer.period = ITERS_PER_EPOCH
train.output_dir = "output/dap/imagenet/classifier"
optimizer.lr = 0.1
optimizer.weight_decay = 1e-4
lr_multiplier = step_schedule(milestones=[30 * ITERS_PER_EPOCH, 60 * ITERS_PER_EPOCH], max_iter=train.max_iter)
