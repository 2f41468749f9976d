"""Pascal VOC detection: train on VOC07+12 trainval, test on VOC07 test (detectron2's names,
$DETECTRON2_DATASETS/VOC2007 and VOC2012), reported as AP50 both as area under the PR curve
and as the VOC2007 11-point metric."""
from omegaconf import OmegaConf

import detectron2.data.transforms as T
from detectron2.config import LazyCall as L
from detectron2.data import build_detection_test_loader, build_detection_train_loader

from projects.common.data import DetectionDatasetMapper, get_detection_dataset_dicts
from projects.common.evaluation import VOCDetectionEvaluator

dataloader = OmegaConf.create()

dataloader.train = L(build_detection_train_loader)(
    dataset=L(get_detection_dataset_dicts)(names=("voc_2007_trainval", "voc_2012_trainval")),
    mapper=L(DetectionDatasetMapper)(
        is_train=True,
        augmentations=[
            L(T.ResizeShortestEdge)(
                short_edge_length=tuple(range(480, 801, 32)), sample_style="choice", max_size=1333
            ),
            L(T.RandomFlip)(horizontal=True),
        ],
        image_format="BGR",
    ),
    total_batch_size=16,
    num_workers=4,
)

dataloader.test = L(build_detection_test_loader)(
    dataset=L(get_detection_dataset_dicts)(names="voc_2007_test", filter_empty=False),
    mapper=L(DetectionDatasetMapper)(
        is_train=False,
        augmentations=[L(T.ResizeShortestEdge)(short_edge_length=800, max_size=1333)],
        image_format="${...train.mapper.image_format}",
    ),
    num_workers=4,
)

dataloader.evaluator = L(VOCDetectionEvaluator)(dataset_name="${..test.dataset.names}")
