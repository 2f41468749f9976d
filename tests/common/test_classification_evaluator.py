"""ClassificationEvaluator: hand-checked top-k accuracy, tie rule, clipping of k, errors."""

import pytest
import torch

from detectron2.data import MetadataCatalog

from projects.common.evaluation import ClassificationEvaluator

# (true class, scores over 6 classes); the rank is how many other classes score >= the true one.
SIX_CLASS_SAMPLES = [
    (0, [0.9, 0.02, 0.02, 0.02, 0.02, 0.02]),  # rank 0: top-1 and top-5 correct
    (3, [0.1, 0.2, 0.3, 0.15, 0.05, 0.2]),  # rank 3: top-5 correct only
    (5, [0.3, 0.25, 0.2, 0.15, 0.1, 0.0]),  # rank 5: wrong at k <= 5
    (2, [0.0] * 6),  # all tied: rank 5, an image without any evidence is never correct
]


def run(evaluator, samples):
    evaluator.reset()
    for class_id, scores in samples:
        evaluator.process([{"class_id": class_id, "image_id": 0}], [{"scores": torch.tensor(scores)}])
    return evaluator.evaluate()


def test_top1_top5_hand_checked():
    results = run(ClassificationEvaluator(), SIX_CLASS_SAMPLES)
    assert results == {"classification": {"top1": 25.0, "top5": 50.0}}


def test_keys_follow_requested_k():
    results = run(ClassificationEvaluator(topk=(1, 3), distributed=False), SIX_CLASS_SAMPLES)
    assert results == {"classification": {"top1": 25.0, "top3": 25.0}}


def test_ties_count_against_the_true_class():
    results = run(ClassificationEvaluator(topk=(1, 2)), [(0, [0.5, 0.5, 0.0])])
    assert results["classification"] == {"top1": 0.0, "top2": 100.0}


def test_top5_clipped_to_number_of_classes():
    samples = [(0, [0.2, 0.3, 0.5]), (1, [0.0, 0.0, 0.0]), (2, [0.1, 0.2, 0.7])]
    results = run(ClassificationEvaluator(), samples)
    assert results["classification"]["top1"] == pytest.approx(100.0 / 3)
    assert results["classification"]["top5"] == 100.0


def test_reset_forgets_previous_predictions():
    evaluator = ClassificationEvaluator()
    run(evaluator, SIX_CLASS_SAMPLES)
    assert run(evaluator, SIX_CLASS_SAMPLES[:1])["classification"]["top1"] == 100.0


def test_no_predictions_gives_empty_results():
    assert run(ClassificationEvaluator(), []) == {}


def test_missing_class_id_is_explained():
    evaluator = ClassificationEvaluator()
    with pytest.raises(KeyError, match="class_id"):
        evaluator.process([{"image_id": 0}], [{"scores": torch.zeros(3)}])


def test_score_length_must_match_dataset_classes():
    MetadataCatalog.get("test_classification_evaluator_three_classes").set(thing_classes=["a", "b", "c"])
    evaluator = ClassificationEvaluator("test_classification_evaluator_three_classes")
    with pytest.raises(ValueError, match="num_classes"):
        evaluator.process([{"class_id": 0}], [{"scores": torch.zeros(4)}])


def test_invalid_topk_is_rejected():
    with pytest.raises(ValueError, match="positive"):
        ClassificationEvaluator(topk=(0, 5))
