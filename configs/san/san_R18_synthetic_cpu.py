"""CPU-sized SAN: half-width SAN ResNet-18 on the embedded synthetic classification split (8
classes, 128 px images) at 64, 48 and 32, evaluated at 64 (resize 73, centre crop 64). Its
individually trained twins are baseline_R18_synthetic_cpu_{64,48,32}.py (plain half-width
ResNet-18, same optimisation); compare them with ``python -m projects.san.resolution_table``.
"""
from detectron2.config import LazyCall as L
from detectron2.data import MetadataCatalog

from projects.san.data import MultiResolutionClassificationMapper, set_test_resolution

from ..common.data.synthetic_classification import dataloader
from ..common.schedules import cosine_schedule
from .san_R18_imagenet import model, optimizer, train

dataloader.train.mapper = L(MultiResolutionClassificationMapper)(
    resolutions=[64, 48, 32], crop_scale=(0.35, 1.0), image_format="BGR"
)
set_test_resolution(dataloader.test, 64)

model.backbone.width = 0.5
model.num_classes = len(MetadataCatalog.get("synthetic_shapes_cls_train").thing_classes)

train.max_iter = 300
train.eval_period = train.max_iter
train.checkpointer.period = train.max_iter
train.log_period = 20
train.seed = 0
train.output_dir = "output/san/san_R18_synthetic_cpu"

optimizer.lr = 0.1
optimizer.weight_decay = 5e-5
lr_multiplier = cosine_schedule(warmup_iters=20)
