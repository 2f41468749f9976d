"""
Pictures of CAM pseudo boxes like the paper's Fig. 6: for sampled images of a classification
dataset, the image with its pseudo boxes (and the labelled class's real boxes, when the dataset
has them) next to the class activation map drawn as a heatmap over the image.

    python -m dap.visualize --config-file configs/dap/synthetic_classifier_cpu.py \\
        --weights output/dap/synthetic/classifier/model_final.pth \\
        --dataset synthetic_shapes_cls_val --output docs/dap_pseudo_boxes.png \\
        --scales 128 256 --resolution image [--num-images 8 --seed 0] [--boxes pseudo_boxes.json]

The boxes are recomputed from the CAMs with the pseudo-box options (the same as
``python -m dap.generate_pseudo_boxes``), or read from that tool's COCO JSON with ``--boxes``;
the CAMs are always computed (with ``--scales``, ``--no-flip`` and ``--resolution``).
"""

import argparse
import dataclasses
import json
import logging
import math
import os
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data import detection_utils
from detectron2.structures import BoxMode
from detectron2.utils.logger import setup_logger
from detectron2.utils.visualizer import Visualizer

from projects.common.data import check_dataset_available
from projects.common.io import save_figure_atomically

from .cam import ClassActivationMap
from .pseudo_boxes import (
    LabelledImageReader,
    PseudoBoxOptions,
    add_pseudo_box_arguments,
    load_classifier,
    options_from_args,
)
from .statistics import localisation_quality

__all__ = [
    "draw_cam_and_boxes",
    "ground_truth_boxes",
    "main",
    "pseudo_box_panels",
    "read_pseudo_box_json",
    "sample_across_classes",
    "save_pseudo_box_figure",
]

logger = logging.getLogger("dap.visualize")

PSEUDO_BOX_COLOUR = "magenta"  # absent from the jet colour map of the heatmap
GROUND_TRUTH_COLOUR = "lime"
DISPLAY_SHORT_SIDE = 256  # small images (the synthetic 128 px) are enlarged so lines and boxes stay legible
HEATMAP_OPACITY = 0.5
CAM_BATCH_SIZE = 8  # images per forward: bounded memory on large images at the paper's 576 px scale
LEGEND = (f"pseudo boxes: {PSEUDO_BOX_COLOUR} solid; real boxes of the labelled class: {GROUND_TRUTH_COLOUR} "
          "dashed; right: CAM of the labelled class (jet, red = high)")


