"""dap.evaluation: a detector scored as a classifier (class score = summed detection
confidences), on hand-made outputs, on a real CPU Faster R-CNN forward, and through
train_net.py --eval-only with configs/dap/synthetic_detector_as_classifier_cpu.py."""
import os
from collections import defaultdict

import pytest
import torch

import detectron2.data.transforms as T
from detectron2.config import LazyConfig, instantiate
from detectron2.data import DatasetCatalog, DatasetMapper, MetadataCatalog
from detectron2.structures import Boxes, Instances

from dap.evaluation import DetectorAsClassifierEvaluator, summed_class_confidences
from projects.common import engine

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(REPO, "configs/dap/synthetic_detector_as_classifier_cpu.py")
CLASSIFICATION_VAL = "synthetic_shapes_cls_val"  # 8 classes, 20 images each, sorted by class
TINY_CLASSIFICATION_VAL = "dap_evaluation_test_shapes_cls_val_4"


def detections(classes, scores):
    return Instances(
        (128, 128),
        pred_boxes=Boxes(torch.tensor([[10.0, 10.0, 50.0, 50.0]] * len(classes)).reshape(-1, 4)),
        pred_classes=torch.tensor(classes, dtype=torch.int64),
        scores=torch.tensor(scores, dtype=torch.float32),
    )


@pytest.fixture(scope="module")
def tiny_classification_val(dataset_subset):
    """4 images of 4 different classes of synthetic_shapes_cls_val, as a classification dataset."""
    return DatasetCatalog.get(dataset_subset(CLASSIFICATION_VAL, TINY_CLASSIFICATION_VAL, count=4, step=40))


def test_summed_class_confidences():
    sums = summed_class_confidences(detections([2, 5, 5, 2, 0], [0.5, 0.25, 0.5, 0.25, 0.125]), 8)
    assert sums.tolist() == [0.125, 0, 0.75, 0, 0, 0.75, 0, 0]
    assert summed_class_confidences(detections([], []), 8).tolist() == [0.0] * 8
    with pytest.raises(ValueError, match="num_classes must be the dataset's number of thing_classes"):
        summed_class_confidences(detections([8], [0.9]), 8)


def test_topk_of_summed_confidences_on_hand_made_outputs():
    evaluator = DetectorAsClassifierEvaluator(CLASSIFICATION_VAL, topk=(1, 5), distributed=False)
    evaluator.reset()
    cases = [
        # (true class, detections): the summed scores decide, not the single best detection
        (0, detections([0, 0, 1], [0.3, 0.3, 0.5])),  # 0.6 > 0.5: top-1
        (2, detections([2, 5, 5], [0.9, 0.5, 0.5])),  # 1.0 > 0.9: second, top-5 only
        (3, detections([], [])),  # no detection: all classes tie at 0, never correct
        (7, detections(list(range(8)), [0.5] * 7 + [0.1])),  # 7 classes ahead: wrong at top-5
    ]
    evaluator.process([{"class_id": c} for c, _ in cases], [{"instances": i} for _, i in cases])
    assert evaluator.evaluate() == {"detector_classification": {"top1": 25.0, "top5": 50.0}}


def test_bad_inputs_are_clear_errors():
    evaluator = DetectorAsClassifierEvaluator(CLASSIFICATION_VAL, distributed=False)
    with pytest.raises(KeyError, match="evaluate a detection model"):
        evaluator.process([{"class_id": 0}], [{"scores": torch.zeros(8)}])
    with pytest.raises(KeyError, match="class_id"):
        evaluator.process([{"file_name": "x.png"}], [{"instances": detections([0], [0.5])}])
    MetadataCatalog.get("dap_evaluation_test_no_classes").set(evaluator_type="classification")
    with pytest.raises(ValueError, match="no thing_classes"):
        DetectorAsClassifierEvaluator("dap_evaluation_test_no_classes")


def test_real_faster_rcnn_forward(tiny_classification_val):
    cfg = LazyConfig.load(os.path.join(REPO, "configs/common/models/faster_rcnn_fpn_cpu.py"))
    cfg.model.roi_heads.num_classes = 8
    torch.manual_seed(0)
    model = instantiate(cfg.model).eval()
    mapper = DatasetMapper(is_train=False, augmentations=[T.ResizeShortestEdge(128, 256)], image_format="BGR")
    inputs = [mapper(record) for record in tiny_classification_val]
    assert [i["class_id"] for i in inputs] == [0, 2, 4, 6]  # the mapper keeps the label
    with torch.no_grad():
        outputs = model(inputs)
    assert all(len(o["instances"]) > 0 for o in outputs)

    evaluator = DetectorAsClassifierEvaluator(TINY_CLASSIFICATION_VAL, distributed=False)
    evaluator.reset()
    evaluator.process(inputs, outputs)
    results = evaluator.evaluate()["detector_classification"]

    def classes_at_least_as_high_as_the_true_one(input_dict, output):
        totals = defaultdict(float)
        for class_id, score in zip(output["instances"].pred_classes.tolist(), output["instances"].scores.tolist()):
            totals[class_id] += score
        true_total = totals[input_dict["class_id"]]
        return sum(totals[c] >= true_total for c in range(8) if c != input_dict["class_id"])

    ahead = [classes_at_least_as_high_as_the_true_one(i, o) for i, o in zip(inputs, outputs)]
    assert results["top1"] == pytest.approx(100 * sum(a < 1 for a in ahead) / 4)
    assert results["top5"] == pytest.approx(100 * sum(a < 5 for a in ahead) / 4)


@pytest.mark.slow
def test_config_evaluates_a_detector_as_classifier_with_train_net(tiny_classification_val, tmp_path):
    cfg = LazyConfig.load(CONFIG)
    assert cfg.dataloader.test.dataset.names == CLASSIFICATION_VAL
    assert cfg.model.roi_heads.num_classes == 8
    args = engine.parse_args(
        ["--config-file", CONFIG, "--eval-only", "--allow-random-weights", f"train.output_dir={tmp_path}",
         f"dataloader.test.dataset.names={TINY_CLASSIFICATION_VAL}",  # 4 images keep the test fast
         "train.init_checkpoint="]  # no weights: a random detector, on purpose
    )
    results = engine.main(args)
    assert set(results) == {"detector_classification"}
    accuracy = results["detector_classification"]
    assert set(accuracy) == {"top1", "top5"}
    assert 0.0 <= accuracy["top1"] <= accuracy["top5"] <= 100.0
