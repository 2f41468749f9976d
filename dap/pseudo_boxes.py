"""
DAP step 2 over a whole dataset (the library behind ``python -m dap.generate_pseudo_boxes``,
``python -m dap.visualize`` and ``benchmarks.dap_pseudo_boxes``): the pseudo-box options, the
classifier they read, and ``generate_pseudo_boxes``, which writes the CAM pseudo boxes of every
image of a classification dataset as a COCO-format detection JSON (register it with
``dap.register_pseudo_box_dataset``).

Generation runs on every rank of a (possibly single-process) detectron2 job: each rank takes
every world-size-th remaining image and appends its finished images to its own part file
``<output>.parts/rank<R>.jsonl`` after every batch (``projects.common.io.ResumableParts``), so a
killed run restarted with the same arguments (any number of processes) skips what is done and
loses at most the batches in flight; resuming with other settings is an error. When all images
are done, rank 0 writes the JSON atomically, then ``<output>.stats.json`` (boxes per image, mean
box size as in the paper's Table A1/A2, and the boxes' quality when the dataset has real boxes),
logs both, and removes the parts. A dataset whose classes are not the classifier's is refused
before anything is written.
"""

import argparse
import dataclasses
import logging
import os
from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch
from tabulate import tabulate
from tqdm import tqdm

from detectron2.config import instantiate
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data import detection_utils
from detectron2.utils import comm

from projects.common.data import check_dataset_available
from projects.common.data.mappers import naming_unreadable_image
from projects.common.engine import load_config
from projects.common.io import ResumableParts, refuse_to_overwrite, write_json_atomically
from projects.common.weights import load_trained_weights

from .cam import RESNET_CELL_ORIGIN, ClassActivationMapper
from .statistics import localisation_quality, pseudo_box_statistics

__all__ = [
    "LabelledImageReader",
    "PseudoBoxOptions",
    "add_pseudo_box_arguments",
    "format_statistics",
    "generate_pseudo_boxes",
    "load_classifier",
    "options_from_args",
]

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class PseudoBoxOptions:
    """Everything that decides the boxes of an image (see ``ClassActivationMapper``, ``boxes_from_cam``)."""

    scales: Tuple[int, ...] = (288, 576)
    flip: bool = True
    resolution: str = "feature"
    cell_origin: float = RESNET_CELL_ORIGIN
    thresholds: Tuple[float, ...] = (0.2, 0.3, 0.4, 0.5)
    nms_iou: float = 0.8
    min_area_ratio: float = 0.5
    connectivity: int = 4
    component_area: str = "pixels"
    weighting: str = "cam"
    max_components_per_threshold: int = 0

    def cam_mapper(self, model) -> ClassActivationMapper:
        return ClassActivationMapper(model, scales=self.scales, flip=self.flip, resolution=self.resolution,
                                     cell_origin=self.cell_origin)

    def box_arguments(self) -> dict:
        names = ("thresholds", "nms_iou", "min_area_ratio", "connectivity", "component_area", "weighting",
                 "max_components_per_threshold")
        return {name: getattr(self, name) for name in names}


def add_pseudo_box_arguments(parser: argparse.ArgumentParser) -> None:
    """Command-line options of ``PseudoBoxOptions`` (read back with ``options_from_args``), the
    same in every tool that makes pseudo boxes."""
    defaults = PseudoBoxOptions()
    parser.add_argument("--scales", type=int, nargs="+", default=list(defaults.scales), help="short sides")
    parser.add_argument("--no-flip", action="store_true", help="do not average with the mirrored image")
    parser.add_argument("--resolution", choices=("feature", "image"), default=defaults.resolution)
    parser.add_argument("--cell-origin", type=float, default=defaults.cell_origin,
                        help="input position of feature cell 0's centre (0.5 for ResNets; stride/2: the authors')")
    parser.add_argument("--thresholds", type=float, nargs="+", default=list(defaults.thresholds))
    parser.add_argument("--nms-iou", type=float, default=defaults.nms_iou, help="1 disables NMS")
    parser.add_argument("--min-area-ratio", type=float, default=defaults.min_area_ratio)
    parser.add_argument("--connectivity", type=int, choices=(4, 8), default=defaults.connectivity)
    parser.add_argument("--component-area", choices=("pixels", "rectangle"), default=defaults.component_area)
    parser.add_argument("--weighting", choices=("cam", "uniform"), default=defaults.weighting)
    parser.add_argument("--max-components", type=int, default=defaults.max_components_per_threshold,
                        help="per threshold, 0 = no limit")


