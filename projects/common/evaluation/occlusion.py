"""COCO AP per occlusion-ratio bucket (Tied Block Convolution paper, Eq. 5 and Fig. 7).

The paper defines an image's occlusion ratio as r = total overlap area / total instance area
without saying how overlaps of several instances count. We use ground-truth *boxes* (COCO
masks cover only the visible part of an instance, so they hardly overlap) and count, for every
instance, the part of its box covered by at least one other box:

    r = sum_i |B_i ∩ (∪_{j≠i} B_j)| / sum_i |B_i|        (0 = no overlap, 1 = all boxes overlapped)

which is the scale on which the paper reports results "at r = 0.8". Crowd annotations are
ignored; images without instances have no ratio and are in no bucket.
"""
import contextlib
import copy
import io
import itertools
import json
import logging
import os
from collections import OrderedDict
from typing import Dict, List, Sequence

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from detectron2.data import MetadataCatalog
from detectron2.evaluation import DatasetEvaluator
from detectron2.evaluation.coco_evaluation import instances_to_coco_json
from detectron2.structures import BoxMode
from detectron2.utils import comm
from detectron2.utils.file_io import PathManager

from ..data import check_dataset_available, dataset_metadata

logger = logging.getLogger(__name__)


def box_occlusion_ratio(boxes_xyxy: np.ndarray, height: int, width: int) -> float:
    """r of one image from its (N, 4) XYXY boxes, measured on the image's pixel grid."""
    boxes = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    coverage = np.zeros((height, width), dtype=np.int32)
    for x0, y0, x1, y1 in np.round(boxes).astype(int):
        coverage[max(y0, 0) : max(y1, 0), max(x0, 0) : max(x1, 0)] += 1
    total = coverage.sum()
    if total == 0:
        return float("nan")
    return float(coverage[coverage >= 2].sum() / total)


def bucket_names(edges: Sequence[float]) -> List[str]:
    """``[0.0, 0.2, 0.8]`` -> ``["r0.0to0.2", "r0.2to0.8", "r0.8to1.0"]`` (the last bucket is
    closed). No "-" in the names: detectron2's ``print_csv_format`` hides such keys."""
    upper = list(edges[1:]) + [1.0]
    return [f"r{lo:.1f}to{hi:.1f}" for lo, hi in zip(edges, upper)]


def bucket_index(ratio: float, edges: Sequence[float]) -> int:
    """Index of the bucket ``[edges[k], edges[k+1])`` holding ``ratio``; the last one is ``[edges[-1], 1]``."""
    return int(np.searchsorted(np.asarray(edges), ratio, side="right")) - 1


