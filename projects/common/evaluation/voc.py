"""
Pascal VOC detection AP for any registered detection dataset.

Box convention: AP is computed on VOC pixel indices, the devkit's convention that detectron2's
``voc_eval`` follows: a box covers pixels ``xmin..xmax`` inclusive (1-based), so its width is
``xmax - xmin + 1``. detectron2's VOC loader maps these to continuous coordinates by subtracting
1 from xmin and ymin; this module applies the inverse (``to_voc_pixel_boxes``) to predictions and
to ground truth taken from dataset dicts, and reads VOC XML annotations as they are.
"""

import itertools
import logging
import os
import xml.etree.ElementTree as ET
from collections import OrderedDict, defaultdict
from typing import Dict, Hashable, List, NamedTuple, Sequence, Tuple

import numpy as np
from tabulate import tabulate

from detectron2.data import DatasetCatalog
from detectron2.evaluation import DatasetEvaluator
from detectron2.structures import BoxMode
from detectron2.utils import comm
from detectron2.utils.file_io import PathManager

from ..data import dataset_metadata, dataset_thing_classes

logger = logging.getLogger(__name__)

IOU_THRESHOLDS = np.arange(50, 100, 5) / 100.0
"""0.50, 0.55, ..., 0.95: the thresholds averaged into "AP"."""
_AP50_INDEX = int(np.flatnonzero(IOU_THRESHOLDS == 0.5)[0])
_AP75_INDEX = int(np.flatnonzero(IOU_THRESHOLDS == 0.75)[0])


class ImageGroundTruth(NamedTuple):
    """Ground-truth objects of one image; ``ignore`` marks VOC "difficult" (or crowd) objects."""

    classes: np.ndarray  # (M,) int, index into thing_classes
    boxes: np.ndarray  # (M, 4) float, VOC pixel indices xmin, ymin, xmax, ymax
    ignore: np.ndarray  # (M,) bool


