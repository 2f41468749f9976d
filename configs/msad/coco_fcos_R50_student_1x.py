"""MSAD low-resolution student, FCOS R50 on COCO 2017: coco_fcos_R50_teacher_1x.py's detector at
0.5x input (400 px at test), pyramid shifted by one level, initialised from that teacher's final
weights (they fill the student and its frozen teacher), aligned KD on FPN features with gamma 0.6
and a 500-iteration warm-up; batch 16, LR 0.01, 90k iterations (the authors' student schedule).
Inference at other resolutions (supplement Table 2): ``dataloader.test.mapper.augmentations.0.
short_edge_length=320`` or ``python -m projects.msad.resolution_table``.

A slimmed student needs the same width in both pyramids: ``model.detector.backbone.width=0.5
model.teacher.detector.backbone.width=0.5`` with the teacher of that width as init checkpoint.
"""
from ..common.schedules import step_schedule
from .coco_fcos_R50_teacher_1x import dataloader, optimizer, train
from .coco_fcos_R50_teacher_1x import model as teacher
from .models import aligned_student

model = aligned_student(teacher, distill_weight=0.6, warmup_iters=500)

dataloader.train.total_batch_size = 16
dataloader.test.mapper.augmentations[0].update(short_edge_length=400, max_size=667)

train.init_checkpoint = "output/msad/coco_fcos_R50_teacher_1x/model_final.pth"
train.max_iter = 90000
train.eval_period = 10000
train.output_dir = "output/msad/coco_fcos_R50_student_1x"

lr_multiplier = step_schedule(milestones=[60000, 80000], max_iter=train.max_iter, warmup_iters=1000)