def options_from_args(args: argparse.Namespace) -> PseudoBoxOptions:
    """The ``PseudoBoxOptions`` of the options ``add_pseudo_box_arguments`` added."""
    return PseudoBoxOptions(
        scales=tuple(args.scales), flip=not args.no_flip, resolution=args.resolution, cell_origin=args.cell_origin,
        thresholds=tuple(args.thresholds), nms_iou=args.nms_iou, min_area_ratio=args.min_area_ratio,
        connectivity=args.connectivity, component_area=args.component_area, weighting=args.weighting,
        max_components_per_threshold=args.max_components,
    )


def load_classifier(config_file: str, weights: str, opts: Sequence[str] = (), allow_partial_weights: bool = False):
    """The config's model (config by path or by name) on ``train.device`` in eval mode, with
    ``weights`` loaded; weights that leave parameters unloaded are refused unless allowed (boxes
    of a random network would look plausible)."""
    cfg = load_config(config_file, opts)
    model = instantiate(cfg.model).to(cfg.train.device).eval()  # launch() sets each rank's CUDA device
    load_trained_weights(model, weights, allow_partial=allow_partial_weights)
    return model


class LabelledImageReader(torch.utils.data.Dataset):
    """(dataset index, classifier input) pairs of the images of one shard."""

    def __init__(self, dataset_dicts: List[dict], indices: List[int], image_format: str):
        self.dataset_dicts, self.indices, self.image_format = dataset_dicts, indices, image_format

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, position):
        index = self.indices[position]
        record = self.dataset_dicts[index]
        with naming_unreadable_image(record["file_name"]):
            image = detection_utils.read_image(record["file_name"], format=self.image_format)
        tensor = torch.as_tensor(np.ascontiguousarray(image.transpose(2, 0, 1)))
        return index, {"image": tensor, "class_id": record["class_id"]}


def generate_pseudo_boxes(
    model,
    dataset_name: str,
    output_json: str,
    options: PseudoBoxOptions = PseudoBoxOptions(),
    batch_size: int = 16,
    num_workers: int = 2,
    run_identity: Dict = None,
    overwrite: bool = False,
) -> Dict:
    """
    Pseudo boxes of every image of ``dataset_name`` with the classifier ``model`` (eval mode),
    called on every rank of a (possibly single-process) job (see the module docstring). Returns
    the statistics on rank 0 ({} elsewhere). ``run_identity`` (e.g. config and weights) is stored
    with the settings so a resume with another model is refused.
    """
    refuse_to_overwrite(output_json, overwrite)
    check_dataset_available(dataset_name)
    dataset_dicts = DatasetCatalog.get(dataset_name)
    missing_labels = [record.get("file_name") for record in dataset_dicts if "class_id" not in record][:3]
    if missing_labels:
        raise ValueError(
            f"{dataset_name} has images without 'class_id' (e.g. {missing_labels}): pseudo boxes need "
            "a classification dataset (image-level labels)"
        )
    mapper = options.cam_mapper(model)  # checks the model and the CAM options
    class_names = _check_classes(dataset_name, dataset_dicts, model.fc.out_features)
    settings = {"dataset": dataset_name, "num_images": len(dataset_dicts), "options": dataclasses.asdict(options),
                "run": run_identity or {}}
    parts = ResumableParts(output_json, settings)
    if comm.is_main_process():
        parts.open()
    comm.synchronize()
    done = parts.finished_indices()  # read by every rank before any rank appends
    comm.synchronize()
    remaining = [index for index in range(len(dataset_dicts)) if index not in done]
    shard = remaining[comm.get_rank() :: comm.get_world_size()]
    if comm.is_main_process():
        logger.info(
            f"{dataset_name}: {len(dataset_dicts)} images, {len(done)} already done, {len(remaining)} to do "
            f"on {comm.get_world_size()} process(es)"
        )
    _process_shard(mapper, dataset_dicts, shard, options, batch_size, num_workers, parts)
    comm.synchronize()
    if not comm.is_main_process():
        return {}
    entries = parts.completed_records(len(dataset_dicts))
    if entries is None:
        raise RuntimeError(f"some images have no result in {parts.folder}: run again to finish them")
    image_root = MetadataCatalog.get(dataset_name).get("image_root") or os.path.commonpath(
        [os.path.dirname(record["file_name"]) for record in dataset_dicts]
    )
    write_json_atomically(output_json, _coco_json(dataset_dicts, entries, image_root, class_names, settings))
    boxes = [np.asarray(entry["boxes"], dtype=np.float64).reshape(-1, 4) for entry in entries]
    statistics = {"pseudo_boxes": pseudo_box_statistics(boxes)}
    quality = localisation_quality(boxes, dataset_dicts)
    if quality is not None:
        statistics["quality_vs_ground_truth"] = quality
    statistics_file = os.path.splitext(output_json)[0] + ".stats.json"
    write_json_atomically(statistics_file, {**statistics, "settings": settings})
    parts.remove()
    logger.info(f"Wrote {output_json} (image_root {image_root}) and {statistics_file}\n" + format_statistics(statistics))
    return statistics


