"""Evaluators shared by the collection's projects."""

from .classification import ClassificationEvaluator
from .voc import VOCDetectionEvaluator

__all__ = ["ClassificationEvaluator", "VOCDetectionEvaluator"]
