"""
Deterministic synthetic "shapes" data, the default data of every project (nothing to download).

Detection images show several textured shapes of distinct classes on cluttered backgrounds, with
small objects and controllable overlap; a classification split shows one dominant shape per
image.

``spec`` says what a dataset is, ``draw`` paints the pixels, ``render`` composes the scenes and
their annotations, ``layout`` names the files, ``writers`` writes them and ``cache`` generates a
dataset folder once and checks it on every later use.
"""

from .cache import SpecMismatchError, ensure_generated
from .layout import CLASSIFICATION_DIR, IMAGE_DIR, SPLITS, classification_json_path, coco_json_path, synthetic_dataset_dir
from .render import mask_to_polygons, render_classification_image, render_detection_image
from .spec import DEFAULT_PRESET, GENERATOR_VERSION, PRESETS, SHAPE_CLASSES, SyntheticSpec

__all__ = [
    "CLASSIFICATION_DIR",
    "DEFAULT_PRESET",
    "GENERATOR_VERSION",
    "IMAGE_DIR",
    "PRESETS",
    "SHAPE_CLASSES",
    "SPLITS",
    "SpecMismatchError",
    "SyntheticSpec",
    "classification_json_path",
    "coco_json_path",
    "ensure_generated",
    "mask_to_polygons",
    "render_classification_image",
    "render_detection_image",
    "synthetic_dataset_dir",
]
