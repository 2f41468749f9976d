"""MSAD low-resolution student for RetinaNet R50 on COCO 2017: coco_retinanet_R50_teacher_1x.py's
detector at 0.5x input (400 px at test), pyramid shifted by one level, initialised from that
teacher, aligned KD with gamma 0.6 (500-iteration warm-up), detectron2's 1x schedule."""
from .coco_retinanet_R50_teacher_1x import dataloader, lr_multiplier, optimizer, train
from .coco_retinanet_R50_teacher_1x import model as teacher
from .models import aligned_student

model = aligned_student(teacher, distill_weight=0.6, warmup_iters=500)
dataloader.test.mapper.augmentations[0].update(short_edge_length=400, max_size=667)
train.init_checkpoint = "output/msad/coco_retinanet_R50_teacher_1x/model_final.pth"
train.output_dir = "output/msad/coco_retinanet_R50_student_1x"
