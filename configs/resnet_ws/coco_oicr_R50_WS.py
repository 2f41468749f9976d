"""OICR with ResNet50-WS + RAN on COCO 2014 (train -> val, MCG proposals): voc07_oicr_R50_WS.py's
recipe for 80 classes, about 7 epochs at batch 4 (140k iterations, LR x0.1 at 100k), evaluated by
COCO AP and CorLoc."""
from detectron2.config import LazyCall as L
from detectron2.evaluation import COCOEvaluator, DatasetEvaluators

from projects.resnet_ws import CorLocEvaluator, weak_detection_dataloader

from .voc07_oicr_R50_WS import model, optimizer, test_time_augmentation, train
from .wsod import oicr_schedule, proposal_file

dataloader = weak_detection_dataloader(
    "coco_2014_train", [proposal_file("coco_2014_train")], "coco_2014_val", [proposal_file("coco_2014_val")],
)
dataloader.evaluator = L(DatasetEvaluators)(evaluators=[
    L(COCOEvaluator)(dataset_name="${....test.dataset.names}"),
    L(CorLocEvaluator)(dataset_name="${....test.dataset.names}"),
])
model.num_classes = 80
train.max_iter = 140000
train.eval_period = train.max_iter
train.output_dir = "output/resnet_ws/coco_oicr_R50_WS"
lr_multiplier = oicr_schedule(max_iter=train.max_iter, step=100000)