def to_voc_pixel_boxes(boxes_xyxy) -> np.ndarray:
    """detectron2 continuous XYXY boxes -> VOC 1-based inclusive pixel indices (xmin, ymin += 1)."""
    boxes = np.array(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    boxes[:, :2] += 1.0
    return boxes


def voc_box_iou(boxes: np.ndarray, other_boxes: np.ndarray) -> np.ndarray:
    """(N, M) IoU of VOC pixel-index boxes, with the devkit's +1 in every width and height."""
    top_left = np.maximum(boxes[:, None, :2], other_boxes[None, :, :2])
    bottom_right = np.minimum(boxes[:, None, 2:], other_boxes[None, :, 2:])
    intersection = np.clip(bottom_right - top_left + 1.0, 0.0, None).prod(axis=2)
    area = (boxes[:, 2:] - boxes[:, :2] + 1.0).prod(axis=1)
    other_area = (other_boxes[:, 2:] - other_boxes[:, :2] + 1.0).prod(axis=1)
    return intersection / (area[:, None] + other_area[None, :] - intersection)


def area_average_precision(recall: np.ndarray, precision: np.ndarray) -> float:
    """
    Area under the precision envelope (VOC2010+ AP): at each recall, precision is replaced by the
    best precision at that recall or higher, and the curve is integrated over recall in [0, 1].
    """
    recall_points = np.concatenate(([0.0], recall, [1.0]))
    envelope = np.concatenate(([0.0], precision, [0.0]))
    envelope = np.maximum.accumulate(envelope[::-1])[::-1]
    steps = np.flatnonzero(recall_points[1:] != recall_points[:-1])
    return float(np.sum((recall_points[steps + 1] - recall_points[steps]) * envelope[steps + 1]))


def eleven_point_average_precision(recall: np.ndarray, precision: np.ndarray) -> float:
    """
    VOC2007 AP: mean over recall levels 0, 0.1, ..., 1 of the best precision at recall >= level
    (0 when that recall is never reached). The levels are exact tenths, so a recall of exactly
    0.3 reaches level 0.3 (detectron2's ``voc_eval`` builds them with ``np.arange(0, 1.1, 0.1)``,
    whose 0.30000000000000004 it misses).
    """
    levels = np.arange(11) / 10.0
    return float(np.mean([np.max(precision[recall >= level], initial=0.0) for level in levels]))


class RankedClassDetections:
    """
    One class's detections ranked by score (stable: ties keep their input order), each paired
    with the ground-truth box of that class it overlaps most in its image.

    Matching follows the VOC devkit: a detection whose best box has IoU >= threshold is a true
    positive if that box is not difficult and not yet claimed by a higher-scoring detection, a
    false positive (duplicate) if it is already claimed, and neither if the box is difficult.
    Any other detection is a false positive. A duplicate is not re-assigned to another box.
    IoU equal to the threshold matches, as in the devkit (detectron2's ``voc_eval`` requires
    strictly more). Pairing once, independently of the threshold, lets every threshold reuse
    the same IoUs.
    """

    def __init__(
        self,
        image_ids: Sequence[Hashable],
        scores: np.ndarray,
        boxes: np.ndarray,
        ground_truth: Dict[Hashable, Tuple[np.ndarray, np.ndarray]],
    ):
        """
        Args:
            image_ids, scores, boxes: the class's detections; boxes (D, 4) in VOC pixel indices.
            ground_truth: image_id -> (boxes (M, 4) in VOC pixel indices, ignore (M,) bool) of
                this class; images missing from it have no object of this class.
        """
        order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)[order]
        image_ids = [image_ids[i] for i in order]

        gt_offsets, ignore_parts, offset = {}, [], 0
        for image_id, (_, ignore) in ground_truth.items():
            gt_offsets[image_id] = offset
            ignore_parts.append(np.asarray(ignore, dtype=bool))
            offset += len(ignore)
        gt_ignore = np.concatenate(ignore_parts) if ignore_parts else np.zeros(0, dtype=bool)
        self.num_positives = int((~gt_ignore).sum())

        detections_per_image = defaultdict(list)
        for rank, image_id in enumerate(image_ids):
            detections_per_image[image_id].append(rank)
        self._best_iou = np.full(len(image_ids), -np.inf)
        self._best_gt = np.full(len(image_ids), -1)
        for image_id, ranks in detections_per_image.items():
            gt_boxes = ground_truth[image_id][0] if image_id in ground_truth else np.zeros((0, 4))
            if len(gt_boxes) == 0:
                continue
            iou = voc_box_iou(boxes[ranks], np.asarray(gt_boxes, dtype=np.float64))
            self._best_iou[ranks] = iou.max(axis=1)
            self._best_gt[ranks] = gt_offsets[image_id] + iou.argmax(axis=1)
        self._best_gt_ignored = np.zeros(len(image_ids), dtype=bool)
        paired = self._best_gt >= 0
        self._best_gt_ignored[paired] = gt_ignore[self._best_gt[paired]]

    def precision_recall(self, iou_threshold: float) -> Tuple[np.ndarray, np.ndarray]:
        """Recall and precision after each ranked detection, at the given IoU threshold."""
        if self.num_positives == 0:
            raise ValueError("recall is undefined for a class without ground-truth positives")
        overlapping = self._best_iou >= iou_threshold
        ignored = overlapping & self._best_gt_ignored
        claims = np.flatnonzero(overlapping & ~ignored)
        _, first_claims = np.unique(self._best_gt[claims], return_index=True)
        true_positive = np.zeros(len(overlapping), dtype=bool)
        true_positive[claims[first_claims]] = True
        false_positive = ~true_positive & ~ignored
        true_positives = np.cumsum(true_positive)
        detections_counted = true_positives + np.cumsum(false_positive)
        recall = true_positives / self.num_positives
        precision = true_positives / np.maximum(detections_counted, np.finfo(np.float64).eps)
        return recall, precision


def load_ground_truth(dataset_name: str) -> Dict[Hashable, ImageGroundTruth]:
    """
    Ground truth per image id: from VOC XML when the metadata has ``dirname`` and ``split``
    (datasets registered with ``register_pascal_voc``; "difficult" objects are ignored), else from
    the dataset dicts (``iscrowd=1`` objects are ignored).
    """
    metadata = dataset_metadata(dataset_name)
    class_names = dataset_thing_classes(dataset_name)
    if metadata.get("dirname") is not None and metadata.get("split") is not None:
        return _ground_truth_from_voc_xml(metadata.dirname, metadata.split, class_names)
    return _ground_truth_from_dataset_dicts(dataset_name, class_names)


def _ground_truth_from_voc_xml(
    dirname: str, split: str, class_names: List[str]
) -> Dict[Hashable, ImageGroundTruth]:
    """Objects of ``Annotations/<id>.xml`` for the ids in ``ImageSets/Main/<split>.txt``."""
    with PathManager.open(os.path.join(dirname, "ImageSets", "Main", split + ".txt")) as f:
        image_ids = [line.strip() for line in f if line.strip()]
    annotation_dir = PathManager.get_local_path(os.path.join(dirname, "Annotations"))
    ground_truth = {}
    for image_id in image_ids:
        with PathManager.open(os.path.join(annotation_dir, image_id + ".xml")) as f:
            objects = ET.parse(f).findall("object")
        classes, boxes, ignore = [], [], []
        for obj in objects:
            name = obj.findtext("name").strip()
            if name not in class_names:
                continue
            box = obj.find("bndbox")
            classes.append(class_names.index(name))
            boxes.append([float(box.findtext(side)) for side in ("xmin", "ymin", "xmax", "ymax")])
            ignore.append(int(obj.findtext("difficult", default="0")) == 1)
        ground_truth[image_id] = _image_ground_truth(classes, boxes, ignore)
    return ground_truth