def draw_cam_and_boxes(
    image_bgr: np.ndarray,
    cam_map: ClassActivationMap,
    boxes_xyxy: np.ndarray,
    gt_boxes: Optional[np.ndarray] = None,
) -> np.ndarray:
    """
    One image side by side: left, the image with its pseudo boxes (solid) and ``gt_boxes``
    (dashed); right, the CAM as a heatmap over the image, with the pseudo boxes.

    Args:
        image_bgr: (H, W, 3) uint8 image as read by OpenCV; (H, W) must be ``cam_map.image_size``.
        cam_map: the image's CAM (``ClassActivationMapper`` output).
        boxes_xyxy: (N, 4) pseudo boxes in image pixels (``cam_map.pseudo_boxes``).
        gt_boxes: optional (M, 4) real XYXY boxes in image pixels.

    Returns:
        RGB uint8 array, both halves enlarged so that the short side is at least
        ``DISPLAY_SHORT_SIDE``, separated by a white gap.
    """
    image_bgr = np.asarray(image_bgr)
    if image_bgr.ndim != 3 or image_bgr.shape[2] != 3:
        raise ValueError(f"image_bgr must be an (H, W, 3) BGR image, got shape {image_bgr.shape}")
    if tuple(image_bgr.shape[:2]) != tuple(cam_map.image_size):
        raise ValueError(
            f"the image is {image_bgr.shape[:2]} but the CAM was computed for an image of {cam_map.image_size}: "
            "pass the image the CAM was made from"
        )
    image_rgb = np.ascontiguousarray(image_bgr[:, :, ::-1])
    scale = max(1.0, DISPLAY_SHORT_SIDE / min(image_rgb.shape[:2]))
    boxes = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    left = _draw_boxes(image_rgb, scale, boxes, np.zeros((0, 4)) if gt_boxes is None else gt_boxes)
    right = _draw_boxes(_heatmap_over_image(image_rgb, cam_map), scale, boxes, np.zeros((0, 4)))
    gap = np.full((left.shape[0], max(4, left.shape[1] // 40), 3), 255, dtype=np.uint8)
    return np.concatenate([left, gap, right], axis=1)


def _draw_boxes(image_rgb: np.ndarray, scale: float, pseudo_boxes: np.ndarray, gt_boxes) -> np.ndarray:
    visualizer = Visualizer(image_rgb, scale=scale)
    for box in np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4):
        visualizer.draw_box(box, alpha=1.0, edge_color=GROUND_TRUTH_COLOUR, line_style="--")
    for box in pseudo_boxes:
        visualizer.draw_box(box, alpha=1.0, edge_color=PSEUDO_BOX_COLOUR)
    return visualizer.get_output().get_image()


def _heatmap_over_image(image_rgb: np.ndarray, cam_map: ClassActivationMap) -> np.ndarray:
    """The CAM on the image's pixel grid (nearest: each cell shown as the box extraction sees it), in jet."""
    height, width = cam_map.image_size
    cells_y, cells_x = cam_map.cam.shape
    scale_x, scale_y = cam_map.pixels_per_cell
    # the last cells may extend past the image (padding to the stride): resize the whole grid, then crop
    grid_size = (max(width, math.ceil(cells_x * scale_x)), max(height, math.ceil(cells_y * scale_y)))
    cam = cv2.resize(cam_map.cam.astype(np.float32), grid_size, interpolation=cv2.INTER_NEAREST)[:height, :width]
    heat_bgr = cv2.applyColorMap(np.uint8(np.clip(cam, 0.0, 1.0) * 255), cv2.COLORMAP_JET)
    blended = (1 - HEATMAP_OPACITY) * image_rgb + HEATMAP_OPACITY * heat_bgr[:, :, ::-1]
    return blended.round().astype(np.uint8)


def ground_truth_boxes(record: dict) -> np.ndarray:
    """(M, 4) XYXY real boxes of the record's labelled class (``class_id``); empty when it has none."""
    boxes = [
        BoxMode.convert(annotation["bbox"], annotation["bbox_mode"], BoxMode.XYXY_ABS)
        for annotation in record.get("annotations", [])
        if annotation["category_id"] == record["class_id"]
    ]
    return np.array(boxes, dtype=np.float64).reshape(-1, 4)


def read_pseudo_box_json(
    json_file: str, records: Sequence[dict], image_root: Optional[str]
) -> Tuple[List[np.ndarray], dict]:
    """
    XYXY boxes of ``records`` from a COCO JSON of ``python -m dap.generate_pseudo_boxes``, matched
    by image path (the JSON's file names are relative to its ``info.image_root``, else to
    ``image_root``), and the ``PseudoBoxOptions`` (as a dict) stored in the JSON ({} if none).
    """
    with open(json_file) as f:
        coco = json.load(f)
    info = coco.get("info", {})
    json_root = info.get("image_root") or image_root
    if json_root is None:
        raise ValueError(f"{json_file} has no info.image_root and the dataset has no image_root metadata: "
                         "cannot tell which images its file names refer to")
    image_ids = {os.path.abspath(os.path.join(json_root, image["file_name"])): image["id"] for image in coco["images"]}
    boxes_by_id = {image_id: [] for image_id in image_ids.values()}
    for annotation in coco["annotations"]:
        x, y, w, h = annotation["bbox"]
        boxes_by_id[annotation["image_id"]].append([x, y, x + w, y + h])
    boxes = []
    for record in records:
        path = os.path.abspath(record["file_name"])
        if path not in image_ids:
            raise KeyError(
                f"{record['file_name']} is not in {json_file} (its images are under {json_root}): pass the "
                "--boxes file generated for this --dataset"
            )
        boxes.append(np.array(boxes_by_id[image_ids[path]], dtype=np.float64).reshape(-1, 4))
    return boxes, info.get("settings", {}).get("options", {})


def _warn_if_cam_settings_differ(json_file: str, stored_options: dict, options: PseudoBoxOptions) -> None:
    """The drawn CAMs come from this run's options; say so when the JSON's boxes came from other CAMs."""
    current = json.loads(json.dumps(dataclasses.asdict(options)))
    differing = {name: stored_options[name] for name in ("scales", "flip", "resolution")
                 if name in stored_options and stored_options[name] != current[name]}
    if differing:
        logger.warning(f"the boxes of {json_file} come from CAMs made with {differing}; pass the same "
                       "--scales/--no-flip/--resolution to draw those CAMs")


def pseudo_box_panels(
    model,
    dataset_name: str,
    num_images: int = 8,
    seed: int = 0,
    options: PseudoBoxOptions = PseudoBoxOptions(),
    boxes_json: Optional[str] = None,
) -> Tuple[List[np.ndarray], List[str]]:
    """
    ``draw_cam_and_boxes`` panels and their titles for ``num_images`` images of ``dataset_name``
    (``sample_across_classes`` with ``seed``). Boxes come from ``options`` or from ``boxes_json``.
    """
    check_dataset_available(dataset_name)
    dataset_dicts = DatasetCatalog.get(dataset_name)
    if not 1 <= num_images <= len(dataset_dicts):
        raise ValueError(f"--num-images must be in [1, {len(dataset_dicts)}] for {dataset_name}, got {num_images}")
    if any("class_id" not in record for record in dataset_dicts):
        raise ValueError(f"{dataset_name} has images without 'class_id': pseudo boxes need a classification dataset")
    indices = sample_across_classes(dataset_dicts, num_images, seed)
    records = [dataset_dicts[index] for index in indices]
    metadata = MetadataCatalog.get(dataset_name)
    reader = LabelledImageReader(dataset_dicts, indices, getattr(model, "input_format", "BGR"))
    mapper = options.cam_mapper(model)
    inputs = [reader[position][1] for position in range(len(indices))]
    cams = [cam for first in range(0, len(inputs), CAM_BATCH_SIZE)
            for cam in mapper(inputs[first : first + CAM_BATCH_SIZE])]
    if boxes_json:
        boxes, stored_options = read_pseudo_box_json(boxes_json, records, metadata.get("image_root"))
        _warn_if_cam_settings_differ(boxes_json, stored_options, options)
    else:
        boxes = [cam.pseudo_boxes(**options.box_arguments()) for cam in cams]
    panels, titles = [], []
    for index, record, cam, image_boxes in zip(indices, records, cams, boxes):
        truth = ground_truth_boxes(record)
        image_bgr = detection_utils.read_image(record["file_name"], format="BGR")
        panels.append(draw_cam_and_boxes(image_bgr, cam, image_boxes, truth if len(truth) else None))
        titles.append(_title(index, metadata.thing_classes[record["class_id"]], image_boxes, record))
    return panels, titles


def sample_across_classes(dataset_dicts: Sequence[dict], num_images: int, seed: int) -> List[int]:
    """``num_images`` dataset indices drawn at random (``seed``) one class after the other, so
    that as many classes as possible are shown; returned in dataset order."""
    by_class = {}
    for index in np.random.default_rng(seed).permutation(len(dataset_dicts)).tolist():
        by_class.setdefault(dataset_dicts[index]["class_id"], []).append(index)
    queues = [by_class[class_id] for class_id in sorted(by_class)]
    round_robin = [queue[turn] for turn in range(max(map(len, queues))) for queue in queues if turn < len(queue)]
    return sorted(round_robin[:num_images])


def _title(index: int, class_name: str, boxes: np.ndarray, record: dict) -> str:
    title = f"#{index} {class_name}: {len(boxes)} pseudo box{'es' if len(boxes) != 1 else ''}"
    quality = localisation_quality([boxes], [record])
    if quality is not None:
        title += f", best IoU {quality['mean_best_iou']:.2f}"
    return title


def save_pseudo_box_figure(
    panels: Sequence[np.ndarray], titles: Sequence[str], output_path: str, columns: int = 2, caption: str = ""
) -> None:
    """Write ``panels`` (RGB arrays) with their titles as a PNG grid, atomically (temp file + rename)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not panels or len(panels) != len(titles):
        raise ValueError(f"need at least one panel and one title per panel, got {len(panels)} panels and "
                         f"{len(titles)} titles")
    columns = min(columns, len(panels))
    rows = math.ceil(len(panels) / columns)
    panel_height, panel_width = panels[0].shape[:2]
    inches = 5.0 / panel_width  # each panel 5 inches wide
    figure, axes = plt.subplots(rows, columns, squeeze=False,
                                figsize=(columns * 5.0, rows * (panel_height * inches + 0.4) + 0.7))
    for axis in axes.flat:
        axis.axis("off")
    for axis, panel, title in zip(axes.flat, panels, titles):
        axis.imshow(panel)
        axis.set_title(title, fontsize=10)
    figure.suptitle(LEGEND + (f"\n{caption}" if caption else ""), fontsize=9)
    figure.tight_layout()
    try:
        save_figure_atomically(figure, output_path, dpi=100)
    finally:
        plt.close(figure)


def _caption(args: argparse.Namespace, options: PseudoBoxOptions) -> str:
    cams = f"CAM scales {'/'.join(map(str, options.scales))}, flip {options.flip}, resolution {options.resolution}"
    if args.boxes:
        return f"{args.dataset}; {cams}; boxes from {os.path.basename(args.boxes)}"
    thresholds = "/".join(f"{tau:g}" for tau in options.thresholds)
    return f"{args.dataset}; {cams}; thresholds {thresholds}, NMS IoU {options.nms_iou:g}"


def parse_args(argv: Sequence[str] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Figure of CAMs and pseudo boxes of a classification dataset (paper Fig. 6)",
        epilog=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config-file", required=True, help="LazyConfig of the classifier (its model)")
    parser.add_argument("--weights", required=True, help="classifier checkpoint")
    parser.add_argument("--allow-partial-weights", action="store_true",
                        help="run even if --weights leaves parameters of the classifier unloaded")
    parser.add_argument("--dataset", required=True, help="registered classification dataset")
    parser.add_argument("--output", required=True, help="PNG to write")
    parser.add_argument("--num-images", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0, help="which images are sampled")
    parser.add_argument("--columns", type=int, default=2, help="images per row of the figure")
    parser.add_argument("--boxes", help="COCO JSON of dap.generate_pseudo_boxes to draw instead of recomputing boxes")
    add_pseudo_box_arguments(parser)
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="key=value overrides of the config")
    return parser.parse_args(argv)


def main(argv: Sequence[str] = None) -> None:
    args = parse_args(argv)
    setup_logger(name="dap")
    options = options_from_args(args)
    model = load_classifier(args.config_file, args.weights, args.opts, args.allow_partial_weights)
    panels, titles = pseudo_box_panels(model, args.dataset, args.num_images, args.seed, options, args.boxes)
    save_pseudo_box_figure(panels, titles, args.output, args.columns, _caption(args, options))
    logger.info(f"Wrote {args.output}")


if __name__ == "__main__":
    main()
