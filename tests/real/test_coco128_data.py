"""COCO128 through detectron2's registration and the collection's mappers: the official
annotations as expected, every annotated photo mapped with a random crop that clips its polygon
masks (shapely), the grayscale photo read as three channels."""
import os

import numpy as np
from PIL import Image

import detectron2.data.transforms as T
from detectron2.data import DatasetCatalog, MetadataCatalog

from projects.common.data import DetectionDatasetMapper


def test_registration_reads_the_official_annotations(coco128):
    records = DatasetCatalog.get(coco128)
    annotations = [a for r in records for a in r["annotations"]]
    assert len(records) == 128 and len(annotations) == 939
    assert sum(a.get("iscrowd", 0) for a in annotations) == 10
    assert sum(not r["annotations"] for r in records) == 2
    assert len(MetadataCatalog.get(coco128).thing_classes) == 80
    assert len({a["category_id"] for a in annotations}) == 71
    crowd = [a for a in annotations if a.get("iscrowd", 0)]
    assert all(isinstance(a["segmentation"], dict) for a in crowd)  # RLE
    assert all(isinstance(a["segmentation"], list) for a in annotations if not a.get("iscrowd", 0))  # polygons


def test_random_crop_clips_polygons_of_every_photo(coco128):
    """The training path with masks on each annotated photo (polygons cut by the crop window;
    crowd regions dropped, as detectron2 does)."""
    mapper = DetectionDatasetMapper(
        is_train=True, image_format="BGR", use_instance_mask=True,
        augmentations=[T.RandomCrop("relative", (0.5, 0.5)), T.ResizeShortestEdge(128, 256)])
    np.random.seed(0)  # detectron2's augmentations draw from NumPy's global RNG
    cropped = 0
    for record in DatasetCatalog.get(coco128):
        if not record["annotations"]:
            continue
        mapped = mapper(record)
        height, width = mapped["image"].shape[1:]
        instances = mapped["instances"]
        assert len(instances) <= sum(not a.get("iscrowd", 0) for a in record["annotations"])
        for polygons in instances.gt_masks.polygons:
            for polygon in polygons:
                xs, ys = polygon[0::2], polygon[1::2]
                assert xs.min() >= -1e-3 and xs.max() <= width + 1e-3, record["file_name"]
                assert ys.min() >= -1e-3 and ys.max() <= height + 1e-3, record["file_name"]
        cropped += len(instances)
    assert cropped > 300


def test_grayscale_photo_is_read_as_three_channels(coco128_eval_set):
    (grayscale,) = [r for r in DatasetCatalog.get(coco128_eval_set) if Image.open(r["file_name"]).mode == "L"]
    mapper = DetectionDatasetMapper(is_train=False, image_format="BGR", augmentations=[T.ResizeShortestEdge(160, 256)])
    image = mapper(grayscale)["image"]
    assert image.shape[0] == 3 and os.path.basename(grayscale["file_name"]) == "000000000086.jpg"
    assert (image[0] == image[1]).all() and (image[1] == image[2]).all()

