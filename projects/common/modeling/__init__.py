"""Models shared by the collection's projects."""

from .backbone import (
    add_scaled_resnet_config,
    build_retinanet_scaled_resnet_fpn_backbone,
    build_scaled_resnet_backbone,
    build_scaled_resnet_fpn_backbone,
    scaled_resnet_stages,
)
from .classifier import ImageClassifier, add_classifier_config
from .fcos import FCOS, FCOSHead, add_fcos_config
from .preprocessing import normalize_and_pad, register_pixel_statistics

__all__ = [
    "FCOS",
    "FCOSHead",
    "ImageClassifier",
    "add_classifier_config",
    "add_fcos_config",
    "add_scaled_resnet_config",
    "build_retinanet_scaled_resnet_fpn_backbone",
    "build_scaled_resnet_backbone",
    "build_scaled_resnet_fpn_backbone",
    "normalize_and_pad",
    "register_pixel_statistics",
    "scaled_resnet_stages",
]
