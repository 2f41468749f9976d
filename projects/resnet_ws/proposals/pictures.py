"""Pictures of proposal files: the top proposals and the real boxes of a dataset's images."""

import os
from typing import List, Optional

import cv2
import numpy as np

from detectron2.data import DatasetCatalog
from detectron2.data import detection_utils
from detectron2.data.build import load_proposals_into_dataset
from detectron2.structures import BoxMode
from detectron2.utils.visualizer import Visualizer

from projects.common.data import check_dataset_available
from projects.common.io import write_bytes_atomically

from .files import file_stem

__all__ = ["draw_proposals", "save_proposal_pictures"]

PROPOSAL_COLOUR = "magenta"
GROUND_TRUTH_COLOUR = "lime"
DISPLAY_SHORT_SIDE = 512  # small images are enlarged in pictures so that boxes stay legible


def draw_proposals(image_bgr: np.ndarray, boxes: np.ndarray, gt_boxes: Optional[np.ndarray] = None) -> np.ndarray:
    """RGB picture of ``image_bgr`` with ``boxes`` (XYXY, solid) and ``gt_boxes`` (dashed), enlarged
    so that its short side is at least ``DISPLAY_SHORT_SIDE``."""
    image_rgb = np.ascontiguousarray(np.asarray(image_bgr)[:, :, ::-1])
    visualizer = Visualizer(image_rgb, scale=max(1.0, DISPLAY_SHORT_SIDE / min(image_rgb.shape[:2])))
    for box in np.asarray(boxes, dtype=np.float64).reshape(-1, 4):
        visualizer.draw_box(box, alpha=0.8, edge_color=PROPOSAL_COLOUR)
    for box in np.zeros((0, 4)) if gt_boxes is None else np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4):
        visualizer.draw_box(box, alpha=1.0, edge_color=GROUND_TRUTH_COLOUR, line_style="--")
    return visualizer.get_output().get_image()


def save_proposal_pictures(
    proposal_file: str, dataset_name: str, output_dir: str, num_images: int = 4, top: int = 20
) -> List[str]:
    """
    PNGs ``<output_dir>/<file stem>.png`` of the first ``num_images`` images of ``dataset_name``
    with their ``top`` highest-objectness proposals (read as detectron2 reads them) and real
    boxes, each written atomically. Returns the paths.
    """
    if num_images < 1 or top < 1:
        raise ValueError(f"num_images and top must be >= 1, got {num_images} and {top}")
    check_dataset_available(dataset_name)
    records = DatasetCatalog.get(dataset_name)[:num_images]
    try:
        load_proposals_into_dataset(records, proposal_file)
    except KeyError as error:
        raise KeyError(f"{proposal_file} has no proposals for image_id {error} of {dataset_name}: pass the "
                       "--dataset the file was made for") from None
    paths = []
    for record in records:
        boxes = BoxMode.convert(record["proposal_boxes"][:top], record["proposal_bbox_mode"], BoxMode.XYXY_ABS)
        truth = [BoxMode.convert(annotation["bbox"], annotation["bbox_mode"], BoxMode.XYXY_ABS)
                 for annotation in record.get("annotations", [])]
        picture = draw_proposals(detection_utils.read_image(record["file_name"], format="BGR"), boxes, np.array(truth))
        path = os.path.join(output_dir, file_stem(record) + ".png")
        write_bytes_atomically(path, cv2.imencode(".png", picture[:, :, ::-1])[1].tobytes())
        paths.append(path)
    return paths
