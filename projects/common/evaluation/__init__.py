"""Evaluators shared by the collection's projects."""

from .classification import ClassificationEvaluator
from .occlusion import OcclusionEvaluator, box_occlusion_ratio
from .voc import VOCDetectionEvaluator

__all__ = ["ClassificationEvaluator", "OcclusionEvaluator", "VOCDetectionEvaluator", "box_occlusion_ratio"]
