"""DAP step 4 on VOC07+12 trainval (11,540 images), evaluated on VOC07 test (paper Table 2):
as finetune_voc07_faster_rcnn_R50_FPN.py, 14 epochs with LR x0.1 after epoch 10."""
from .finetune_voc07_faster_rcnn_R50_FPN import (
    dataloader, epochs_to_iterations, model, optimizer, train,
)
from ..common.schedules import step_schedule

IMAGES_PER_EPOCH = 11540


def voc0712_iterations(epochs):
    return epochs_to_iterations(epochs, images=IMAGES_PER_EPOCH)


dataloader.train.dataset.names = "voc_0712_trainval"
train.output_dir = "output/dap/imagenet/finetune_voc0712_faster_rcnn_R50_FPN"
train.max_iter = voc0712_iterations(14)
train.eval_period = voc0712_iterations(2)
train.checkpointer.period = voc0712_iterations(2)
lr_multiplier = step_schedule(milestones=[voc0712_iterations(10)], max_iter=train.max_iter, warmup_iters=100)
