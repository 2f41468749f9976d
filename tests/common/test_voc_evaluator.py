"""VOCDetectionEvaluator: hand-computed AP, difficult objects, both GT sources, detectron2 cross-check."""

import os

import numpy as np
import pytest
import torch

from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data.datasets import register_pascal_voc
from detectron2.evaluation.pascal_voc_evaluation import voc_eval
from detectron2.structures import Boxes, BoxMode, Instances

from projects.common.evaluation import VOCDetectionEvaluator
from projects.common.evaluation.voc import (
    RankedClassDetections,
    area_average_precision,
    eleven_point_average_precision,
    voc_box_iou,
)

# One image with two 10x10-pixel cats, in VOC pixel indices (1-based, inclusive).
CAT_BOXES = [[1, 1, 10, 10], [21, 21, 30, 30]]
# Detections in detectron2 coordinates (VOC xmin, ymin minus 1), ranked by score:
#   0.9 exactly on cat 1 (IoU 1), 0.8 on empty background, 0.7 shifted 2 px off cat 2
#   (pixels 23..32 x 21..30: intersection 80, union 120, IoU 2/3).
DETECTIONS = [([0, 0, 10, 10], 0.9), ([40, 40, 50, 50], 0.8), ([22, 20, 32, 30], 0.7)]
# At IoU 0.5: TP, FP, TP -> recall 1/2, 1/2, 1; precision 1, 1/2, 2/3.
#   area AP = 1/2 * 1 + 1/2 * 2/3 = 5/6; 11-point AP = (6 * 1 + 5 * 2/3) / 11 = 28/33.
# At IoU >= 0.7 the shifted detection misses: TP, FP, FP -> AP 1/2.
#   AP over 0.50:0.95 = (4 * 5/6 + 6 * 1/2) / 10 = 19/30.


def register_dicts_dataset(name, records, class_names=("cat", "dog")):
    """An in-memory detection dataset, replacing any earlier one of the same name."""
    if name in DatasetCatalog.list():
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)
    DatasetCatalog.register(name, lambda: records)
    MetadataCatalog.get(name).set(thing_classes=list(class_names))
    return name


def cat_record(extra_annotations=()):
    annotations = [
        {"bbox": [x0 - 1, y0 - 1, x1, y1], "bbox_mode": BoxMode.XYXY_ABS, "category_id": 0}
        for x0, y0, x1, y1 in CAT_BOXES
    ]
    return {
        "image_id": "img",
        "height": 60,
        "width": 60,
        "annotations": annotations + list(extra_annotations),
    }


def instances(boxes, scores, classes, image_size=(60, 60)):
    result = Instances(image_size)
    result.pred_boxes = Boxes(torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4))
    result.scores = torch.tensor(scores, dtype=torch.float32)
    result.pred_classes = torch.tensor(classes, dtype=torch.int64)
    return result


def evaluate(dataset_name, predictions_per_image):
    """predictions_per_image: image_id -> Instances."""
    evaluator = VOCDetectionEvaluator(dataset_name)
    evaluator.reset()
    for image_id, image_instances in predictions_per_image.items():
        evaluator.process([{"image_id": image_id}], [{"instances": image_instances}])
    return evaluator.evaluate()["voc"]


def hand_case_instances():
    boxes, scores = zip(*DETECTIONS)
    return instances(boxes, scores, [0, 0, 0])


def test_voc_box_iou_uses_inclusive_pixel_widths():
    iou = voc_box_iou(
        np.array([[1.0, 1, 10, 10]]), np.array([[1.0, 1, 10, 10], [6, 1, 15, 10], [11, 1, 20, 10]])
    )
    # 10x10 pixel boxes; the second shares 5 columns (50 px of 150); the third touches none.
    np.testing.assert_allclose(iou, [[1.0, 50 / 150, 0.0]])


def test_average_precision_of_hand_computed_curve():
    recall, precision = np.array([0.5, 0.5, 1.0]), np.array([1.0, 0.5, 2 / 3])
    assert area_average_precision(recall, precision) == pytest.approx(5 / 6)
    assert eleven_point_average_precision(recall, precision) == pytest.approx(28 / 33)


