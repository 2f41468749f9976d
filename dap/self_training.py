"""
Self-training pseudo-labels (paper Sec. 4, "Complementary to self-training", Table 9).

A detector fine-tuned on labelled data predicts on unlabelled images with horizontal-flip
test-time augmentation; its confident detections (score >= 0.6, or the image's best detection,
so that every image with any detection contributes a box) become the boxes of a COCO JSON. The
paper then fine-tunes for 2 more epochs on the labelled and the pseudo-labelled data together.

    python -m dap.self_training --config-file CFG --weights output/model_final.pth \\
        --dataset voc_2012_trainval --output output/pseudo_voc12.json

The test size is that of the config's test mapper (its ResizeShortestEdge); trailing
``key=value`` arguments override the config like in train_net.py. Only what the detector outputs
is seen: detections below its own test score threshold (e.g.
``model.roi_heads.box_predictor.test_score_thresh``) never reach the selection.

The JSON keeps the dataset's ``file_name`` of each image as is, so
``register_coco_instances(name, {}, json_file, image_root="")`` finds the images from the same
working directory as the source dataset did. Image ids are 1..N in dataset order; the dataset's
own id is kept as ``source_image_id``. Each annotation carries the detector's ``score``.
"""

import argparse
import json
import logging
import os
from typing import Dict, List, Sequence, Tuple

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import SequentialSampler
from tqdm import tqdm

import detectron2.data.transforms as T
from detectron2.config import CfgNode, instantiate
from detectron2.data import DatasetCatalog, MetadataCatalog, build_detection_test_loader
from detectron2.evaluation.evaluator import inference_context
from detectron2.layers import batched_nms
from detectron2.modeling import DatasetMapperTTA, GeneralizedRCNN, GeneralizedRCNNWithTTA
from detectron2.structures import Boxes, BoxMode, Instances
from detectron2.utils.logger import setup_logger

from projects.common.data import DetectionDatasetMapper, check_dataset_available
from projects.common.engine import load_config
from projects.common.io import write_json_atomically
from projects.common.weights import load_trained_weights

__all__ = [
    "FlipTTADetector",
    "merge_augmented_detections",
    "pseudo_label_dataset",
    "select_pseudo_labels",
    "resize_from_test_mapper",
]

logger = logging.getLogger(__name__)

# what a detector other than GeneralizedRCNN must have for FlipTTADetector (RetinaNet, FCOS)
DENSE_DETECTOR_ATTRIBUTES = ("num_classes", "test_nms_thresh", "max_detections_per_image", "input_format")


def select_pseudo_labels(instances: Instances, score_threshold: float = 0.6) -> Instances:
    """The detections kept as pseudo-labels: score >= ``score_threshold``, or the image's highest
    score (so an image with any detection keeps at least one). No detections -> none kept."""
    if len(instances) == 0:
        return instances
    keep = instances.scores >= score_threshold
    keep[instances.scores.argmax()] = True
    return instances[keep]


def merge_augmented_detections(
    view_instances: Sequence[Instances],
    view_transforms: Sequence[T.Transform],
    image_size: Tuple[int, int],
    nms_threshold: float,
    max_detections: int,
) -> Instances:
    """
    Detections of several augmented views of one image, as one set on the original image: each
    view's boxes are mapped back with the inverse of its transform (un-flipped, un-resized),
    clipped to ``image_size`` (height, width), merged per class by NMS at ``nms_threshold`` and
    the ``max_detections`` best kept, as a dense detector's own inference does for one view.
    The views' boxes are already clipped by the detector's postprocessing, so this NMS may
    remove a few more boxes than the detector's own (which runs before clipping).
    """
    boxes, scores, classes = [], [], []
    for instances, transform in zip(view_instances, view_transforms):
        instances = instances.to("cpu")
        original_boxes = transform.inverse().apply_box(instances.pred_boxes.tensor.numpy())
        boxes.append(torch.as_tensor(original_boxes, dtype=torch.float32).reshape(-1, 4))
        scores.append(instances.scores)
        classes.append(instances.pred_classes)
    merged_boxes = Boxes(torch.cat(boxes))
    merged_boxes.clip(image_size)
    scores, classes = torch.cat(scores), torch.cat(classes)
    keep = batched_nms(merged_boxes.tensor, scores, classes, nms_threshold)[:max_detections]
    return Instances(image_size, pred_boxes=merged_boxes[keep], scores=scores[keep], pred_classes=classes[keep])


