"""coco_fcos_R50_teacher_1x.py with the 3x schedule and supplement E's weights for FCOS
(lambda 0.4, gamma 0.8)."""
from ..common.schedules import step_schedule
from .coco_fcos_R50_teacher_1x import dataloader, model, optimizer, train

train.max_iter = 540000  # 3x at batch 8
train.output_dir = "output/msad/coco_fcos_R50_teacher_3x"
lr_multiplier = step_schedule(milestones=[420000, 500000], max_iter=train.max_iter, warmup_iters=1000)
