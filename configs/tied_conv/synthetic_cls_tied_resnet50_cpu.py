"""CPU-sized twin of imagenet_cls_tied_resnet50.py: a quarter-width TiedResNet-50 trained from
scratch on the embedded synthetic classification split (96 px crops), top-1/top-5."""
from detectron2.data import MetadataCatalog

from ..common.data.synthetic_classification import dataloader
from ..common.schedules import cosine_schedule
from .imagenet_cls_tied_resnet50 import model, optimizer, train

model.backbone.width = 0.25
model.num_classes = len(MetadataCatalog.get("synthetic_shapes_cls_train").thing_classes)
train.max_iter = 300
train.eval_period = train.max_iter
train.checkpointer.period = 100
train.log_period = 20
train.seed = 0
train.output_dir = "output/tied_conv/synthetic_cls_tied_resnet50_cpu"
optimizer.weight_decay = 5e-5
optimizer.params.weight_decay_norm = 0.0
lr_multiplier = cosine_schedule(warmup_iters=30)