class OcclusionEvaluator(DatasetEvaluator):
    """
    COCO AP and AP75 (bbox, and segm when the model predicts masks) on the images of each
    occlusion-ratio bucket of a COCO-format dataset. ``evaluate()`` returns, on the main process::

        {"occlusion": {"bbox_AP_r0.0to0.2": ..., "bbox_AP75_r0.0to0.2": ..., "images_r0.0to0.2": ...}}

    With ``output_dir``, also writes ``occlusion_results.json`` and a plot ``occlusion_ap.png``
    of AP and AP75 against the bucket.
    """

    def __init__(self, dataset_name: str, bucket_edges: Sequence[float] = (0.0, 0.2, 0.4, 0.6, 0.8),
                 distributed: bool = True, output_dir: str = None):
        edges = list(bucket_edges)
        if not edges or edges[0] != 0.0 or any(b <= a for a, b in zip(edges, edges[1:])) or edges[-1] >= 1.0:
            raise ValueError(f"bucket_edges={edges} must increase from 0.0 and stay below 1.0, e.g. (0.0, 0.4, 0.8)")
        self._dataset_name = dataset_name
        self._edges = edges
        self._distributed = distributed
        self._output_dir = output_dir
        self._predictions = []

    def reset(self):
        self._predictions = []

    def process(self, inputs, outputs):
        for model_input, output in zip(inputs, outputs):
            instances = output["instances"].to("cpu")
            self._predictions.append(
                {"image_id": model_input["image_id"], "has_masks": instances.has("pred_masks"),
                 "results": instances_to_coco_json(instances, model_input["image_id"])}
            )

    def evaluate(self):
        predictions = self._predictions
        if self._distributed:
            comm.synchronize()
            predictions = list(itertools.chain(*comm.gather(predictions, dst=0)))
            if not comm.is_main_process():
                return {}
        coco_gt = self._load_ground_truth()
        ratios = self.image_occlusion_ratios(coco_gt)
        evaluated = {p["image_id"] for p in predictions}
        # contiguous class ids back to the json's category ids, as COCOEvaluator does
        to_dataset_id = {v: k for k, v in dataset_metadata(self._dataset_name)
                         .get("thing_dataset_id_to_contiguous_id", {}).items()}
        results = [dict(r, category_id=to_dataset_id.get(r["category_id"], r["category_id"]))
                   for p in predictions for r in p["results"]]
        tasks = ["bbox"] + (["segm"] if any(p["has_masks"] for p in predictions) else [])
        metrics = OrderedDict()
        logger.info(f"Occlusion buckets {bucket_names(self._edges)} over {len(evaluated)} images "
                    f"({len(evaluated - set(ratios))} without instances are in none)")
        for name, bucket in zip(bucket_names(self._edges), range(len(self._edges))):
            image_ids = sorted(i for i in evaluated if i in ratios and bucket_index(ratios[i], self._edges) == bucket)
            metrics[f"images_{name}"] = len(image_ids)
            for task in tasks:
                ap, ap75 = self._coco_ap(coco_gt, results, task, image_ids)
                metrics[f"{task}_AP_{name}"], metrics[f"{task}_AP75_{name}"] = ap, ap75
        if self._output_dir:
            self._save(metrics, tasks)
        return OrderedDict(occlusion=metrics)

    def _load_ground_truth(self) -> COCO:
        check_dataset_available(self._dataset_name)  # embedded datasets are generated on first use
        metadata = MetadataCatalog.get(self._dataset_name)
        json_file = metadata.get("json_file")
        if json_file is None or not PathManager.exists(json_file):
            raise FileNotFoundError(
                f"OcclusionEvaluator needs the COCO json of {self._dataset_name!r} "
                f"(metadata json_file={json_file!r}); register the dataset from a COCO json file"
            )
        with PathManager.open(json_file) as f:
            coco_gt = COCO()
            coco_gt.dataset = json.load(f)
            coco_gt.createIndex()
        return coco_gt

    @staticmethod
    def image_occlusion_ratios(coco_gt: COCO) -> Dict[int, float]:
        """Image id -> r, for the images with at least one non-crowd instance."""
        ratios = {}
        for image_id, image in coco_gt.imgs.items():
            annotations = [a for a in coco_gt.imgToAnns.get(image_id, []) if not a.get("iscrowd", 0)]
            if not annotations:
                continue
            boxes = [BoxMode.convert(a["bbox"], BoxMode.XYWH_ABS, BoxMode.XYXY_ABS) for a in annotations]
            ratios[image_id] = box_occlusion_ratio(np.array(boxes), image["height"], image["width"])
        return ratios

    @staticmethod
    def _coco_ap(coco_gt: COCO, results: List[dict], task: str, image_ids: List[int]):
        """(AP, AP75) in percent on ``image_ids``; NaN without images, 0 without detections."""
        if not image_ids:
            return float("nan"), float("nan")
        in_bucket = set(image_ids)
        bucket_results = [copy.copy(r) for r in results if r["image_id"] in in_bucket]
        if task == "segm":  # like COCOEvaluator: mask AP uses mask areas
            for r in bucket_results:
                r.pop("bbox", None)
        if not bucket_results:
            return 0.0, 0.0
        with contextlib.redirect_stdout(io.StringIO()):  # one COCOeval summary per bucket is noise
            coco_eval = COCOeval(coco_gt, coco_gt.loadRes(bucket_results), task)
            coco_eval.params.imgIds = image_ids
            coco_eval.evaluate()
            coco_eval.accumulate()
            coco_eval.summarize()
        return float(coco_eval.stats[0] * 100), float(coco_eval.stats[2] * 100)

    def _save(self, metrics, tasks):
        PathManager.mkdirs(self._output_dir)
        with PathManager.open(os.path.join(self._output_dir, "occlusion_results.json"), "w") as f:
            json.dump(metrics, f, indent=2)
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        names = bucket_names(self._edges)
        figure, axis = plt.subplots(figsize=(6, 4))
        for task in tasks:
            for metric, style in (("AP", "-o"), ("AP75", "--s")):
                axis.plot(names, [metrics[f"{task}_{metric}_{n}"] for n in names], style, label=f"{task} {metric}")
        axis.set_xlabel("occlusion ratio r (bucket)")
        axis.set_ylabel("AP (%)")
        axis.set_title(f"AP vs occlusion: {self._dataset_name}")
        axis.legend()
        figure.tight_layout()
        figure.savefig(os.path.join(self._output_dir, "occlusion_ap.png"))
        plt.close(figure)
