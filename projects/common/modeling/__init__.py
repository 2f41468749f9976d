"""Models shared by the collection's projects."""

from .backbone import scaled_resnet_stages
from .classifier import ImageClassifier

__all__ = ["ImageClassifier", "scaled_resnet_stages"]
