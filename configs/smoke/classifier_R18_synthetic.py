"""Smoke config for the classification path: ResNet-18 classifier trained from scratch on the
embedded synthetic classification split, top-1/top-5 accuracy."""
from detectron2.data import MetadataCatalog

from ..common.data.synthetic_classification import dataloader
from ..common.models.classifier_cpu import model
from ..common.optim import SGD as optimizer
from ..common.schedules import cosine_schedule
from ..common.train import train

model.num_classes = len(MetadataCatalog.get("synthetic_shapes_cls_train").thing_classes)

train.max_iter = 200
train.output_dir = "output/smoke_classifier_R18_synthetic"
train.eval_period = train.max_iter
train.checkpointer.period = 100
train.log_period = 20
train.seed = 0

optimizer.lr = 0.1
optimizer.weight_decay = 5e-5
lr_multiplier = cosine_schedule(warmup_iters=20)
