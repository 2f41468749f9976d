"""CPU MSAD low-resolution student: the teacher's FCOS at 0.5x input (128 px instead of ~256) with
its pyramid shifted by one level, initialised from the trained teacher (its checkpoint fills the
student and the frozen teacher) and trained with the aligned KD loss (gamma 0.6, warm-up 50
iterations), 300 iterations. Training batches are the teacher's high-resolution ones (the student reads their 0.5x
copy); evaluation feeds it 128 px images. ``model.distill_weight=0`` trains the same student
without distillation (the comparison of projects/msad/README.md)."""
from ..common.schedules import step_schedule
from .models import aligned_student
from .synthetic_fcos_teacher_cpu import dataloader, optimizer, train
from .synthetic_fcos_teacher_cpu import model as teacher

model = aligned_student(teacher, distill_weight=0.6, warmup_iters=50)
dataloader.test.mapper.augmentations[0].update(short_edge_length=128, max_size=240)
train.init_checkpoint = "output/msad/synthetic_fcos_teacher_cpu/model_final.pth"
train.output_dir = "output/msad/synthetic_fcos_student_cpu"
train.max_iter = 300
train.eval_period = train.max_iter
train.checkpointer.period = 100
lr_multiplier = step_schedule(milestones=[220, 280], max_iter=train.max_iter, warmup_iters=20)
