"""
DAP: detection-aware pre-training with weak supervision (Zhong et al., CVPR 2021; see dap/README.md).

Classifier -> class activation maps -> pseudo boxes (a COCO JSON registered as a detectron2
dataset) -> detector pre-training -> fine-tuning, each step a module of this package.
"""

from .boxes import boxes_from_cam
from .cam import ClassActivationMap, ClassActivationMapper
from .datasets import register_k_shot_dataset, register_k_shot_datasets, register_pseudo_box_dataset, sample_k_shot
from .evaluation import DetectorAsClassifierEvaluator, summed_class_confidences

__all__ = [
    "ClassActivationMap",
    "ClassActivationMapper",
    "DetectorAsClassifierEvaluator",
    "boxes_from_cam",
    "register_k_shot_dataset",
    "register_k_shot_datasets",
    "register_pseudo_box_dataset",
    "sample_k_shot",
    "summed_class_confidences",
]
