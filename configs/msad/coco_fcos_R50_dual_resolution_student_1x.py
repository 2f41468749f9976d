"""MSAD dual-resolution fusion student (supplement D, Table 3 first row): a 0.5-width ResNet-50
pyramid on the 800 px input and a full-width one on its 0.5x copy, fused by C-FF, one FCOS head;
distilled from coco_fcos_R50_teacher_1x.py (the full-width branch and the head start from it,
the thin branch from its own ImageNet weights: ``train.init_checkpoint`` loads the teacher)."""
from .coco_fcos_R50_student_1x import dataloader, lr_multiplier, optimizer, train
from .coco_fcos_R50_teacher_1x import model as teacher
from .models import dual_resolution_student

model = dual_resolution_student(teacher, high_res_width=0.5, low_res_width=1.0, distill_weight=0.6)
dataloader.test.mapper.augmentations[0].update(short_edge_length=800, max_size=1333)
train.output_dir = "output/msad/coco_fcos_R50_dual_resolution_student_1x"
