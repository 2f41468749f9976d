"""What the full-scale DAP pre-training configs share (paper Sec. 4.1, step 3).

The detector's backbone is a torchvision-style ResNet (stride in the 3x3 conv, ImageNet
mean/std, frozen BN, frozen stem) so that it loads the step-1 classifier: torchvision's
ImageNet weights converted with
``python -m projects.common.checkpoint --from-torchvision --input resnet50.pth --output cls.pth``
then ``--input cls.pth --output cls_init.pth --fpn`` (or a classifier trained with
imagenet_classifier_R50.py, converted with ``--fpn``), given as ``train.init_checkpoint``.

Data: the CAM pseudo boxes of ImageNet-1M train written by ``python -m dap.generate_pseudo_boxes
--dataset imagenet_train --output output/dap/imagenet/pseudo_boxes/train.json`` (registered here as
``imagenet_train_dap_pseudo_boxes``), short edge drawn from (96, 160, 320, 640) with flips.
Schedule (paper): batch 32 for 40,038 iterations = one epoch of ImageNet-1M; LR 0.004 (the
authors' 0.008 at batch 64), 2000 warm-up iterations from 1 %, weight decay 1e-4; the paper
gives no LR steps, we divide by 10 at 2/3 and 8/9 of the run (detectron2's 1x shape).
No evaluation: the pseudo-box classes are ImageNet's (see imagenet_detector_as_classifier_R50.py).
"""
import os

from dap import register_pseudo_box_dataset
from projects.common.data import datasets_root

from ..common.data.coco import dataloader
from ..common.optim import SGD as optimizer
from ..common.schedules import step_schedule
from ..common.train import train


def folder_class_names(root):
    """ImageNet class names = sorted class folders (as imagenet_train), without reading the JSON."""
    return sorted(entry.name for entry in os.scandir(root) if entry.is_dir()) if os.path.isdir(root) else None


IMAGENET_TRAIN = os.path.join(datasets_root(), "imagenet", "train")
PSEUDO_BOX_SET = "imagenet_train_dap_pseudo_boxes"
register_pseudo_box_dataset(
    PSEUDO_BOX_SET,
    json_file="output/dap/imagenet/pseudo_boxes/train.json",
    image_root=IMAGENET_TRAIN,
    thing_classes=folder_class_names(IMAGENET_TRAIN),
)
NUM_CLASSES = 1000

dataloader.train.dataset.names = PSEUDO_BOX_SET
dataloader.train.mapper.augmentations[0].update(short_edge_length=(96, 160, 320, 640), max_size=1066)
dataloader.train.mapper.use_instance_mask = False
dataloader.train.total_batch_size = 32
del dataloader.test
del dataloader.evaluator

train.max_iter = 40038
train.checkpointer.period = 5000
train.eval_period = 0
train.init_checkpoint = "output/dap/imagenet/cls_init.pth"
train.output_dir = "output/dap/imagenet/pretrain_faster_rcnn_R50_FPN"
optimizer.lr = 0.004
optimizer.weight_decay = 1e-4
lr_multiplier = step_schedule(
    milestones=[train.max_iter * 2 // 3, train.max_iter * 8 // 9], max_iter=train.max_iter,
    warmup_iters=2000, warmup_factor=0.01,
)
