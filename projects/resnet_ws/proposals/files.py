"""detectron2 proposal files: the pickle itself, the dataset images it covers, and the usual
quality measures of its boxes against the datasets' real boxes."""

import logging
import os
import pickle
from typing import Dict, List, Sequence

import numpy as np
import torch

from detectron2.data import DatasetCatalog
from detectron2.structures import Boxes, BoxMode, pairwise_iou

from projects.common.data import check_dataset_available
from projects.common.io import atomic_output

__all__ = [
    "file_stem",
    "format_statistics",
    "load_image_records",
    "proposal_statistics",
    "write_proposal_file",
    "write_proposals_with_statistics",
]

logger = logging.getLogger(__name__)

RECALL_IOU_THRESHOLDS = (0.5, 0.7)


def write_proposal_file(
    path: str, image_ids: Sequence, boxes: Sequence[np.ndarray], objectness_logits: Sequence[np.ndarray]
) -> None:
    """The detectron2 proposal pickle (XYXY_ABS float32 boxes), written atomically."""
    if not len(image_ids) == len(boxes) == len(objectness_logits):
        raise ValueError(f"need one box array and one score array per image id, got {len(image_ids)} ids, "
                         f"{len(boxes)} box arrays and {len(objectness_logits)} score arrays")
    content = {
        "ids": [image_id.item() if isinstance(image_id, np.generic) else image_id for image_id in image_ids],
        "boxes": [np.asarray(b, dtype=np.float32).reshape(-1, 4) for b in boxes],
        "objectness_logits": [np.asarray(s, dtype=np.float32).reshape(-1) for s in objectness_logits],
        "bbox_mode": BoxMode.XYXY_ABS,
    }
    for image_id, image_boxes, scores in zip(content["ids"], content["boxes"], content["objectness_logits"]):
        if len(image_boxes) != len(scores):
            raise ValueError(f"image {image_id}: {len(image_boxes)} boxes but {len(scores)} scores")
    with atomic_output(path) as f:
        pickle.dump(content, f, protocol=pickle.HIGHEST_PROTOCOL)


def write_proposals_with_statistics(
    output: str, records: Sequence[dict], boxes: List[np.ndarray], scores: List[np.ndarray]
) -> Dict[str, float]:
    """The proposal file of ``records`` (ids = their ``image_id``) at ``output``, atomically; logs
    and returns its ``proposal_statistics``."""
    write_proposal_file(output, [record["image_id"] for record in records], boxes, scores)
    statistics = proposal_statistics(boxes, records)
    logger.info(f"Wrote {output}\n{format_statistics(statistics)}")
    return statistics


def proposal_statistics(
    boxes_per_image: Sequence[np.ndarray],
    records: Sequence[dict],
    iou_thresholds: Sequence[float] = RECALL_IOU_THRESHOLDS,
) -> Dict[str, float]:
    """
    ``images`` and ``boxes_per_image``; when ``records`` (dataset dicts, same order) have real
    boxes (crowd boxes excluded) also ``gt_boxes``, ``recall@T`` (percent of real boxes whose
    best proposal has IoU >= T) and ``mean_best_iou``: the usual proposal-quality measures.
    """
    statistics = {"images": len(boxes_per_image),
                  "boxes_per_image": float(np.mean([len(b) for b in boxes_per_image])) if len(boxes_per_image) else 0.0}
    best_ious = []
    for boxes, record in zip(boxes_per_image, records):
        truth = [BoxMode.convert(annotation["bbox"], annotation["bbox_mode"], BoxMode.XYXY_ABS)
                 for annotation in record.get("annotations", []) if not annotation.get("iscrowd", 0)]
        if not truth:
            continue
        if len(boxes) == 0:
            best_ious.extend([0.0] * len(truth))
            continue
        ious = pairwise_iou(Boxes(torch.tensor(truth, dtype=torch.float64)),
                            Boxes(torch.as_tensor(np.asarray(boxes, dtype=np.float64).reshape(-1, 4))))
        best_ious.extend(ious.max(dim=1).values.tolist())
    if best_ious:
        best = np.array(best_ious)
        statistics["gt_boxes"] = len(best)
        for threshold in iou_thresholds:
            statistics[f"recall@{threshold:g}"] = 100.0 * float((best >= threshold).mean())
        statistics["mean_best_iou"] = float(best.mean())
    return statistics


def format_statistics(statistics: Dict[str, float]) -> str:
    """``proposal_statistics`` as one line."""
    parts = [f"{statistics['images']} images", f"{statistics['boxes_per_image']:.1f} boxes/image"]
    if "gt_boxes" in statistics:
        parts.append(f"{statistics['gt_boxes']} real boxes")
        parts += [f"{name} {value:.1f}%" for name, value in statistics.items() if name.startswith("recall@")]
        parts.append(f"mean best IoU {statistics['mean_best_iou']:.3f}")
    return "proposals: " + ", ".join(parts)


def load_image_records(dataset_names: Sequence[str], max_images: int = 0) -> List[dict]:
    """
    The dataset dicts of ``dataset_names`` in order, each image once (an image listed by two of
    the datasets, same ``image_id`` and file, is kept at its first place); the first
    ``max_images`` only when > 0 (quick runs: the file then covers only those images).
    """
    if not dataset_names:
        raise ValueError("name at least one dataset (--dataset NAME)")
    records, file_of_id = [], {}
    for name in dataset_names:
        check_dataset_available(name)
        for record in DatasetCatalog.get(name):
            image_id = str(record["image_id"])
            if image_id in file_of_id:
                if file_of_id[image_id] != record["file_name"]:
                    raise ValueError(
                        f"image_id {image_id!r} names both {file_of_id[image_id]} and {record['file_name']} "
                        f"(datasets {list(dataset_names)}): proposal files match images by image_id, so write "
                        "one proposal file per dataset"
                    )
                continue
            file_of_id[image_id] = record["file_name"]
            records.append(record)
    if not records:
        raise ValueError(f"datasets {list(dataset_names)} have no images")
    return records[:max_images] if max_images > 0 else records


def file_stem(record: dict) -> str:
    """The image's file name without folder and extension (how .mat files and pictures name it)."""
    return os.path.splitext(os.path.basename(record["file_name"]))[0]
