"""Low-data fine-tuning on COCO (paper Fig. 3): k images per class of coco_2017_train (k in 5,
10, 20, 50, 100; seeds 0-2), evaluated on coco_2017_val. Pick the subset with
``dataloader.train.dataset.names=coco_2017_train_5shot_seed0``; the iteration count (default 4,000,
LR x0.1 at 3,000) is a starting point: the paper tunes it per k without giving the values."""
from dap import register_k_shot_datasets

from ..common.schedules import step_schedule
from .finetune_coco_faster_rcnn_R50_FPN_1x import dataloader, model, optimizer, train

K_SHOT_SETS = register_k_shot_datasets("coco_2017_train")  # k in 5..100, seeds 0-2
dataloader.train.dataset.names = "coco_2017_train_10shot_seed0"
train.output_dir = "output/dap/imagenet/finetune_coco_kshot_faster_rcnn_R50_FPN"
train.max_iter = 4000
train.eval_period = 1000
train.checkpointer.period = 1000
lr_multiplier = step_schedule(milestones=[3000], max_iter=train.max_iter, warmup_iters=200)
