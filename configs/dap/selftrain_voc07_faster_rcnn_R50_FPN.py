"""Self-training after VOC07 fine-tuning (paper Table 9). First label VOC12 trainval (its boxes
unused) with the fine-tuned detector, flip test-time augmentation, keeping detections with score
>= 0.6 or the image's best:

    python -m dap.self_training --config-file configs/dap/finetune_voc07_faster_rcnn_R50_FPN.py \\
        --weights output/dap/imagenet/finetune_voc07_faster_rcnn_R50_FPN/model_final.pth \\
        --dataset voc_2012_trainval --output output/dap/imagenet/selftrain/voc12_pseudo_labels.json

then this config tunes that detector for 2 more epochs on VOC07 trainval + the pseudo-labelled
VOC12 images (16,551 images; LR 0.001, the fine-tuning's final LR), evaluated on VOC07 test.
"""
from detectron2.data import MetadataCatalog

from dap import register_pseudo_box_dataset

from .finetune_voc07_faster_rcnn_R50_FPN import (
    dataloader, epochs_to_iterations, model, optimizer, train,
)
from ..common.schedules import step_schedule

PSEUDO_LABELS = "voc_2012_trainval_dap_self_training"
register_pseudo_box_dataset(
    PSEUDO_LABELS,
    json_file="output/dap/imagenet/selftrain/voc12_pseudo_labels.json",
    image_root="",  # the JSON keeps the source dataset's file names
    thing_classes=MetadataCatalog.get("voc_2007_trainval").thing_classes,
    made_by="python -m dap.self_training",
)
dataloader.train.dataset.names = ("voc_2007_trainval", PSEUDO_LABELS)
train.init_checkpoint = "output/dap/imagenet/finetune_voc07_faster_rcnn_R50_FPN/model_final.pth"
train.output_dir = "output/dap/imagenet/selftrain_voc07_faster_rcnn_R50_FPN"
train.max_iter = epochs_to_iterations(2, images=5011 + 11540)
train.eval_period = train.max_iter
optimizer.lr = 0.001
lr_multiplier = step_schedule(milestones=[], max_iter=train.max_iter)
