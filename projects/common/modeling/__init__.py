"""Models shared by the collection's projects."""

from .backbone import scaled_resnet_stages
from .classifier import ImageClassifier
from .fcos import FCOS, FCOSHead
from .preprocessing import normalize_and_pad, register_pixel_statistics

__all__ = ["FCOS", "FCOSHead", "ImageClassifier", "normalize_and_pad", "register_pixel_statistics", "scaled_resnet_stages"]
