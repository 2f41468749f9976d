"""The embedded synthetic detection data (generated on first use under $DETECTRON2_DATASETS),
CPU-sized: ~256 px images, evaluated with both the COCO and the VOC evaluator."""
from omegaconf import OmegaConf

import detectron2.data.transforms as T
from detectron2.config import LazyCall as L
from detectron2.data import build_detection_test_loader, build_detection_train_loader
from detectron2.evaluation import COCOEvaluator, DatasetEvaluators

from projects.common.data import DetectionDatasetMapper, get_detection_dataset_dicts
from projects.common.evaluation import VOCDetectionEvaluator

dataloader = OmegaConf.create()

dataloader.train = L(build_detection_train_loader)(
    dataset=L(get_detection_dataset_dicts)(names="synthetic_shapes_train"),
    mapper=L(DetectionDatasetMapper)(
        is_train=True,
        augmentations=[
            L(T.ResizeShortestEdge)(short_edge_length=(224, 256, 288), sample_style="choice", max_size=480),
            L(T.RandomFlip)(horizontal=True),
        ],
        image_format="BGR",
        use_instance_mask=False,
    ),
    total_batch_size=4,
    num_workers=1,
)

dataloader.test = L(build_detection_test_loader)(
    dataset=L(get_detection_dataset_dicts)(names="synthetic_shapes_val", filter_empty=False),
    mapper=L(DetectionDatasetMapper)(
        is_train=False,
        augmentations=[L(T.ResizeShortestEdge)(short_edge_length=256, max_size=480)],
        image_format="${...train.mapper.image_format}",
    ),
    num_workers=1,
)

dataloader.evaluator = L(DatasetEvaluators)(
    evaluators=[
        L(COCOEvaluator)(dataset_name="${....test.dataset.names}"),
        L(VOCDetectionEvaluator)(dataset_name="${....test.dataset.names}"),
    ]
)
