"""What every project of the collection shares: embedded datasets, data mappers, the image
classifier meta-architecture, evaluators and LazyConfig-aware inference.

Importing it registers the embedded synthetic datasets, the ImageNet folder datasets and the
``ImageClassifier`` meta-architecture, and makes detectron2 v0.6's ``DefaultTrainer`` checkpoint its
optimizer (``runtime.checkpoint_default_trainer_optimizer``).
"""
from . import data, evaluation, modeling  # noqa: F401  (registration happens on import)
from .runtime import checkpoint_default_trainer_optimizer

checkpoint_default_trainer_optimizer()
