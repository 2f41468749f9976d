"""Occlusion ratio (TBC paper, Eq. 5) and AP per occlusion bucket, on hand-made COCO data and on
the embedded occluded synthetic preset."""
import json
import math

import numpy as np
import pytest
import torch

from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data.datasets import load_coco_json
from detectron2.structures import Boxes, BoxMode, Instances

from projects.common.evaluation import OcclusionEvaluator, box_occlusion_ratio
from projects.common.evaluation.occlusion import bucket_index, bucket_names


def test_box_occlusion_ratio_by_hand():
    assert box_occlusion_ratio(np.array([[0, 0, 10, 10], [20, 20, 30, 30]]), 40, 40) == 0.0
    assert box_occlusion_ratio(np.array([[0, 0, 10, 10], [0, 0, 10, 10]]), 40, 40) == 1.0
    # two 10x10 boxes sharing a 5x10 strip: each has half of its area covered by the other
    assert box_occlusion_ratio(np.array([[0, 0, 10, 10], [5, 0, 15, 10]]), 40, 40) == 0.5
    # a small box inside a big one: the small one fully, the big one 4/100 covered
    assert box_occlusion_ratio(np.array([[0, 0, 10, 10], [0, 0, 2, 2]]), 40, 40) == pytest.approx(8 / 104)
    assert math.isnan(box_occlusion_ratio(np.zeros((0, 4)), 40, 40))


def test_buckets():
    edges = (0.0, 0.4, 0.8)
    assert bucket_names(edges) == ["r0.0to0.4", "r0.4to0.8", "r0.8to1.0"]
    assert [bucket_index(r, edges) for r in (0.0, 0.39, 0.4, 0.8, 1.0)] == [0, 0, 1, 2, 2]
    with pytest.raises(ValueError, match="increase from 0.0"):
        OcclusionEvaluator("x", bucket_edges=(0.2, 0.5))


@pytest.fixture(scope="module")
def tiny_coco(tmp_path_factory):
    """Three 40x40 images: r = 0 (apart), 0.5 (half overlap), 1.0 (identical boxes)."""
    boxes_per_image = {
        1: [[0, 0, 10, 10], [20, 20, 10, 10]],
        2: [[0, 0, 10, 10], [5, 0, 10, 10]],
        3: [[5, 5, 20, 20], [5, 5, 20, 20]],
    }
    coco = {
        "images": [{"id": i, "file_name": f"{i}.jpg", "height": 40, "width": 40} for i in boxes_per_image],
        "annotations": [
            {"id": 10 * i + k, "image_id": i, "category_id": 1, "bbox": box, "area": box[2] * box[3], "iscrowd": 0}
            for i, boxes in boxes_per_image.items() for k, box in enumerate(boxes)
        ],
        "categories": [{"id": 1, "name": "thing"}],
    }
    json_file = tmp_path_factory.mktemp("occlusion") / "instances.json"
    json_file.write_text(json.dumps(coco))
    name = "test_occlusion_tiny"
    if name not in DatasetCatalog.list():
        DatasetCatalog.register(name, lambda: load_coco_json(str(json_file), str(json_file.parent), name))
        MetadataCatalog.get(name).set(json_file=str(json_file), image_root=str(json_file.parent),
                                      evaluator_type="coco")
    DatasetCatalog.get(name)  # sets thing_classes and the id mapping
    return name, boxes_per_image


def perfect_predictions(boxes_per_image, skip=()):
    inputs, outputs = [], []
    for image_id, boxes in boxes_per_image.items():
        xyxy = [BoxMode.convert(b, BoxMode.XYWH_ABS, BoxMode.XYXY_ABS) for b in boxes]
        keep = [] if image_id in skip else xyxy
        instances = Instances((40, 40), pred_boxes=Boxes(torch.tensor(keep, dtype=torch.float32).reshape(-1, 4)),
                              scores=torch.ones(len(keep)), pred_classes=torch.zeros(len(keep), dtype=torch.long))
        inputs.append({"image_id": image_id})
        outputs.append({"instances": instances})
    return inputs, outputs


def test_ap_per_bucket(tiny_coco, tmp_path):
    name, boxes_per_image = tiny_coco
    evaluator = OcclusionEvaluator(name, bucket_edges=(0.0, 0.4, 0.8), output_dir=str(tmp_path))
    evaluator.reset()
    evaluator.process(*perfect_predictions(boxes_per_image, skip=(2,)))
    metrics = evaluator.evaluate()["occlusion"]
    assert [metrics[f"images_{b}"] for b in bucket_names((0.0, 0.4, 0.8))] == [1, 1, 1]
    assert metrics["bbox_AP_r0.0to0.4"] == pytest.approx(100.0)
    assert metrics["bbox_AP75_r0.0to0.4"] == pytest.approx(100.0)
    assert metrics["bbox_AP_r0.4to0.8"] == 0.0  # image 2 got no detections
    # identical GT boxes: two perfect detections match both of them
    assert metrics["bbox_AP_r0.8to1.0"] == pytest.approx(100.0)
    assert (tmp_path / "occlusion_ap.png").stat().st_size > 0
    assert json.loads((tmp_path / "occlusion_results.json").read_text())["images_r0.0to0.4"] == 1


def test_synthetic_occluded_preset_spans_the_buckets():
    name = "synthetic_shapes_occluded_val"
    DatasetCatalog.get(name)
    ratios = OcclusionEvaluator.image_occlusion_ratios(OcclusionEvaluator(name)._load_ground_truth())
    counts = np.bincount([bucket_index(r, (0.0, 0.2, 0.4, 0.6, 0.8)) for r in ratios.values()], minlength=5)
    assert counts[0] > 0 and counts[2:].sum() > 0, counts
