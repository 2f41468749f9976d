"""MSAD multi-scale fusion teacher for RetinaNet R50 on COCO 2017 (no public code exists for it; the
FCOS recipe of coco_fcos_R50_teacher_1x.py with detectron2's 1x schedule: batch 16, LR 0.02 for
R-CNNs / 0.01 for RetinaNet, 90k iterations): aligned ResNet-50 FPN (p2-p7), one head for the
high-res batch, its 0.5x copy and the C-FF-fused pyramid, lambda 0.4."""
from ..common.data.coco import dataloader
from ..common.models.retinanet import model
from ..common.optim import SGD as optimizer
from ..common.schedules import lr_multiplier_1x as lr_multiplier
from ..common.train import train
from .models import IMAGENET_R50_CHECKPOINT, aligned_backbone, fusion_teacher

aligned_backbone(model, "p2-p7")
model = fusion_teacher(model, fusion_loss_weight=0.4)

dataloader.train.mapper.use_instance_mask = False

train.init_checkpoint = IMAGENET_R50_CHECKPOINT
train.max_iter = 90000
train.eval_period = 10000
train.checkpointer.period = 5000
train.output_dir = "output/msad/coco_retinanet_R50_teacher_1x"
optimizer.lr = 0.01  # detectron2 RetinaNet 1x
