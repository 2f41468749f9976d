"""MSAD low-resolution student of coco_fcos_tied_resnet50_teacher_1x.py (README.md,
"Combinations", run 3 at full scale): coco_fcos_R50_student_1x.py (aligned KD, gamma 0.6, 90k
iterations, 400 px) with that teacher's TiedResNet-50 pyramid, initialised from its weights."""
from .coco_fcos_R50_student_1x import dataloader, lr_multiplier, optimizer, train
from .coco_fcos_tied_resnet50_teacher_1x import model as teacher
from .models import aligned_student

model = aligned_student(teacher, distill_weight=0.6, warmup_iters=500)
train.init_checkpoint = "output/msad/coco_fcos_tied_resnet50_teacher_1x/model_final.pth"
train.output_dir = "output/msad/coco_fcos_tied_resnet50_student_1x"
