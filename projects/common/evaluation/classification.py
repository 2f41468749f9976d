"""Top-k accuracy of per-image class scores."""

import itertools
import logging
from collections import OrderedDict
from typing import Optional, Sequence

import numpy as np
import torch

from detectron2.evaluation import DatasetEvaluator
from detectron2.utils import comm

from ..data import dataset_metadata

logger = logging.getLogger(__name__)


class ClassificationEvaluator(DatasetEvaluator):
    """
    Top-k accuracy (percent) of ``output["scores"]`` against ``input["class_id"]``.

    The scores can be any per-class vector where higher means more likely (softmax probabilities,
    logits, summed detection confidences, ...). An image counts as correct at k when fewer than k
    classes score *at least as high* as its true class: ties count against the true class, so an
    all-zero vector (e.g. an image without detections) is never correct.

    k larger than the number of classes C is clipped to C (every image is then correct), but the
    result keeps the requested name: with 3 classes, ``top5`` reports top-3 accuracy = 100.

    ``evaluate()`` returns ``{"classification": {"top1": ..., "top5": ...}}`` on the main process
    and ``{}`` on the others; with ``distributed=True`` it must be called from every process.
    """

    def __init__(
        self, dataset_name: Optional[str] = None, topk: Sequence[int] = (1, 5), distributed: bool = True
    ):
        """
        Args:
            dataset_name: used in log messages and, when its metadata has ``thing_classes``, to
                check that every score vector has one entry per class.
            topk: the k values to report, positive integers.
            distributed: gather results from all processes with ``detectron2.utils.comm``.
        """
        topk = tuple(topk)
        if not topk or any(not isinstance(k, int) or k < 1 for k in topk):
            raise ValueError(f"topk must be a non-empty sequence of positive ints, got {topk!r}")
        self._dataset_name = dataset_name
        self._topk = topk
        self._distributed = distributed
        class_names = dataset_metadata(dataset_name).get("thing_classes") if dataset_name else None
        self._expected_num_classes = len(class_names) if class_names is not None else None
        self.reset()

    def reset(self):
        self._true_class_ranks = []  # per image: number of classes scoring >= the true class, minus itself
        self._num_classes = None

    def process(self, inputs, outputs):
        for input_dict, output in zip(inputs, outputs):
            if "class_id" not in input_dict:
                raise KeyError(
                    f"ClassificationEvaluator needs 'class_id' in every input dict, got only "
                    f"{sorted(input_dict)}: make the dataset mapper keep the dataset dict's 'class_id'"
                )
            scores = output["scores"].detach().to("cpu", torch.float64).flatten()
            class_id = int(input_dict["class_id"])
            self._check_num_classes(len(scores))
            if not 0 <= class_id < len(scores):
                raise ValueError(
                    f"class_id={class_id} has no entry in a score vector of {len(scores)} classes: "
                    "the model's num_classes must match the dataset"
                )
            rank = int((scores >= scores[class_id]).sum()) - 1
            self._true_class_ranks.append(rank)

    def _check_num_classes(self, num_classes: int):
        """All score vectors must have the same length, that of the dataset's classes if known."""
        if self._num_classes is None:
            self._num_classes = num_classes
        if num_classes != self._num_classes:
            raise ValueError(
                f"got score vectors with {self._num_classes} and {num_classes} entries: "
                "every output's 'scores' must have one entry per class"
            )
        if self._expected_num_classes is not None and num_classes != self._expected_num_classes:
            raise ValueError(
                f"scores have {num_classes} entries but dataset {self._dataset_name!r} has "
                f"{self._expected_num_classes} thing_classes: set the model's num_classes to match"
            )

    def evaluate(self):
        ranks, num_classes = self._true_class_ranks, self._num_classes
        if self._distributed:
            comm.synchronize()
            gathered = comm.gather((ranks, num_classes), dst=0)
            if not comm.is_main_process():
                return {}
            ranks = list(itertools.chain.from_iterable(part_ranks for part_ranks, _ in gathered))
            class_counts = {count for _, count in gathered if count is not None}
            if len(class_counts) > 1:
                raise ValueError(
                    f"processes saw score vectors of different lengths {sorted(class_counts)}: "
                    "every process must run the same model"
                )
            num_classes = class_counts.pop() if class_counts else None
        if not ranks:
            logger.warning(f"ClassificationEvaluator on {self._dataset_name!r} received no predictions")
            return {}
        ranks = np.asarray(ranks)
        results = OrderedDict(
            (f"top{k}", 100.0 * float(np.mean(ranks < min(k, num_classes)))) for k in self._topk
        )
        logger.info(
            f"Classification accuracy on {self._dataset_name!r} ({len(ranks)} images): {dict(results)}"
        )
        return OrderedDict(classification=results)
