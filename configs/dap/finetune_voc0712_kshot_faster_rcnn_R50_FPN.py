"""Low-data fine-tuning (paper Fig. 4): k images per class sampled from VOC07+12 trainval
(k in 5, 10, 20, 50, 100; seeds 0-2; split files in $DETECTRON2_DATASETS/dap_splits, see
dap/datasets.py for how images with several classes count), evaluated on VOC07 test.

    train_net.py --config-file THIS dataloader.train.dataset.names=voc_0712_trainval_5shot_seed0 \\
        train.max_iter=... train.init_checkpoint=...

The paper tunes the number of iterations per k (early stopping) without giving them; the
default here (1,000 iterations, LR x0.1 at 750, for k=10) is a starting point to tune.
"""
from dap import register_k_shot_datasets

from ..common.schedules import step_schedule
from .finetune_voc07_faster_rcnn_R50_FPN import dataloader, model, optimizer, train

K_SHOT_SETS = register_k_shot_datasets("voc_0712_trainval")  # k in 5..100, seeds 0-2
dataloader.train.dataset.names = "voc_0712_trainval_10shot_seed0"
train.output_dir = "output/dap/imagenet/finetune_voc0712_kshot_faster_rcnn_R50_FPN"
train.max_iter = 1000
train.eval_period = 250
train.checkpointer.period = 250
lr_multiplier = step_schedule(milestones=[750], max_iter=train.max_iter, warmup_iters=100)