def _ground_truth_from_dataset_dicts(
    dataset_name: str, class_names: List[str]
) -> Dict[Hashable, ImageGroundTruth]:
    """Objects of ``DatasetCatalog.get(dataset_name)``, boxes converted to VOC pixel indices."""
    ground_truth = {}
    for record in DatasetCatalog.get(dataset_name):
        if "image_id" not in record:
            raise KeyError(
                f"dataset {dataset_name!r} has a dict without 'image_id' (keys {sorted(record)}): "
                "VOCDetectionEvaluator pairs predictions and ground truth by it, so add one per image"
            )
        classes, boxes, ignore = [], [], []
        for annotation in record.get("annotations", []):
            category_id = annotation["category_id"]
            if not 0 <= category_id < len(class_names):
                raise ValueError(
                    f"dataset {dataset_name!r} has category_id={category_id} but only "
                    f"{len(class_names)} thing_classes: map category ids to contiguous indices"
                )
            classes.append(category_id)
            boxes.append(BoxMode.convert(list(annotation["bbox"]), annotation["bbox_mode"], BoxMode.XYXY_ABS))
            ignore.append(annotation.get("iscrowd", 0) == 1)
        ground_truth[record["image_id"]] = _image_ground_truth(classes, to_voc_pixel_boxes(boxes), ignore)
    return ground_truth


def _image_ground_truth(classes, boxes, ignore) -> ImageGroundTruth:
    return ImageGroundTruth(
        classes=np.asarray(classes, dtype=np.int64),
        boxes=np.asarray(boxes, dtype=np.float64).reshape(-1, 4),
        ignore=np.asarray(ignore, dtype=bool),
    )