def test_eleven_point_levels_are_exact_tenths():
    # Recall 0.3 reaches level 0.3 (arange(0, 1.1, 0.1) would give 0.30000000000000004).
    recall, precision = np.array([0.3]), np.array([1.0])
    assert eleven_point_average_precision(recall, precision) == pytest.approx(4 / 11)


def test_ranking_and_matching_of_hand_case():
    boxes, scores = zip(*DETECTIONS)
    pixel_boxes = np.array(boxes, dtype=float) + [1, 1, 0, 0]
    ground_truth = {"img": (np.array(CAT_BOXES, dtype=float), np.zeros(2, dtype=bool))}
    # Give the detections out of order: ranking is by score.
    ranked = RankedClassDetections(["img"] * 3, np.array(scores)[::-1], pixel_boxes[::-1], ground_truth)
    recall, precision = ranked.precision_recall(0.5)
    np.testing.assert_allclose(recall, [0.5, 0.5, 1.0])
    np.testing.assert_allclose(precision, [1.0, 0.5, 2 / 3])
    recall, precision = ranked.precision_recall(0.7)
    np.testing.assert_allclose(recall, [0.5, 0.5, 0.5])


def test_duplicate_detection_is_a_false_positive():
    ground_truth = {"img": (np.array([[1.0, 1, 10, 10]]), np.zeros(1, dtype=bool))}
    ranked = RankedClassDetections(
        ["img", "img"], np.array([0.9, 0.8]), np.array([[1.0, 1, 10, 10]] * 2), ground_truth
    )
    recall, precision = ranked.precision_recall(0.5)
    np.testing.assert_allclose(recall, [1.0, 1.0])
    np.testing.assert_allclose(precision, [1.0, 0.5])


def test_evaluator_hand_case_from_dataset_dicts(caplog):
    name = register_dicts_dataset("test_voc_hand_case", [cat_record()])
    # A dog detection: "dog" has no ground truth, so it is excluded from the means.
    dog = instances([[0, 0, 10, 10]], [0.95], [1])
    predictions = hand_case_instances()
    both = Instances.cat([predictions, dog])
    results = evaluate(name, {"img": both})
    assert results["AP50"] == pytest.approx(100 * 5 / 6)
    assert results["AP50_11pt"] == pytest.approx(100 * 28 / 33)
    assert results["AP75"] == pytest.approx(50.0)
    assert results["AP"] == pytest.approx(100 * 19 / 30)
    assert results["AP50-cat"] == pytest.approx(100 * 5 / 6)
    assert np.isnan(results["AP50-dog"])
    assert "['dog'] have no ground-truth positives" in caplog.text


def test_difficult_and_crowd_objects_neither_count_nor_penalise():
    # The background detection (0.8) now lands on an ignored object: it is neither TP nor FP,
    # and the ignored object does not count as a positive, so precision stays 1 at recall 1.
    crowd = {"bbox": [40, 40, 10, 10], "bbox_mode": BoxMode.XYWH_ABS, "category_id": 0, "iscrowd": 1}
    name = register_dicts_dataset("test_voc_crowd", [cat_record([crowd])])
    results = evaluate(name, {"img": hand_case_instances()})
    assert results["AP50"] == pytest.approx(100.0)
    assert results["AP50_11pt"] == pytest.approx(100.0)


def test_empty_predictions_give_zero_ap():
    name = register_dicts_dataset("test_voc_empty", [cat_record()])
    results = evaluate(name, {"img": instances([], [], [])})
    assert results["AP"] == results["AP50"] == results["AP50_11pt"] == results["AP75"] == 0.0


def test_prediction_for_unknown_image_is_explained():
    name = register_dicts_dataset("test_voc_unknown_image", [cat_record()])
    with pytest.raises(KeyError, match="same dataset"):
        evaluate(name, {"not-an-image": hand_case_instances()})


