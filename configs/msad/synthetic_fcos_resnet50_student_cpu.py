"""CPU MSAD low-resolution student of synthetic_fcos_resnet50_teacher_cpu.py (README.md,
"Combinations", run 3): synthetic_fcos_student_cpu.py (aligned KD, gamma 0.6, 300 iterations,
128 px) with that teacher's ResNet-50 pyramid, initialised from its weights."""
from .models import aligned_student
from .synthetic_fcos_resnet50_teacher_cpu import model as teacher
from .synthetic_fcos_student_cpu import dataloader, lr_multiplier, optimizer, train

model = aligned_student(teacher, distill_weight=0.6, warmup_iters=50)
train.init_checkpoint = "output/msad/synthetic_resnet50/teacher/model_final.pth"
train.output_dir = "output/msad/synthetic_resnet50/student"
