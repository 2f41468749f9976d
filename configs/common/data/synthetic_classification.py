"""The embedded synthetic classification split (ImageNet folder layout, generated on first
use), CPU-sized: the ImageNet pipeline of imagenet.py at 96 px."""
from .imagenet import dataloader

dataloader.train.dataset.names = "synthetic_shapes_cls_train"
dataloader.train.mapper.augmentations[0].size = 96
dataloader.train.mapper.augmentations[0].scale = (0.35, 1.0)
dataloader.train.total_batch_size = 32
dataloader.train.num_workers = 1
dataloader.test.dataset.names = "synthetic_shapes_cls_val"
dataloader.test.mapper.augmentations[0].short_edge_length = 110
dataloader.test.mapper.augmentations[1].size = 96
dataloader.test.num_workers = 1
