"""ImageNet classification from $DETECTRON2_DATASETS/imagenet/{train,val}/<class>/*.JPEG:
Inception-style random-resized crops of 224 with flips for training, resize 256 + centre crop
224 for evaluation, top-1/top-5 accuracy."""
from omegaconf import OmegaConf

import detectron2.data.transforms as T
from detectron2.config import LazyCall as L

from projects.common.data import (
    CenterCrop,
    ClassificationDatasetMapper,
    RandomResizedCrop,
    build_classification_test_loader,
    build_classification_train_loader,
    get_classification_dataset_dicts,
)
from projects.common.evaluation import ClassificationEvaluator

dataloader = OmegaConf.create()

dataloader.train = L(build_classification_train_loader)(
    dataset=L(get_classification_dataset_dicts)(names="imagenet_train"),
    mapper=L(ClassificationDatasetMapper)(
        is_train=True,
        augmentations=[L(RandomResizedCrop)(size=224), L(T.RandomFlip)(horizontal=True)],
        image_format="BGR",
    ),
    total_batch_size=256,
    num_workers=8,
)

dataloader.test = L(build_classification_test_loader)(
    dataset=L(get_classification_dataset_dicts)(names="imagenet_val"),
    mapper=L(ClassificationDatasetMapper)(
        is_train=False,
        augmentations=[L(T.ResizeShortestEdge)(short_edge_length=256, max_size=10000), L(CenterCrop)(size=224)],
        image_format="${...train.mapper.image_format}",
    ),
    batch_size=32,
    num_workers=8,
)

dataloader.evaluator = L(ClassificationEvaluator)(dataset_name="${..test.dataset.names}")