class VOCDetectionEvaluator(DatasetEvaluator):
    """
    Pascal VOC detection AP (percent) of ``output["instances"]`` for any registered detection
    dataset whose metadata has ``thing_classes`` (ground truth: see ``load_ground_truth``).

    ``evaluate()`` returns on the main process (``{}`` on the others)::

        {"voc": {"AP": area AP averaged over IoU 0.50:0.95 (step 0.05),
                  "AP50": area AP at IoU 0.5, "AP50_11pt": VOC2007 11-point AP at IoU 0.5,
                  "AP75": area AP at IoU 0.75, "AP50-<class>": area AP at 0.5 of each class}}

    Each metric is a mean over classes. Classes with no ground-truth positive among the evaluated
    images have no defined AP: they are left out of the means (with a warning) and their
    per-class value is NaN. Only images passed to ``process`` are evaluated, so evaluating a
    subset of the dataset scores that subset. Matching and box convention: see
    ``RankedClassDetections`` and the module docstring. With ``distributed=True`` ``evaluate()``
    must be called from every process. The task key is ``"voc"`` (not ``"bbox"``) so that it
    can run beside ``COCOEvaluator`` in one ``DatasetEvaluators``.
    """

    def __init__(self, dataset_name: str, distributed: bool = True):
        self._dataset_name = dataset_name
        self._class_names = dataset_thing_classes(dataset_name)
        self._distributed = distributed
        self._ground_truth = None
        self.reset()

    def reset(self):
        self._predictions = []  # per image: (image_id, classes, VOC pixel boxes, scores)

    def process(self, inputs, outputs):
        for input_dict, output in zip(inputs, outputs):
            if "image_id" not in input_dict:
                raise KeyError(
                    f"VOCDetectionEvaluator needs 'image_id' in every input dict, got only "
                    f"{sorted(input_dict)}: make the dataset mapper keep the dataset dict's 'image_id'"
                )
            instances = output["instances"].to("cpu")
            unknown_classes = instances.pred_classes[instances.pred_classes >= len(self._class_names)]
            if len(unknown_classes):
                raise ValueError(
                    f"predicted class {int(unknown_classes[0])} but dataset {self._dataset_name!r} has "
                    f"{len(self._class_names)} thing_classes: set the model's number of classes to match"
                )
            self._predictions.append(
                (
                    input_dict["image_id"],
                    instances.pred_classes.numpy(),
                    to_voc_pixel_boxes(instances.pred_boxes.tensor.numpy()),
                    instances.scores.numpy().astype(np.float64),
                )
            )

    def evaluate(self):
        predictions = self._predictions
        if self._distributed:
            comm.synchronize()
            gathered = comm.gather(predictions, dst=0)
            if not comm.is_main_process():
                return {}
            predictions = list(itertools.chain.from_iterable(gathered))
        if self._ground_truth is None:
            self._ground_truth = load_ground_truth(self._dataset_name)
        unknown = [image_id for image_id, *_ in predictions if image_id not in self._ground_truth]
        if unknown:
            raise KeyError(
                f"predictions for image ids {unknown[:5]} not in the ground truth of "
                f"{self._dataset_name!r}: evaluate with the same dataset the inputs come from"
            )
        evaluated_ids = {image_id for image_id, *_ in predictions}
        logger.info(
            f"Evaluating VOC AP on {len(evaluated_ids)} of {len(self._ground_truth)} images "
            f"of {self._dataset_name!r}"
        )
        return OrderedDict(voc=self._compute_metrics(predictions, evaluated_ids))

    def _compute_metrics(self, predictions, evaluated_ids) -> Dict[str, float]:
        """Per-class AP at every IoU threshold, averaged over classes with positives."""
        num_classes = len(self._class_names)
        area_ap = np.full((num_classes, len(IOU_THRESHOLDS)), np.nan)
        eleven_point_ap50 = np.full(num_classes, np.nan)
        positives = np.zeros(num_classes, dtype=int)
        for class_id in range(num_classes):
            detections = self._class_detections(predictions, class_id)
            ground_truth = {}
            for image_id in evaluated_ids:
                image_gt = self._ground_truth[image_id]
                of_class = image_gt.classes == class_id
                ground_truth[image_id] = (image_gt.boxes[of_class], image_gt.ignore[of_class])
            ranked = RankedClassDetections(*detections, ground_truth)
            positives[class_id] = ranked.num_positives
            if ranked.num_positives == 0:
                continue
            for threshold_index, threshold in enumerate(IOU_THRESHOLDS):
                recall, precision = ranked.precision_recall(threshold)
                area_ap[class_id, threshold_index] = area_average_precision(recall, precision)
                if threshold_index == _AP50_INDEX:
                    eleven_point_ap50[class_id] = eleven_point_average_precision(recall, precision)

        without_positives = [name for name, count in zip(self._class_names, positives) if count == 0]
        if without_positives:
            logger.warning(
                f"Classes {without_positives} have no ground-truth positives in the evaluated images "
                f"of {self._dataset_name!r}: their AP is undefined and left out of the means"
            )
        self._log_per_class_table(positives, area_ap, eleven_point_ap50)
        with_positives = positives > 0
        if not with_positives.any():
            return OrderedDict((name, float("nan")) for name in ("AP", "AP50", "AP50_11pt", "AP75"))
        area_ap_percent = 100.0 * area_ap[with_positives]
        results = OrderedDict(
            AP=float(area_ap_percent.mean()),
            AP50=float(area_ap_percent[:, _AP50_INDEX].mean()),
            AP50_11pt=float(100.0 * eleven_point_ap50[with_positives].mean()),
            AP75=float(area_ap_percent[:, _AP75_INDEX].mean()),
        )
        for name, ap50 in zip(self._class_names, area_ap[:, _AP50_INDEX]):
            results[f"AP50-{name}"] = float(100.0 * ap50)
        return results

    @staticmethod
    def _class_detections(predictions, class_id: int):
        """(image_ids, scores, boxes) of all predictions of one class."""
        image_ids, scores, boxes = [], [], []
        for image_id, classes, image_boxes, image_scores in predictions:
            of_class = classes == class_id
            image_ids.extend([image_id] * int(of_class.sum()))
            scores.append(image_scores[of_class])
            boxes.append(image_boxes[of_class])
        return image_ids, np.concatenate(scores or [np.zeros(0)]), np.concatenate(boxes or [np.zeros((0, 4))])

    def _log_per_class_table(self, positives, area_ap, eleven_point_ap50):
        rows = [
            (name, count, 100.0 * ap[_AP50_INDEX], 100.0 * ap11, 100.0 * ap.mean())
            for name, count, ap, ap11 in zip(self._class_names, positives, area_ap, eleven_point_ap50)
        ]
        table = tabulate(
            rows, headers=["class", "positives", "AP50", "AP50_11pt", "AP"], tablefmt="pipe", floatfmt=".2f"
        )
        logger.info(f"Per-class VOC AP of {self._dataset_name!r}:\n" + table)
