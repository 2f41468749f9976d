"""What the CPU-sized tied_conv configs share: the embedded synthetic shapes with heavy overlap
(preset synthetic_shapes_occluded: 3-8 instances, 80% placed onto others), evaluated with COCO AP
and AP/AP75 per occlusion-ratio bucket (TBC paper, Eq. 5 and Fig. 7; PNG in output_dir/occlusion)."""
from detectron2.config import LazyCall as L
from detectron2.data import MetadataCatalog

from projects.common.evaluation import OcclusionEvaluator

from ..common.data.synthetic_detection import dataloader
from ..common.optim import SGD as optimizer
from ..common.schedules import step_schedule
from ..common.train import train

dataloader.train.dataset.names = "synthetic_shapes_occluded_train"
NUM_CLASSES = len(MetadataCatalog.get("synthetic_shapes_occluded_train").thing_classes)
dataloader.test.dataset.names = "synthetic_shapes_occluded_val"
dataloader.evaluator.evaluators.append(
    L(OcclusionEvaluator)(dataset_name="${....test.dataset.names}",
                          output_dir="${.....train.output_dir}/occlusion")
)

train.max_iter = 600
train.eval_period = train.max_iter
train.checkpointer.period = 200
train.log_period = 20
train.seed = 0
optimizer.lr = 0.01
lr_multiplier = step_schedule(milestones=[450, 560], max_iter=train.max_iter, warmup_iters=50)
