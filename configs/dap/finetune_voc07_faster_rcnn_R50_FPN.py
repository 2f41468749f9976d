"""DAP step 4 on Pascal VOC 2007 (paper Table 2): Faster R-CNN R50-FPN fine-tuned on VOC07
trainval, evaluated on VOC07 test as AP50 (area under the PR curve) and AP50 (VOC07 11-point).

Initialisation (``train.init_checkpoint``): DAP = ``python -m dap.transfer --input
output/dap/imagenet/pretrain_faster_rcnn_R50_FPN/model_final.pth --output output/dap/imagenet/dap_init.pth``
(the default); CLS = the converted classifier, ``train.init_checkpoint=output/dap/imagenet/cls_init.pth``.
Paper hyper-parameters: short side 640 (max 1066, the authors'), batch 16, LR 0.01, 14 epochs
(4,385 iterations on 5,011 images) with LR x0.1 after epoch 10, frozen BN, frozen stem, weight
decay 1e-4 (IN-1M; use ``optimizer.weight_decay=1e-5`` after IN-14M pre-training).
ResNet-101: ``model.backbone.bottom_up.stages.depth=101`` with the R101 initialisation.
"""
from ..common.data.voc import dataloader
from ..common.models.faster_rcnn_fpn import model
from ..common.optim import SGD as optimizer
from ..common.schedules import step_schedule
from ..common.train import train
from .models import torchvision_style_backbone

VOC_CLASSES = 20
IMAGES_PER_EPOCH = 5011
BATCH_SIZE = 16


def epochs_to_iterations(epochs, images=IMAGES_PER_EPOCH, batch_size=BATCH_SIZE):
    return round(epochs * images / batch_size)


torchvision_style_backbone(model, depth=50, freeze_at=1)
model.roi_heads.num_classes = VOC_CLASSES

dataloader.train.dataset.names = "voc_2007_trainval"
dataloader.train.mapper.augmentations[0].update(short_edge_length=(640,), max_size=1066)
dataloader.train.total_batch_size = BATCH_SIZE
dataloader.test.mapper.augmentations[0].update(short_edge_length=640, max_size=1066)

train.init_checkpoint = "output/dap/imagenet/dap_init.pth"
train.output_dir = "output/dap/imagenet/finetune_voc07_faster_rcnn_R50_FPN"
train.max_iter = epochs_to_iterations(14)
train.eval_period = epochs_to_iterations(2)
train.checkpointer.period = epochs_to_iterations(2)
optimizer.lr = 0.01
optimizer.weight_decay = 1e-4
lr_multiplier = step_schedule(milestones=[epochs_to_iterations(10)], max_iter=train.max_iter, warmup_iters=100)