class FlipTTADetector:
    """
    A detector's predictions on one image with (``flip=True``) horizontal-flip test-time
    augmentation, at one test size: the image resized to short side ``test_short_edge`` (long
    side <= ``max_size``) and its mirror, detections merged per class by NMS.

    GeneralizedRCNN models (Faster/Mask/Cascade R-CNN) go through detectron2's
    ``GeneralizedRCNNWithTTA`` with the model's own test NMS threshold and detections-per-image
    limit (masks are not predicted). Other detectors need ``num_classes``, ``test_nms_thresh``,
    ``max_detections_per_image`` and ``input_format`` (RetinaNet has them); their views are
    merged by ``merge_augmented_detections`` with those settings.
    """

    def __init__(self, model: nn.Module, test_short_edge: int, max_size: int, flip: bool = True):
        if isinstance(model, DistributedDataParallel):
            model = model.module
        for name, value in (("test_short_edge", test_short_edge), ("max_size", max_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int (pixels), got {value!r}")
        self.model = model
        self.flip = flip
        if isinstance(model, GeneralizedRCNN):
            self.num_classes = model.roi_heads.num_classes
            self._rcnn_tta = GeneralizedRCNNWithTTA(
                self._rcnn_tta_config(model, test_short_edge, max_size, flip), model, batch_size=2
            )
        else:
            missing = [name for name in DENSE_DETECTOR_ATTRIBUTES if not hasattr(model, name)]
            if missing:
                raise TypeError(
                    f"{type(model).__name__} has no {missing}: flip TTA supports GeneralizedRCNN "
                    f"models and detectors with {list(DENSE_DETECTOR_ATTRIBUTES)} (e.g. RetinaNet)"
                )
            self.num_classes = model.num_classes
            self._rcnn_tta = None
            self._tta_mapper = DatasetMapperTTA(min_sizes=[test_short_edge], max_size=max_size, flip=flip)

    @property
    def input_format(self) -> str:
        """Channel order the model expects ("BGR" or "RGB")."""
        return self.model.input_format

    @staticmethod
    def _rcnn_tta_config(model: GeneralizedRCNN, test_short_edge: int, max_size: int, flip: bool) -> CfgNode:
        """The yacs options GeneralizedRCNNWithTTA reads, taken from the built model."""
        box_predictor = model.roi_heads.box_predictor
        if isinstance(box_predictor, nn.ModuleList):  # Cascade R-CNN: the last stage's settings apply
            box_predictor = box_predictor[-1]
        return CfgNode(
            {
                "MODEL": {
                    "MASK_ON": False,
                    "KEYPOINT_ON": False,
                    "LOAD_PROPOSALS": False,
                    "ROI_HEADS": {
                        "NUM_CLASSES": model.roi_heads.num_classes,
                        "NMS_THRESH_TEST": box_predictor.test_nms_thresh,
                    },
                },
                "TEST": {
                    "DETECTIONS_PER_IMAGE": box_predictor.test_topk_per_image,
                    "AUG": {"MIN_SIZES": (test_short_edge,), "MAX_SIZE": max_size, "FLIP": flip},
                },
            }
        )

    def __call__(self, image: torch.Tensor) -> Instances:
        """Detections (on the CPU, in ``image``'s coordinates) of a (C, H, W) image in the
        model's ``input_format``, at its original size."""
        if image.ndim != 3 or image.shape[0] != 3:
            raise ValueError(f"expected a (3, H, W) image tensor, got shape {tuple(image.shape)}")
        height, width = image.shape[1:]
        original = {"image": image, "height": height, "width": width}
        with inference_context(self.model), torch.no_grad():
            if self._rcnn_tta is not None:
                return self._rcnn_tta([original])[0]["instances"].to("cpu")
            views = self._tta_mapper(original)
            outputs = self.model([{"image": view["image"]} for view in views])
        return merge_augmented_detections(
            [output["instances"] for output in outputs],
            [view["transforms"] for view in views],
            (height, width),
            self.model.test_nms_thresh,
            self.model.max_detections_per_image,
        )


def _coco_annotations(detections: Instances, image_id: int, first_annotation_id: int) -> List[dict]:
    """COCO annotations (XYWH boxes, category_id = contiguous id + 1) with the detector's score."""
    boxes_xywh = BoxMode.convert(detections.pred_boxes.tensor, BoxMode.XYXY_ABS, BoxMode.XYWH_ABS)
    return [
        {
            "id": first_annotation_id + index,
            "image_id": image_id,
            "category_id": class_id + 1,
            "bbox": box,
            "area": box[2] * box[3],
            "iscrowd": 0,
            "score": score,
        }
        for index, (box, class_id, score) in enumerate(
            zip(boxes_xywh.tolist(), detections.pred_classes.tolist(), detections.scores.tolist())
        )
    ]


def pseudo_label_dataset(
    model: nn.Module,
    dataset_name: str,
    output_json: str,
    test_short_edge: int,
    max_size: int,
    score_threshold: float = 0.6,
    flip: bool = True,
    *,
    num_workers: int = 2,
    overwrite: bool = False,
) -> Dict[str, float]:
    """
    Predict on every image of the registered dataset ``dataset_name`` (its annotations, if any,
    are ignored) with ``FlipTTADetector``, keep ``select_pseudo_labels`` and write them as a COCO
    JSON to ``output_json`` (atomically; an existing file is an error unless ``overwrite``).
    Categories are the dataset's ``thing_classes``, which must match the model's classes. All
    images are visited by this process, in dataset order.

    Returns ``{"images", "boxes", "boxes_per_image", "images_without_boxes"}``.
    """
    if not 0.0 <= score_threshold <= 1.0:
        raise ValueError(f"score_threshold must be within [0, 1], got {score_threshold}")
    if os.path.exists(output_json) and not overwrite:
        raise FileExistsError(
            f"{output_json} already exists: choose another output, or pass overwrite=True (--overwrite)"
        )
    check_dataset_available(dataset_name)
    dataset_dicts = DatasetCatalog.get(dataset_name)
    if not dataset_dicts:
        raise ValueError(f"dataset {dataset_name!r} has no images")
    thing_classes = MetadataCatalog.get(dataset_name).get("thing_classes")
    if thing_classes is None:
        raise ValueError(
            f"dataset {dataset_name!r} has no thing_classes in its metadata: set them with "
            f"MetadataCatalog.get({dataset_name!r}).set(thing_classes=[...])"
        )
    detector = FlipTTADetector(model, test_short_edge, max_size, flip)
    if detector.num_classes != len(thing_classes):
        raise ValueError(
            f"the model predicts {detector.num_classes} classes but dataset {dataset_name!r} has "
            f"{len(thing_classes)} thing_classes: use the detector fine-tuned on these classes"
        )
    loader = build_detection_test_loader(
        dataset_dicts,
        mapper=DetectionDatasetMapper(is_train=False, augmentations=[], image_format=detector.input_format),
        sampler=SequentialSampler(dataset_dicts),
        num_workers=num_workers,
    )
    images, annotations = [], []
    images_without_boxes = 0
    progress = tqdm(loader, total=len(dataset_dicts), desc=f"pseudo-labelling {dataset_name}", unit="image")
    for image_id, (record,) in enumerate(progress, start=1):
        height, width = record["image"].shape[1:]
        detections = select_pseudo_labels(detector(record["image"]), score_threshold)
        images_without_boxes += int(len(detections) == 0)
        images.append(
            {
                "id": image_id,
                "file_name": record["file_name"],
                "height": height,
                "width": width,
                "source_image_id": record.get("image_id"),
            }
        )
        annotations.extend(_coco_annotations(detections, image_id, first_annotation_id=len(annotations) + 1))
    coco = {
        "info": {
            "description": f"DAP self-training pseudo-labels of {dataset_name} (its annotations ignored)",
            "score_threshold": score_threshold,
            "flip": flip,
            "test_short_edge": test_short_edge,
            "max_size": max_size,
        },
        "images": images,
        "annotations": annotations,
        "categories": [{"id": index + 1, "name": name} for index, name in enumerate(thing_classes)],
    }
    write_json_atomically(output_json, coco)
    stats = {
        "images": len(images),
        "boxes": len(annotations),
        "boxes_per_image": len(annotations) / len(images),
        "images_without_boxes": images_without_boxes,
    }
    logger.info(f"Pseudo-labels of {dataset_name} written to {output_json}: {stats}")
    return stats


def resize_from_test_mapper(cfg) -> Tuple[int, int]:
    """(short edge, max size) of the ResizeShortestEdge in the config's test mapper."""
    augmentations = instantiate(list(cfg.dataloader.test.mapper.get("augmentations", [])))
    resizes = [aug for aug in augmentations if isinstance(aug, T.ResizeShortestEdge)]
    if len(resizes) != 1:
        raise ValueError(
            f"expected one ResizeShortestEdge in dataloader.test.mapper.augmentations, got "
            f"{augmentations}: pseudo-labelling takes its test size from there"
        )
    short_edges = set(resizes[0].short_edge_length)
    if len(short_edges) != 1:
        raise ValueError(
            f"the test ResizeShortestEdge has several short edges {sorted(short_edges)}; pick one, e.g. "
            f"dataloader.test.mapper.augmentations.0.short_edge_length={max(short_edges)}"
        )
    return short_edges.pop(), resizes[0].max_size


def build_argument_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config-file", required=True, help="LazyConfig of the fine-tuned detector")
    parser.add_argument("--weights", required=True, help="checkpoint of the fine-tuned detector")
    parser.add_argument("--dataset", required=True, help="registered dataset to pseudo-label")
    parser.add_argument("--output", required=True, help="COCO JSON to write")
    parser.add_argument("--score-threshold", type=float, default=0.6,
                        help="keep detections scoring at least this, plus each image's best (default 0.6)")
    parser.add_argument("--no-flip", action="store_true", help="predict without the flipped image")
    parser.add_argument("--num-workers", type=int, default=2, help="image loading processes")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides, key=value")
    return parser


def main(argv=None) -> Dict[str, float]:
    """The command line: build the detector of the config, load the weights, pseudo-label."""
    args = build_argument_parser().parse_args(argv)
    setup_logger(name="detectron2")
    setup_logger(name="dap")
    if "://" not in args.weights and not os.path.isfile(args.weights):
        raise FileNotFoundError(f"--weights {args.weights} does not exist: give the fine-tuned detector's checkpoint")
    cfg = load_config(args.config_file, args.opts)
    test_short_edge, max_size = resize_from_test_mapper(cfg)
    model = instantiate(cfg.model).to(cfg.train.device)
    load_trained_weights(model, args.weights)
    stats = pseudo_label_dataset(
        model,
        args.dataset,
        args.output,
        test_short_edge,
        max_size,
        score_threshold=args.score_threshold,
        flip=not args.no_flip,
        num_workers=args.num_workers,
        overwrite=args.overwrite,
    )
    print(f"Pseudo-labels written to {args.output}: {json.dumps(stats)}")
    return stats


if __name__ == "__main__":
    main()
