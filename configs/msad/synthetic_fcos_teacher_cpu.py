"""CPU MSAD teacher: the CPU FCOS (synthetic_fcos_R18_FPN_cpu.py) on an aligned half-width
ResNet-18 pyramid (p2..p7), trained on the ~256 px synthetic images and their 128 px copies with
C-FF (lambda 0.4). Evaluated on the fused path ("T H&L"); the H and L rows of supplement Table 1
come from the same weights with ``model.inference_path=high`` / ``low`` (see
projects/msad/README.md)."""
from ..common.schedules import step_schedule
from .models import aligned_backbone, fusion_teacher
from .synthetic_fcos_R18_FPN_cpu import dataloader, model, optimizer, train

aligned_backbone(model, "p2-p7", depth=18, width=0.5, out_channels=128, norm="BN", freeze_at=0)
# batches padded to 64 (2 x the FPN's 32, the smallest at which the paired levels match), not the
# authors' 256 (the COCO configs): most batches of 4 hold a 288 px image, which 256 pads to 512 px
# instead of 320 (2.6x the pixels) on these 224-288 px images
model = fusion_teacher(model, fusion_loss_weight=0.4, channels=128, size_divisibility=64)
train.output_dir = "output/msad/synthetic_fcos_teacher_cpu"
train.max_iter = 600
train.eval_period = train.max_iter
train.checkpointer.period = 200
lr_multiplier = step_schedule(milestones=[450, 550], max_iter=train.max_iter, warmup_iters=50)
