"""Summary statistics of pseudo boxes (paper Table A1/A2) and their quality against real boxes."""

from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from detectron2.structures import Boxes, BoxMode, pairwise_iou

__all__ = ["pseudo_box_statistics", "localisation_quality"]


def pseudo_box_statistics(boxes_per_image: Sequence[np.ndarray]) -> Dict[str, float]:
    """Table A1/A2 columns for XYXY boxes (one array per image, image pixels)."""
    counts = np.array([len(boxes) for boxes in boxes_per_image])
    stacked = np.concatenate([np.asarray(b, dtype=np.float64).reshape(-1, 4) for b in boxes_per_image] or [np.zeros((0, 4))])
    widths, heights = stacked[:, 2] - stacked[:, 0], stacked[:, 3] - stacked[:, 1]
    return {
        "images": int(len(counts)),
        "images_with_boxes": int((counts > 0).sum()),
        "boxes": int(counts.sum()),
        "boxes_per_image": float(counts.mean()) if len(counts) else 0.0,
        "mean_box_width": float(widths.mean()) if len(widths) else 0.0,
        "mean_box_height": float(heights.mean()) if len(heights) else 0.0,
    }


def localisation_quality(
    pseudo_boxes: Sequence[np.ndarray], dataset_dicts: Sequence[dict], iou_threshold: float = 0.5
) -> Optional[Dict[str, float]]:
    """
    How well pseudo boxes find the labelled class's real boxes, on datasets that have them
    (e.g. the synthetic classification split): ``mean_best_iou`` over real boxes of the image's
    class (each with its best-overlapping pseudo box, 0 if none), ``recall`` and ``precision``
    at ``iou_threshold`` (percent). Returns None when no dict has such boxes.
    """
    best_ious: List[float] = []
    matched_pseudo, total_pseudo = 0, 0
    for boxes, record in zip(pseudo_boxes, dataset_dicts):
        truth = [
            BoxMode.convert(annotation["bbox"], annotation["bbox_mode"], BoxMode.XYXY_ABS)
            for annotation in record.get("annotations", [])
            if annotation["category_id"] == record["class_id"]
        ]
        if not truth:
            continue
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        total_pseudo += len(boxes)
        if len(boxes) == 0:
            best_ious.extend([0.0] * len(truth))
            continue
        ious = pairwise_iou(Boxes(torch.tensor(truth, dtype=torch.float64)), Boxes(torch.from_numpy(boxes)))
        best_ious.extend(ious.max(dim=1).values.tolist())
        matched_pseudo += int((ious.max(dim=0).values >= iou_threshold).sum())
    if not best_ious:
        return None
    best = np.array(best_ious)
    return {
        "mean_best_iou": float(best.mean()),
        f"recall@{iou_threshold:g}": 100.0 * float((best >= iou_threshold).mean()),
        f"precision@{iou_threshold:g}": 100.0 * matched_pseudo / total_pseudo if total_pseudo else 0.0,
    }