def format_statistics(statistics: Dict) -> str:
    """The statistics as a two-column table."""
    rows = [(name, f"{value:.3f}" if isinstance(value, float) else value)
            for group in statistics.values() for name, value in group.items()]
    return tabulate(rows, headers=["pseudo boxes", "value"], tablefmt="pipe")


def _check_classes(dataset_name: str, dataset_dicts: List[dict], classifier_classes: int) -> List[str]:
    """The dataset's class names; an error, before anything is written, unless they can be the
    classifier's: the CAM of class c is the classifier's output c."""
    class_names = MetadataCatalog.get(dataset_name).get("thing_classes")
    largest_id = max((record["class_id"] for record in dataset_dicts), default=-1)
    if class_names is None or len(class_names) != classifier_classes or largest_id >= classifier_classes:
        count = "no thing_classes" if class_names is None else f"{len(class_names)} classes"
        raise ValueError(
            f"{dataset_name} has {count} (class ids up to {largest_id}) but the classifier has "
            f"{classifier_classes}: the CAM of class c is the classifier's output c, so use the "
            f"classifier trained on {dataset_name} (--config-file and --weights), or a dataset "
            "labelled with the classifier's classes in its order"
        )
    return list(class_names)


def _process_shard(mapper, dataset_dicts, shard, options, batch_size, num_workers, parts: ResumableParts) -> None:
    """Pseudo boxes of the images of ``shard``, appended to this rank's part file batch by batch."""
    loader = torch.utils.data.DataLoader(
        LabelledImageReader(dataset_dicts, shard, getattr(mapper.model, "input_format", "BGR")),
        batch_size=batch_size, num_workers=num_workers, collate_fn=lambda batch: batch,
    )
    box_arguments = options.box_arguments()
    progress = tqdm(total=len(shard), desc="pseudo boxes", unit="img", disable=not comm.is_main_process())
    # full batches: one flush per batch, so a kill loses at most the batch in flight
    with parts.writer(f"rank{comm.get_rank()}", flush_every=batch_size) as part:
        for batch in loader:
            indices, inputs = zip(*batch)
            for index, cam in zip(indices, mapper(list(inputs))):
                height, width = cam.image_size
                part.add({"index": index, "height": height, "width": width,
                          "boxes": np.round(cam.pseudo_boxes(**box_arguments), 2).tolist()})
            progress.update(len(batch))
    progress.close()


def _coco_json(dataset_dicts, entries, image_root, class_names, settings) -> Dict:
    images, annotations = [], []
    for index, (record, entry) in enumerate(zip(dataset_dicts, entries)):
        image_id = index + 1
        images.append({
            "id": image_id,
            "file_name": os.path.relpath(record["file_name"], image_root),
            "height": entry["height"],
            "width": entry["width"],
            "class_id": record["class_id"],
        })
        for x0, y0, x1, y1 in entry["boxes"]:
            annotations.append({
                "id": len(annotations) + 1,
                "image_id": image_id,
                "category_id": record["class_id"] + 1,
                "bbox": [x0, y0, round(x1 - x0, 2), round(y1 - y0, 2)],
                "area": round((x1 - x0) * (y1 - y0), 2),
                "iscrowd": 0,
            })
    categories = [{"id": i + 1, "name": name} for i, name in enumerate(class_names)]
    info = {"description": "DAP CAM pseudo boxes", "image_root": image_root, "settings": settings}
    return {"info": info, "images": images, "annotations": annotations, "categories": categories}
