"""DAP's pseudo-box generation (``python -m dap.generate_pseudo_boxes``) on COCO128's real photos
with an 80-class classifier: a classification view of COCO128 (each photo labelled with its largest
object's class) in, a COCO-format JSON of CAM boxes of that class out, scored against the real boxes."""
import json

import pytest
import torch

from detectron2.config import instantiate
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.structures import BoxMode

from dap.generate_pseudo_boxes import main as generate_pseudo_boxes
from projects.common.engine import load_config

CLASSIFIER = "dap/synthetic_classifier_cpu.py"


def box_area(annotation) -> float:
    _, _, width, height = BoxMode.convert(annotation["bbox"], annotation["bbox_mode"], BoxMode.XYWH_ABS)
    return width * height


def classification_view(coco128):
    """COCO128's photos with an object, labelled with the class of their largest non-crowd object."""
    records = []
    for record in DatasetCatalog.get(coco128):
        objects = [a for a in record["annotations"] if not a.get("iscrowd", 0)]
        if objects:
            records.append(dict(record, class_id=max(objects, key=box_area)["category_id"]))
    return records


@pytest.fixture(scope="module")
def coco128_classification(coco128):
    name = "coco128_largest_object_class"
    if name not in DatasetCatalog.list():
        records = classification_view(coco128)
        DatasetCatalog.register(name, lambda: records)
        MetadataCatalog.get(name).set(thing_classes=MetadataCatalog.get(coco128).thing_classes,
                                      image_root=MetadataCatalog.get(coco128).image_root)
    return name


def test_pseudo_boxes_of_real_photos(coco128_classification, tmp_path):
    torch.manual_seed(0)
    weights = str(tmp_path / "classifier_80.pth")
    classifier = instantiate(load_config(CLASSIFIER, ["model.num_classes=80"]).model)
    torch.save({"model": classifier.state_dict()}, weights)
    output = tmp_path / "pseudo_boxes.json"
    generate_pseudo_boxes(["--config-file", CLASSIFIER, "--weights", weights, "--dataset", coco128_classification,
                           "--output", str(output), "--scales", "128", "--no-flip", "--num-workers", "0",
                           "model.num_classes=80", "train.device=cpu"])

    records = DatasetCatalog.get(coco128_classification)
    coco = json.loads(output.read_text())
    assert len(coco["images"]) == len(records) > 120 and len(coco["categories"]) == 80
    images = {image["id"]: image for image in coco["images"]}
    for record, image in zip(records, coco["images"]):
        assert (image["height"], image["width"], image["class_id"]) == (record["height"], record["width"],
                                                                        record["class_id"])
    assert len(coco["annotations"]) >= len(records)
    for annotation in coco["annotations"]:
        image = images[annotation["image_id"]]
        x, y, w, h = annotation["bbox"]
        assert annotation["category_id"] == image["class_id"] + 1  # the JSON's category ids start at 1
        assert 0 <= x and 0 <= y and w > 0 and h > 0 and x + w <= image["width"] + 0.01 and y + h <= image["height"] + 0.01
    statistics = json.loads((tmp_path / "pseudo_boxes.stats.json").read_text())
    assert 0 < statistics["quality_vs_ground_truth"]["mean_best_iou"] < 1
