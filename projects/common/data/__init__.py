"""
Data of the collection: the deterministic synthetic shapes generator, dataset registration
(importing this package registers the synthetic presets and imagenet_{train,val}) and mappers.
"""

from .datasets import (
    check_dataset_available,
    dataset_metadata,
    dataset_thing_classes,
    datasets_root,
    get_classification_dataset_dicts,
    get_detection_dataset_dicts,
    load_image_folder,
    register_dataset_union,
    register_imagenet_folder,
    register_synthetic_dataset,
    registered_synthetic_datasets,
)
from .mappers import (
    CenterCrop,
    ClassificationDatasetMapper,
    DetectionDatasetMapper,
    ImageReadError,
    RandomResizedCrop,
    build_classification_test_loader,
    build_classification_train_loader,
)
from .synthetic import (
    DEFAULT_PRESET,
    GENERATOR_VERSION,
    PRESETS,
    SHAPE_CLASSES,
    SpecMismatchError,
    SyntheticSpec,
    ensure_generated,
    mask_to_polygons,
    render_classification_image,
    render_detection_image,
    synthetic_dataset_dir,
)

__all__ = [
    "CenterCrop",
    "ClassificationDatasetMapper",
    "DEFAULT_PRESET",
    "DetectionDatasetMapper",
    "GENERATOR_VERSION",
    "ImageReadError",
    "PRESETS",
    "RandomResizedCrop",
    "SHAPE_CLASSES",
    "SpecMismatchError",
    "SyntheticSpec",
    "build_classification_test_loader",
    "build_classification_train_loader",
    "check_dataset_available",
    "dataset_metadata",
    "dataset_thing_classes",
    "datasets_root",
    "ensure_generated",
    "get_classification_dataset_dicts",
    "get_detection_dataset_dicts",
    "load_image_folder",
    "mask_to_polygons",
    "register_dataset_union",
    "register_imagenet_folder",
    "register_synthetic_dataset",
    "registered_synthetic_datasets",
    "render_classification_image",
    "render_detection_image",
    "synthetic_dataset_dir",
]
