"""CPU-sized twin of classifier.py: ResNet-18."""
from .classifier import model

model.backbone.stages.depth = 18
model.backbone.stages.pop("stride_in_1x1")
