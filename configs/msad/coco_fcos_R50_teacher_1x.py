"""MSAD multi-scale fusion teacher, FCOS R50 on COCO 2017, as the authors train it: high-res
batches with short side 640..800 (max 1333), padded to multiples of 256, and their 0.5x copies
through one aligned ResNet-50 FPN (p2..p7) and one FCOS head, C-FF fusion, L_H + L_L + 0.4 L_F;
batch 8, LR 0.01, 180k iterations (= 1x at batch 16), ImageNet MSRA R-50 initialisation.
Evaluated on the fused path (Table 1 "T H&L"); ``model.inference_path=high`` / ``low`` give
"T H" / "T L" (the low path reads the 0.5x copy of the 800 px test image).

Slimmed ResNet-50s (supplement Table 1): ``model.detector.backbone.width=0.25`` (0.5, 0.75; the
FPN stays at 256 channels), with ImageNet weights of that width as ``train.init_checkpoint``.
"""
from ..common.data.coco import dataloader
from ..common.models.fcos import model
from ..common.optim import SGD as optimizer
from ..common.schedules import step_schedule
from ..common.train import train
from .models import IMAGENET_R50_CHECKPOINT, aligned_backbone, fusion_teacher

aligned_backbone(model, "p2-p7")
model = fusion_teacher(model, fusion_loss_weight=0.4)

dataloader.train.mapper.use_instance_mask = False
dataloader.train.total_batch_size = 8

train.init_checkpoint = IMAGENET_R50_CHECKPOINT
train.max_iter = 180000
train.eval_period = 20000
train.checkpointer.period = 5000
train.output_dir = "output/msad/coco_fcos_R50_teacher_1x"

optimizer.lr = 0.01
lr_multiplier = step_schedule(milestones=[120000, 160000], max_iter=train.max_iter, warmup_iters=1000)