def test_prediction_of_unknown_class_is_explained():
    name = register_dicts_dataset("test_voc_unknown_class", [cat_record()])
    evaluator = VOCDetectionEvaluator(name)
    with pytest.raises(ValueError, match="thing_classes"):
        evaluator.process([{"image_id": "img"}], [{"instances": instances([[0, 0, 5, 5]], [0.5], [2])}])


def test_missing_thing_classes_is_explained():
    DatasetCatalog.register("test_voc_no_classes", lambda: [{"file_name": "x.jpg", "image_id": 0}])
    with pytest.raises(ValueError, match="thing_classes"):
        VOCDetectionEvaluator("test_voc_no_classes")
    with pytest.raises(KeyError, match="not registered"):
        VOCDetectionEvaluator("test_voc_never_registered")


# ---- Cross-check against detectron2's port of the VOC devkit on a random VOC folder ----

VOC_CLASSES = ("cat", "dog", "bird")


def random_voc_scene(seed=0, num_images=8):
    """Ground truth (VOC pixel boxes, with difficult flags) and noisy detections per image."""
    rng = np.random.default_rng(seed)
    scene = {}
    for index in range(num_images):
        objects = []
        for _ in range(rng.integers(1, 5)):
            x0, y0 = rng.integers(1, 60, size=2)
            w, h = rng.integers(8, 40, size=2)
            objects.append(
                (
                    int(rng.integers(len(VOC_CLASSES))),
                    [int(x0), int(y0), int(x0 + w), int(y0 + h)],
                    bool(rng.random() < 0.2),
                )
            )
        detections = []
        for class_id, box, _ in objects:
            for _ in range(rng.integers(0, 3)):  # missed, found, or found twice
                jitter = rng.uniform(-4, 4, size=4)
                detections.append((class_id, np.round(np.array(box) + jitter, 1).tolist()))
        for _ in range(rng.integers(0, 3)):  # background false positives
            x0, y0 = rng.uniform(1, 80, size=2)
            detections.append(
                (int(rng.integers(len(VOC_CLASSES))), np.round([x0, y0, x0 + 15, y0 + 20], 1).tolist())
            )
        scene[f"{index:06d}"] = (objects, detections)
    # Distinct 3-decimal scores, so both implementations rank identically.
    num_detections = sum(len(d) for _, d in scene.values())
    scores = iter(rng.permutation(np.arange(100, 1000))[:num_detections] / 1000)
    return {
        image_id: (objects, [(c, b, next(scores)) for c, b in dets])
        for image_id, (objects, dets) in scene.items()
    }


def write_voc_folder(root, scene):
    os.makedirs(os.path.join(root, "Annotations"))
    os.makedirs(os.path.join(root, "ImageSets", "Main"))
    for image_id, (objects, _) in scene.items():
        xml_objects = "".join(
            f"<object><name>{VOC_CLASSES[c]}</name><pose>Unspecified</pose><truncated>0</truncated>"
            f"<difficult>{int(difficult)}</difficult><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin>"
            f"<xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>"
            for c, b, difficult in objects
        )
        with open(os.path.join(root, "Annotations", image_id + ".xml"), "w") as f:
            f.write(
                f"<annotation><size><width>120</width><height>120</height></size>{xml_objects}</annotation>"
            )
    with open(os.path.join(root, "ImageSets", "Main", "test.txt"), "w") as f:
        f.write("\n".join(scene) + "\n")


def scene_predictions(scene):
    """Detections as detectron2 Instances: VOC pixel xmin, ymin minus 1, like detectron2's VOC loader."""
    predictions = {}
    for image_id, (_, detections) in scene.items():
        boxes = [[b[0] - 1, b[1] - 1, b[2], b[3]] for _, b, _ in detections]
        predictions[image_id] = instances(
            boxes, [s for _, _, s in detections], [c for c, _, _ in detections], (120, 120)
        )
    return predictions


