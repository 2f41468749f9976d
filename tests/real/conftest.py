"""The real-data tier: COCO128 (the first 128 COCO train2017 images with their official
annotations: 80 categories, polygons and crowd RLE, a grayscale image, two unannotated images),
found by the shared ``coco128_dir`` fixture: ``$COCO128_DIR`` or ``../shared/data/coco128`` next
to the checkout. Without it the tier is skipped with a message saying how to provide it, except
under CI (``CI=true``), where a missing folder fails the tests: CI must run on real photographs.
"""
import os

import pytest
from PIL import Image

from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data.datasets import register_coco_instances

COCO128 = "coco128"


@pytest.fixture(scope="session")
def coco128(coco128_dir):
    """The registered dataset name ``"coco128"`` (detectron2's ``register_coco_instances``; the
    folder comes from ``coco128_dir``, which skips or, under CI, fails where it is absent)."""
    if COCO128 not in DatasetCatalog.list():
        register_coco_instances(COCO128, {}, os.path.join(coco128_dir, "annotations", "instances_train2017.json"),
                                os.path.join(coco128_dir, "train2017"))
    DatasetCatalog.get(COCO128)  # sets thing_classes and the category id mapping
    return COCO128


def register_coco128_subset(name: str, records) -> str:
    """``records`` of COCO128 registered as ``name`` with COCO128's metadata (its json_file too:
    the COCO and occlusion evaluators read the ground truth there, for the evaluated images)."""
    if name not in DatasetCatalog.list():
        DatasetCatalog.register(name, lambda: list(records))
        metadata = MetadataCatalog.get(COCO128)
        MetadataCatalog.get(name).set(
            json_file=metadata.json_file, image_root=metadata.image_root, evaluator_type="coco",
            thing_classes=metadata.thing_classes,
            thing_dataset_id_to_contiguous_id=metadata.thing_dataset_id_to_contiguous_id,
        )
    return name


@pytest.fixture(scope="session")
def coco128_eval_set(coco128):
    """Eight COCO128 images for quick evaluations: the first seven and, last, the grayscale one."""
    records = DatasetCatalog.get(coco128)
    grayscale = [r for r in records if Image.open(r["file_name"]).mode == "L"]
    assert len(grayscale) == 1, "COCO128 has one grayscale photo (000000000086.jpg)"
    return register_coco128_subset("coco128_eval8", records[:7] + grayscale)
