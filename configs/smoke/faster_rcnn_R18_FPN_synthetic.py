"""Smoke config: CPU-sized Faster R-CNN R18-FPN trained from scratch on the embedded synthetic
shapes, evaluated with the COCO and the VOC evaluators. A few minutes on 2 CPU cores."""
from detectron2.data import MetadataCatalog

from ..common.data.synthetic_detection import dataloader
from ..common.models.faster_rcnn_fpn_cpu import model
from ..common.optim import SGD as optimizer
from ..common.schedules import step_schedule
from ..common.train import train

model.roi_heads.num_classes = len(MetadataCatalog.get("synthetic_shapes_train").thing_classes)

train.max_iter = 300
train.output_dir = "output/smoke_faster_rcnn_R18_FPN_synthetic"
train.eval_period = train.max_iter
train.checkpointer.period = 100
train.log_period = 20
train.seed = 0  # reproducible numbers for the README

optimizer.lr = 0.01
lr_multiplier = step_schedule(milestones=[220, 280], max_iter=train.max_iter, warmup_iters=50)