def detectron2_voc_ap(root, scene, tmp_path, iou_threshold, use_07_metric):
    """Per-class AP from detectron2's ``voc_eval``, fed its detection-file format."""
    template = str(tmp_path / "detections_{}.txt")
    aps = []
    for class_id, class_name in enumerate(VOC_CLASSES):
        lines = [
            f"{image_id} {score:.3f} {b[0]:.1f} {b[1]:.1f} {b[2]:.1f} {b[3]:.1f}"
            for image_id, (_, detections) in scene.items()
            for c, b, score in detections
            if c == class_id
        ]
        with open(template.format(class_name), "w") as f:
            f.write("\n".join(lines))
        _, _, ap = voc_eval(
            template,
            os.path.join(root, "Annotations", "{}.xml"),
            os.path.join(root, "ImageSets", "Main", "test.txt"),
            class_name,
            ovthresh=iou_threshold,
            use_07_metric=use_07_metric,
        )
        aps.append(100 * ap)
    return aps


@pytest.fixture
def voc_scene(tmp_path):
    scene = random_voc_scene()
    root = str(tmp_path / "VOC")
    write_voc_folder(root, scene)
    name = f"test_voc_xml_{tmp_path.name}"
    register_pascal_voc(name, root, "test", 2007, class_names=VOC_CLASSES)
    yield name, root, scene
    DatasetCatalog.remove(name)
    MetadataCatalog.remove(name)


def test_matches_detectron2_voc_eval(voc_scene, tmp_path):
    name, root, scene = voc_scene
    assert any(difficult for objects, _ in scene.values() for _, _, difficult in objects)
    results = evaluate(name, scene_predictions(scene))
    area_ap50 = detectron2_voc_ap(root, scene, tmp_path, 0.5, use_07_metric=False)
    assert results["AP50"] == pytest.approx(np.mean(area_ap50))
    for class_name, ap in zip(VOC_CLASSES, area_ap50):
        assert results[f"AP50-{class_name}"] == pytest.approx(ap)
    assert results["AP50_11pt"] == pytest.approx(
        np.mean(detectron2_voc_ap(root, scene, tmp_path, 0.5, use_07_metric=True))
    )
    assert results["AP75"] == pytest.approx(
        np.mean(detectron2_voc_ap(root, scene, tmp_path, 0.75, use_07_metric=False))
    )
    thresholds = np.arange(50, 100, 5) / 100
    assert results["AP"] == pytest.approx(
        np.mean([detectron2_voc_ap(root, scene, tmp_path, t, False) for t in thresholds])
    )
    assert 0 < results["AP75"] < results["AP50"] < 100


def test_difficult_voc_object_neither_counts_nor_penalises(tmp_path):
    """The hand case as VOC XML, with a difficult cat under the background detection."""
    cats = [(0, box, False) for box in CAT_BOXES] + [(0, [41, 41, 50, 50], True)]
    write_voc_folder(str(tmp_path), {"img": (cats, [])})
    name = f"test_voc_difficult_{tmp_path.name}"
    register_pascal_voc(name, str(tmp_path), "test", 2007, class_names=VOC_CLASSES)
    try:
        results = evaluate(name, {"img": hand_case_instances()})
    finally:
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)
    assert results["AP50"] == pytest.approx(100.0)
    assert results["AP50_11pt"] == pytest.approx(100.0)


def test_dataset_dicts_give_same_results_as_voc_xml(voc_scene):
    name, _, scene = voc_scene
    records = [
        {
            "image_id": image_id,
            "annotations": [
                # Same boxes in detectron2 coordinates, as XYWH to exercise the BoxMode conversion.
                {
                    "bbox": [b[0] - 1, b[1] - 1, b[2] - b[0] + 1, b[3] - b[1] + 1],
                    "bbox_mode": BoxMode.XYWH_ABS,
                    "category_id": c,
                    "iscrowd": int(difficult),
                }
                for c, b, difficult in objects
            ],
        }
        for image_id, (objects, _) in scene.items()
    ]
    dicts_name = register_dicts_dataset("test_voc_same_as_xml", records, VOC_CLASSES)
    from_xml = evaluate(name, scene_predictions(scene))
    from_dicts = evaluate(dicts_name, scene_predictions(scene))
    assert from_dicts.keys() == from_xml.keys()
    for key in from_xml:
        assert from_dicts[key] == pytest.approx(from_xml[key]), key
