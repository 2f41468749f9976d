"""DAP step 1 at CPU size: a classifier on the embedded synthetic classification split whose
backbone is exactly the CPU detectors' bottom-up (half-width ResNet-18, BN), so its weights
initialise them (CLS pre-training) and its CAMs give the pseudo boxes (DAP step 2)."""
from detectron2.data import MetadataCatalog

from ..common.data.synthetic_classification import dataloader
from ..common.models.classifier_cpu import model
from ..common.models.cpu import shrink_resnet
from ..common.optim import SGD as optimizer
from ..common.schedules import cosine_schedule
from ..common.train import train

shrink_resnet(model.backbone)
model.num_classes = len(MetadataCatalog.get("synthetic_shapes_cls_train").thing_classes)

train.max_iter = 300
train.output_dir = "output/dap/synthetic/classifier"
train.eval_period = train.max_iter
train.checkpointer.period = 100
train.log_period = 20
train.seed = 0

optimizer.lr = 0.1
optimizer.weight_decay = 5e-5
lr_multiplier = cosine_schedule(max_iter=train.max_iter, warmup_iters=30)
