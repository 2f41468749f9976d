"""CPU-sized twin of voc.py: the embedded synthetic data in Pascal VOC layout (Annotations/*.xml,
ImageSets/Main), ~256 px images, VOC AP50 (area and 07 11-point)."""
from .synthetic_detection import dataloader
from .voc import dataloader as voc_dataloader

dataloader.train.dataset.names = "synthetic_shapes_voc_train"
dataloader.test.dataset.names = "synthetic_shapes_voc_val"
dataloader.evaluator = voc_dataloader.evaluator
