"""COCO 2017 detection/instance segmentation (detectron2's standard names and layout under
$DETECTRON2_DATASETS/coco), with our dataset checks and clear image-read errors."""
from omegaconf import OmegaConf

import detectron2.data.transforms as T
from detectron2.config import LazyCall as L
from detectron2.data import build_detection_test_loader
from detectron2.evaluation import COCOEvaluator

from projects.common.data import DetectionDatasetMapper, get_detection_dataset_dicts
from projects.common.data.resumable import build_resumable_train_loader

dataloader = OmegaConf.create()

# detectron2's train loader whose stream position is checkpointed, so --resume is exact
dataloader.train = L(build_resumable_train_loader)(
    dataset=L(get_detection_dataset_dicts)(names="coco_2017_train"),
    mapper=L(DetectionDatasetMapper)(
        is_train=True,
        augmentations=[
            L(T.ResizeShortestEdge)(
                short_edge_length=(640, 672, 704, 736, 768, 800), sample_style="choice", max_size=1333
            ),
            L(T.RandomFlip)(horizontal=True),
        ],
        image_format="BGR",
        use_instance_mask=True,
    ),
    total_batch_size=16,
    num_workers=4,
)

dataloader.test = L(build_detection_test_loader)(
    dataset=L(get_detection_dataset_dicts)(names="coco_2017_val", filter_empty=False),
    mapper=L(DetectionDatasetMapper)(
        is_train=False,
        augmentations=[L(T.ResizeShortestEdge)(short_edge_length=800, max_size=1333)],
        image_format="${...train.mapper.image_format}",
    ),
    num_workers=4,
)

# Falls back to the official COCOeval when detectron2 has no C++ extension.
dataloader.evaluator = L(COCOEvaluator)(dataset_name="${..test.dataset.names}")
