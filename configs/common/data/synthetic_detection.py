"""The embedded synthetic detection data (generated on first use under $DETECTRON2_DATASETS),
CPU-sized: ~256 px images, evaluated with both the COCO and the VOC evaluator."""
from detectron2.config import LazyCall as L
from detectron2.evaluation import COCOEvaluator, DatasetEvaluators

from projects.common.evaluation import VOCDetectionEvaluator

from .coco import dataloader

dataloader.train.dataset.names = "synthetic_shapes_train"
dataloader.train.mapper.augmentations[0].update(short_edge_length=(224, 256, 288), max_size=480)
dataloader.train.mapper.use_instance_mask = False  # Mask R-CNN configs turn it on
dataloader.train.total_batch_size = 4
dataloader.train.num_workers = 1
dataloader.test.dataset.names = "synthetic_shapes_val"
dataloader.test.mapper.augmentations[0].update(short_edge_length=256, max_size=480)
dataloader.test.num_workers = 1
dataloader.evaluator = L(DatasetEvaluators)(
    evaluators=[
        L(COCOEvaluator)(dataset_name="${....test.dataset.names}"),
        L(VOCDetectionEvaluator)(dataset_name="${....test.dataset.names}"),
    ]
)
