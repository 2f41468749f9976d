"""DAP step 4 at CPU size: k-shot fine-tuning of the CPU Faster R-CNN on the synthetic detection
data, from CLS (classifier backbone) or DAP (pre-trained detector) initialisation:

    train.init_checkpoint=output/dap/synthetic/cls_init.pth    # CLS: backbone only
    train.init_checkpoint=output/dap/synthetic/dap_init.pth    # DAP: python -m dap.transfer output

Frozen BN and frozen stem as in the paper. The k-shot subsets of synthetic_shapes_train
(k in 5, 10, 20, 50, 100; seeds 0-2) are registered here and sampled on first use into
$DETECTRON2_DATASETS/dap_splits; pick one with dataloader.train.dataset.names=..., e.g.
synthetic_shapes_train_20shot_seed1. Evaluated with COCO AP and VOC AP50 (area and 11-point)."""
from detectron2.data import MetadataCatalog

from dap import register_k_shot_datasets

from ..common.data.synthetic_detection import dataloader
from ..common.models.cpu import shrink_resnet
from ..common.models.faster_rcnn_fpn_cpu import model
from ..common.optim import SGD as optimizer
from ..common.schedules import step_schedule
from ..common.train import train
from .models import TORCHVISION_PIXEL_STD

BASE_SET = "synthetic_shapes_train"
K_SHOT_SETS = register_k_shot_datasets(BASE_SET)  # k in 5..100, seeds 0-2

shrink_resnet(model.backbone.bottom_up, norm="FrozenBN")
model.backbone.bottom_up.freeze_at = 1
model.pixel_std = TORCHVISION_PIXEL_STD  # the classifier's input normalisation
model.roi_heads.num_classes = len(MetadataCatalog.get(BASE_SET).thing_classes)

dataloader.train.dataset.names = f"{BASE_SET}_10shot_seed0"

train.init_checkpoint = "output/dap/synthetic/dap_init.pth"
train.output_dir = "output/dap/synthetic/finetune"
train.max_iter = 200
train.eval_period = train.max_iter
train.checkpointer.period = 100
train.log_period = 20
train.seed = 0

optimizer.lr = 0.005  # FrozenBN: the from-scratch 0.01 of the smoke config diverges
lr_multiplier = step_schedule(milestones=[150], max_iter=train.max_iter, warmup_iters=20, warmup_factor=0.01)
