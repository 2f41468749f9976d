"""DAP pre-training on ImageNet-14M (ImageNet-21k, 21,841 classes; paper "IN-14M DAP"):
443,658 iterations at batch 32. Images at $DETECTRON2_DATASETS/imagenet22k/train/<class>/, pseudo
boxes from the IN-14M classifier (imagenet22k_classifier_R50.py) written to
output/dap/imagenet22k/pseudo_boxes/train.json."""
import os

from dap import register_pseudo_box_dataset
from projects.common.data import datasets_root

from ..common.schedules import step_schedule
from .imagenet_pretrain_base import folder_class_names
from .pretrain_faster_rcnn_R50_FPN_in1m import dataloader, model, optimizer, train

IMAGENET22K_TRAIN = os.path.join(datasets_root(), "imagenet22k", "train")
register_pseudo_box_dataset(
    "imagenet22k_train_dap_pseudo_boxes",
    json_file="output/dap/imagenet22k/pseudo_boxes/train.json",
    image_root=IMAGENET22K_TRAIN,
    thing_classes=folder_class_names(IMAGENET22K_TRAIN),
)
dataloader.train.dataset.names = "imagenet22k_train_dap_pseudo_boxes"
model.roi_heads.num_classes = 21841
train.max_iter = 443658
train.init_checkpoint = "output/dap/imagenet22k/cls_init.pth"
train.output_dir = "output/dap/imagenet22k/pretrain_faster_rcnn_R50_FPN"
lr_multiplier = step_schedule(
    milestones=[train.max_iter * 2 // 3, train.max_iter * 8 // 9], max_iter=train.max_iter,
    warmup_iters=2000, warmup_factor=0.01,
)
