"""
CorLoc (correct localisation), the weakly supervised detection metric the paper reports on VOC07
trainval: for each class, the fraction of the images containing it whose top-scoring detection of
that class overlaps one of its ground-truth boxes with IoU >= 0.5. VOC AP is
``projects.common.evaluation.VOCDetectionEvaluator``.
"""

import itertools
import logging
from collections import OrderedDict
from typing import Dict, Hashable

import numpy as np
from tabulate import tabulate

from detectron2.evaluation import DatasetEvaluator
from detectron2.utils import comm

from projects.common.data import dataset_thing_classes
from projects.common.evaluation.voc import load_ground_truth, to_voc_pixel_boxes, voc_box_iou

logger = logging.getLogger(__name__)


class CorLocEvaluator(DatasetEvaluator):
    """
    CorLoc (percent) of ``output["instances"]`` for any registered detection dataset with
    ``thing_classes`` (ground truth and box convention of ``VOCDetectionEvaluator``: VOC XML when
    the metadata has ``dirname``/``split``, else the dataset dicts; IoU with the devkit's +1).

    For each evaluated image and each class with a non-difficult (non-crowd) object in it, the
    image's highest-scoring detection of that class is correct if its IoU with any ground-truth
    box of the class (difficult ones included) is >= ``iou_threshold``; an image without a
    detection of the class counts as incorrect, images whose objects of the class are all
    difficult are not counted (as the authors' ``voc_eval_corloc``, which requires IoU > 0.5).
    The detections are the model's final ones (after NMS): the top-scoring proposal of a class
    always survives NMS, so it is the paper's top-scoring box unless the score threshold or the
    detections-per-image limit removed it.

    ``evaluate()`` returns on the main process (``{}`` on the others)::

        {"corloc": {"CorLoc": mean over classes, "CorLoc-<class>": per class}}

    Classes absent from the evaluated images are NaN and left out of the mean. With
    ``distributed=True``, ``evaluate()`` must be called from every process.
    """

    def __init__(self, dataset_name: str, iou_threshold: float = 0.5, distributed: bool = True):
        self._dataset_name = dataset_name
        self._class_names = dataset_thing_classes(dataset_name)
        self._iou_threshold = iou_threshold
        self._distributed = distributed
        self._ground_truth = None
        self.reset()

    def reset(self):
        self._top_boxes = []  # per image: (image_id, {class: VOC pixel box of its top detection})

    def process(self, inputs, outputs):
        for input_dict, output in zip(inputs, outputs):
            if "image_id" not in input_dict:
                raise KeyError(
                    f"CorLocEvaluator needs 'image_id' in every input dict, got only {sorted(input_dict)}: "
                    "make the dataset mapper keep the dataset dict's 'image_id'"
                )
            instances = output["instances"].to("cpu")
            classes = instances.pred_classes.numpy()
            scores = instances.scores.numpy()
            boxes = to_voc_pixel_boxes(instances.pred_boxes.tensor.numpy())
            top_boxes = {}
            for class_id in np.unique(classes):
                of_class = np.flatnonzero(classes == class_id)
                top_boxes[int(class_id)] = boxes[of_class[np.argmax(scores[of_class])]]
            self._top_boxes.append((input_dict["image_id"], top_boxes))

    def evaluate(self):
        top_boxes = self._top_boxes
        if self._distributed:
            comm.synchronize()
            gathered = comm.gather(top_boxes, dst=0)
            if not comm.is_main_process():
                return {}
            top_boxes = list(itertools.chain.from_iterable(gathered))
        if self._ground_truth is None:
            self._ground_truth = load_ground_truth(self._dataset_name)
        unknown = [image_id for image_id, _ in top_boxes if image_id not in self._ground_truth]
        if unknown:
            raise KeyError(
                f"predictions for image ids {unknown[:5]} not in the ground truth of "
                f"{self._dataset_name!r}: evaluate with the same dataset the inputs come from"
            )
        correct, positives = self._count(dict(top_boxes))
        with np.errstate(invalid="ignore", divide="ignore"):
            corloc = 100.0 * correct / positives
        self._log_table(correct, positives, corloc)
        results = OrderedDict(CorLoc=float(np.mean(corloc[positives > 0])) if (positives > 0).any() else float("nan"))
        for name, value in zip(self._class_names, corloc):
            results[f"CorLoc-{name}"] = float(value)
        return OrderedDict(corloc=results)

    def _count(self, top_boxes: Dict[Hashable, Dict[int, np.ndarray]]):
        """Per class: correctly localised images, and images counted (with a non-difficult object)."""
        correct = np.zeros(len(self._class_names))
        positives = np.zeros(len(self._class_names))
        for image_id, image_top_boxes in top_boxes.items():
            ground_truth = self._ground_truth[image_id]
            for class_id in np.unique(ground_truth.classes[~ground_truth.ignore]):
                positives[class_id] += 1
                if class_id not in image_top_boxes:
                    continue
                gt_boxes = ground_truth.boxes[ground_truth.classes == class_id]
                iou = voc_box_iou(image_top_boxes[class_id][None], gt_boxes)
                correct[class_id] += float(iou.max() >= self._iou_threshold)
        return correct, positives

    def _log_table(self, correct, positives, corloc):
        rows = list(zip(self._class_names, positives.astype(int), correct.astype(int), corloc))
        table = tabulate(rows, headers=["class", "images", "correct", "CorLoc"], tablefmt="pipe", floatfmt=".2f")
        logger.info(f"CorLoc of {self._dataset_name!r} at IoU >= {self._iou_threshold}:\n" + table)
