"""
A detector evaluated as an image classifier (paper Sec. 4, "Accuracy on ImageNet"): the score of
a class is the sum of the confidences of all detections of that class in the image, and top-1 /
top-5 accuracy is computed on those sums (the paper: 62.73 / 85.99 on ImageNet for IN-1M DAP R-50).
"""

from collections import OrderedDict
from typing import Sequence

import torch

from detectron2.data import MetadataCatalog
from detectron2.structures import Instances

from projects.common.evaluation import ClassificationEvaluator

__all__ = ["DetectorAsClassifierEvaluator", "summed_class_confidences"]


def summed_class_confidences(instances: Instances, num_classes: int) -> torch.Tensor:
    """Per-class sums (float64, on the CPU) of the ``scores`` of ``instances`` by ``pred_classes``;
    a class without detections scores 0."""
    instances = instances.to("cpu")
    classes = instances.pred_classes.long()
    if len(classes) and not 0 <= int(classes.min()) <= int(classes.max()) < num_classes:
        raise ValueError(
            f"detections of classes {sorted(set(classes.tolist()))} do not fit {num_classes} classes: "
            "the detector's num_classes must be the dataset's number of thing_classes"
        )
    return torch.zeros(num_classes, dtype=torch.float64).index_add_(0, classes, instances.scores.double())


class DetectorAsClassifierEvaluator(ClassificationEvaluator):
    """
    Top-k accuracy of a detector used as a classifier: each output's ``instances`` become the
    per-class score vector of ``summed_class_confidences`` (one entry per ``thing_classes`` of the
    dataset), scored against ``input["class_id"]`` by ``ClassificationEvaluator`` (ties count
    against the true class, so an image without detections is never correct).

    ``evaluate()`` returns ``{"detector_classification": {"top1": ..., "top5": ...}}`` (percent):
    a key of its own, so that it can sit next to a ClassificationEvaluator in DatasetEvaluators
    and its metrics (``detector_classification/top1``) are not mistaken for a classifier's.
    """

    def __init__(self, dataset_name: str, topk: Sequence[int] = (1, 5), distributed: bool = True):
        """
        Args:
            dataset_name: a classification dataset (dicts with ``class_id``) whose metadata has
                ``thing_classes``, the classes of the detector.
            topk, distributed: as for ClassificationEvaluator.
        """
        thing_classes = MetadataCatalog.get(dataset_name).get("thing_classes")
        if thing_classes is None:
            raise ValueError(
                f"dataset {dataset_name!r} has no thing_classes in its metadata (load it first, or set "
                f"MetadataCatalog.get({dataset_name!r}).thing_classes): they give the number of classes"
            )
        self._num_thing_classes = len(thing_classes)
        super().__init__(dataset_name, topk=topk, distributed=distributed)

    def process(self, inputs, outputs):
        for output in outputs:
            if "instances" not in output:
                raise KeyError(
                    f"DetectorAsClassifierEvaluator needs detector outputs with 'instances', got "
                    f"{sorted(output)}: evaluate a detection model"
                )
        class_scores = [
            {"scores": summed_class_confidences(output["instances"], self._num_thing_classes)}
            for output in outputs
        ]
        super().process(inputs, class_scores)

    def evaluate(self):
        results = super().evaluate()
        if not results:  # not the main process, or no predictions
            return results
        return OrderedDict(detector_classification=results["classification"])
