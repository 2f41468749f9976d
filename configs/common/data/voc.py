"""Pascal VOC detection: train on VOC07+12 trainval, test on VOC07 test (detectron2's names,
$DETECTRON2_DATASETS/VOC2007 and VOC2012), multi-scale training 480..800 as in detectron2's VOC
configs, reported as AP50 both as area under the PR curve and as the VOC2007 11-point metric."""
from detectron2.config import LazyCall as L

from projects.common.evaluation import VOCDetectionEvaluator

from .coco import dataloader

dataloader.train.dataset.names = ("voc_2007_trainval", "voc_2012_trainval")
dataloader.train.mapper.augmentations[0].short_edge_length = tuple(range(480, 801, 32))
dataloader.train.mapper.use_instance_mask = False
dataloader.test.dataset.names = "voc_2007_test"
dataloader.evaluator = L(VOCDetectionEvaluator)(dataset_name="${..test.dataset.names}")
