"""MSAD multi-scale fusion teacher for Mask R-CNN R50 on COCO 2017 (no public code exists for it; the
FCOS recipe of coco_fcos_R50_teacher_1x.py with detectron2's 1x schedule: batch 16, LR 0.02 for
R-CNNs / 0.01 for RetinaNet, 90k iterations): aligned ResNet-50 FPN (p1-p6), one head for the
high-res batch, its 0.5x copy and the C-FF-fused pyramid, lambda 0.2."""
from ..common.data.coco import dataloader
from ..common.models.mask_rcnn_fpn import model
from ..common.optim import SGD as optimizer
from ..common.schedules import lr_multiplier_1x as lr_multiplier
from ..common.train import train
from .models import IMAGENET_R50_CHECKPOINT, aligned_backbone, fusion_teacher

aligned_backbone(model, "p1-p6")
model = fusion_teacher(model, fusion_loss_weight=0.2)

dataloader.train.mapper.use_instance_mask = True

train.init_checkpoint = IMAGENET_R50_CHECKPOINT
train.max_iter = 90000
train.eval_period = 10000
train.checkpointer.period = 5000
train.output_dir = "output/msad/coco_mask_rcnn_R50_teacher_1x"
