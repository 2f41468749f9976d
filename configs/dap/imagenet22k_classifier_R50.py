"""DAP step 1 on ImageNet-14M (ImageNet-21k, 21,841 classes at
$DETECTRON2_DATASETS/imagenet22k/train/<class>/): ResNet-50, batch 8192 for 50 epochs, LR 3.2
with cosine decay (paper Sec. 4.1). No held-out split is defined: evaluation is off."""
import os

from projects.common.data import datasets_root, register_imagenet_folder
from detectron2.data import DatasetCatalog

from ..common.schedules import cosine_schedule
from .imagenet_classifier_R50 import dataloader, model, optimizer, train

if "imagenet22k_train" not in DatasetCatalog.list():
    register_imagenet_folder("imagenet22k_train", os.path.join(datasets_root(), "imagenet22k", "train"))
IMAGES = 14197122
model.num_classes = 21841
dataloader.train.dataset.names = "imagenet22k_train"
dataloader.train.total_batch_size = 8192
del dataloader.test
del dataloader.evaluator
train.max_iter = 50 * IMAGES // 8192
train.eval_period = 0
train.checkpointer.period = 2000
train.output_dir = "output/dap/imagenet22k/classifier"
optimizer.lr = 3.2
lr_multiplier = cosine_schedule(warmup_iters=5 * IMAGES // 8192)
