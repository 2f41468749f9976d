"""CPU FCOS R18-FPN with the MSAD authors' head and losses (projects/common/modeling/fcos.py),
trained from scratch on the embedded synthetic shapes (300 iterations at batch 4) and evaluated
with the COCO and VOC evaluators: the single-resolution detector MSAD's teacher and students are
built from.
Measured once (seed 0, 2 shared CPU cores under load, OMP_NUM_THREADS=1): 9 min, COCO AP 5.1 /
AP50 10.8. Like RetinaNet-GN at this scale, a one-stage head from scratch needs more iterations."""
from detectron2.data import MetadataCatalog

from ..common.data.synthetic_detection import dataloader
from ..common.models.fcos_cpu import model
from ..common.optim import SGD as optimizer
from ..common.schedules import step_schedule
from ..common.train import train

model.num_classes = len(MetadataCatalog.get("synthetic_shapes_train").thing_classes)

train.max_iter = 300
train.output_dir = "output/msad/synthetic_fcos_R18_FPN_cpu"
train.eval_period = train.max_iter
train.checkpointer.period = 100
train.log_period = 20
train.seed = 0

optimizer.lr = 0.01
lr_multiplier = step_schedule(milestones=[220, 280], max_iter=train.max_iter, warmup_iters=50)
