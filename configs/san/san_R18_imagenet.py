"""SAN ResNet-18 on ImageNet (supplement Algorithm 1): every batch at 224, 192, 160, 128 and 96
(one crop per image shared by all), cross-entropy at each + dense top-down scale distillation.
SGD momentum 0.9, LR 0.1, weight decay 1e-4 on all parameters, batch 256, per-iteration cosine,
120 epochs. Validation at 224 (resize 256, centre crop); other test resolutions and the
proxy / ideal / data-free inference: ``python -m projects.san.resolution_table``.

Inputs are normalised with ImageNet mean/std in BGR like every classifier of the collection (the
authors feed [0, 1] RGB without normalisation; normalising keeps the stem's inputs centred and
lets the same data pipeline serve the baselines). The training resolutions have one source,
``dataloader.train.mapper.resolutions``, which the backbone reads by interpolation.
"""
from detectron2.config import LazyCall as L

from projects.san import SANResNet
from projects.san.data import MultiResolutionClassificationMapper
from projects.san.modeling import ScaleAdaptiveClassifier

from ..common.data.imagenet import dataloader
from ..common.models.classifier import model
from ..common.optim import SGD as optimizer
from ..common.schedules import cosine_schedule
from ..common.train import train

dataloader.train.mapper = L(MultiResolutionClassificationMapper)(
    resolutions=[224, 192, 160, 128, 96], image_format="BGR"
)

model._target_ = ScaleAdaptiveClassifier
model.backbone = L(SANResNet)(
    depth=18, resolutions="${...dataloader.train.mapper.resolutions}", width=1.0, out_features=["res5"]
)
model.ce_weight = 1.0
model.distillation_weight = 1.0

ITERS_PER_EPOCH = 1281167 // 256
train.max_iter = 120 * ITERS_PER_EPOCH
train.eval_period = 5 * ITERS_PER_EPOCH
train.checkpointer.period = ITERS_PER_EPOCH
train.output_dir = "output/san/san_R18_imagenet"

optimizer.lr = 0.1
optimizer.weight_decay = 1e-4
optimizer.params.weight_decay_norm = None  # the authors decay every parameter, BN included
lr_multiplier = cosine_schedule()
