"""coco_fcos_R50_student_1x.py with the 3x schedule and supplement E's weights for FCOS
(lambda 0.4, gamma 0.8)."""
from ..common.schedules import step_schedule
from .coco_fcos_R50_student_1x import dataloader, model, optimizer, train

model.distill_weight = 0.8
train.init_checkpoint = "output/msad/coco_fcos_R50_teacher_3x/model_final.pth"
train.max_iter = 270000
train.output_dir = "output/msad/coco_fcos_R50_student_3x"
lr_multiplier = step_schedule(milestones=[210000, 250000], max_iter=train.max_iter, warmup_iters=1000)
