"""What every project of the collection shares: embedded datasets, data mappers, the image
classifier meta-architecture, evaluators and LazyConfig-aware inference.

Importing it registers the embedded synthetic datasets, the ImageNet folder datasets and the
``ImageClassifier`` meta-architecture.
"""
from . import data, evaluation, modeling  # noqa: F401  (registration happens on import)
