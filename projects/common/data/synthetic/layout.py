"""Where the files of a synthetic dataset lie. One dataset folder holds every format the
projects read::

    <dataset_dir>/                      e.g. <DETECTRON2_DATASETS>/synthetic_shapes_v2
        JPEGImages/{train,val}_NNNNNN.jpg       all detection images
        Annotations/{train,val}_NNNNNN.xml      Pascal VOC boxes (detectron2's load_voc_instances)
        ImageSets/Main/{train,val}.txt          VOC file ids (= image file stems)
        annotations/instances_{train,val}.json  COCO boxes + polygon masks (load_coco_json)
        classification/{train,val}/<class>/<class>_NNNNN.jpg   ImageNet folder layout
        classification/instances_{train,val}.json  COCO boxes of the classification images
        VERSION.json                            {"generator_version": ..., "spec": {...}}
"""

import os

from .spec import GENERATOR_VERSION

SPLITS = ("train", "val")
IMAGE_DIR = "JPEGImages"
CLASSIFICATION_DIR = "classification"
VERSION_FILE = "VERSION.json"


def synthetic_dataset_dir(root: str, prefix: str) -> str:
    """Folder of a synthetic dataset: the generator version is part of the name."""
    return os.path.join(root, f"{prefix}_v{GENERATOR_VERSION}")


def coco_json_path(dataset_dir: str, split: str) -> str:
    return os.path.join(dataset_dir, "annotations", f"instances_{split}.json")


def classification_json_path(dataset_dir: str, split: str) -> str:
    """COCO boxes of the classification images (file names relative to classification/<split>)."""
    return os.path.join(dataset_dir, CLASSIFICATION_DIR, f"instances_{split}.json")
