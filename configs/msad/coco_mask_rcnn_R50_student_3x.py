"""coco_mask_rcnn_R50_student_1x.py with detectron2's 3x schedule (270k iterations) and supplement E's
weights for Mask R-CNN (lambda 0.2, gamma 0.6)."""
from ..common.schedules import lr_multiplier_3x as lr_multiplier
from .coco_mask_rcnn_R50_student_1x import dataloader, model, optimizer, train

train.max_iter = 270000
train.output_dir = "output/msad/coco_mask_rcnn_R50_student_3x"
model.distill_weight = 0.6
model.teacher.fusion_loss_weight = 0.2
train.init_checkpoint = "output/msad/coco_mask_rcnn_R50_teacher_3x/model_final.pth"
