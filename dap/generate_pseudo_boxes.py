"""
Step 2 over a whole dataset: CAM pseudo boxes of every image of a classification dataset,
written as a COCO-format detection JSON (register it with ``dap.register_pseudo_box_dataset``).

    python -m dap.generate_pseudo_boxes --config-file configs/dap/synthetic_classifier_cpu.py \\
        --weights output/dap/classifier/model_final.pth --dataset synthetic_shapes_cls_train \\
        --output output/dap/pseudo_boxes.json [--num-gpus 8] [--num-machines 2 --machine-rank R ...]

Work is sharded over processes and machines with detectron2's ``launch`` (each rank takes
every world-size-th remaining image). Each rank appends finished images to its own
``<output>.parts/rank<R>.jsonl`` after every batch, so a killed run restarted with the same
command (any number of processes) skips what is done and loses at most the batches in flight.
The settings are stored next to the parts; resuming with other settings is an error. When all
images are done, rank 0 writes the JSON atomically, then ``<output>.stats.json`` (boxes per
image, mean box size as in the paper's Table A1/A2, and the boxes' quality when the dataset has
real boxes), prints both, and removes the parts.
"""

import argparse
import dataclasses
import json
import logging
import os
import shutil
from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch
from tabulate import tabulate
from tqdm import tqdm

from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import instantiate
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data import detection_utils
from detectron2.engine import launch
from detectron2.utils import comm
from detectron2.utils.logger import setup_logger

from projects.common.data import check_dataset_available
from projects.common.io import drop_partial_line, read_jsonl_parts, write_json_atomically

from .boxes import boxes_from_cam
from .cam import RESNET_CELL_ORIGIN, ClassActivationMapper
from .statistics import localisation_quality, pseudo_box_statistics

__all__ = ["PseudoBoxOptions", "add_pseudo_box_arguments", "generate_pseudo_boxes", "load_classifier", "main", "options_from_args"]

logger = logging.getLogger("dap.generate_pseudo_boxes")  # also when run as __main__


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


class LabelledImageReader(torch.utils.data.Dataset):
    """(dataset index, classifier input) pairs of the images of one shard."""

    def __init__(self, dataset_dicts: List[dict], indices: List[int], image_format: str):
        self.dataset_dicts, self.indices, self.image_format = dataset_dicts, indices, image_format

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, position):
        index = self.indices[position]
        record = self.dataset_dicts[index]
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
    called on every rank of a (possibly single-process) job. Returns the statistics on rank 0
    ({} elsewhere). ``run_identity`` (e.g. config and weights) is stored with the settings so a
    resume with another model is refused.
    """
    if os.path.exists(output_json) and not overwrite:
        raise FileExistsError(f"{output_json} exists: pass --overwrite to replace it, or choose another --output")
    check_dataset_available(dataset_name)
    dataset_dicts = DatasetCatalog.get(dataset_name)
    missing_labels = [record.get("file_name") for record in dataset_dicts if "class_id" not in record][:3]
    if missing_labels:
        raise ValueError(
            f"{dataset_name} has images without 'class_id' (e.g. {missing_labels}): pseudo boxes need "
            "a classification dataset (image-level labels)"
        )
    parts_dir = output_json + ".parts"
    settings = {"dataset": dataset_name, "num_images": len(dataset_dicts), "options": dataclasses.asdict(options),
                "run": run_identity or {}}
    if comm.is_main_process():
        _prepare_parts_dir(parts_dir, settings)
    comm.synchronize()
    done = _finished_indices(parts_dir)  # read by every rank before any rank appends
    comm.synchronize()
    remaining = [index for index in range(len(dataset_dicts)) if index not in done]
    shard = remaining[comm.get_rank() :: comm.get_world_size()]
    if comm.is_main_process():
        logger.info(
            f"{dataset_name}: {len(dataset_dicts)} images, {len(done)} already done, {len(remaining)} to do "
            f"on {comm.get_world_size()} process(es)"
        )
    _process_shard(model, dataset_dicts, shard, options, batch_size, num_workers,
                   os.path.join(parts_dir, f"rank{comm.get_rank()}.jsonl"))
    comm.synchronize()
    if not comm.is_main_process():
        return {}
    entries = _collect_parts(parts_dir, len(dataset_dicts))
    image_root = MetadataCatalog.get(dataset_name).get("image_root") or os.path.commonpath(
        [os.path.dirname(record["file_name"]) for record in dataset_dicts]
    )
    class_names = MetadataCatalog.get(dataset_name).thing_classes
    write_json_atomically(output_json, _coco_json(dataset_dicts, entries, image_root, class_names, settings))
    boxes = [np.asarray(entry["boxes"], dtype=np.float64).reshape(-1, 4) for entry in entries]
    statistics = {"pseudo_boxes": pseudo_box_statistics(boxes)}
    quality = localisation_quality(boxes, dataset_dicts)
    if quality is not None:
        statistics["quality_vs_ground_truth"] = quality
    statistics_file = os.path.splitext(output_json)[0] + ".stats.json"
    write_json_atomically(statistics_file, {**statistics, "settings": settings})
    shutil.rmtree(parts_dir)
    logger.info(f"Wrote {output_json} (image_root {image_root}) and {statistics_file}\n" + format_statistics(statistics))
    return statistics


def format_statistics(statistics: Dict) -> str:
    """The statistics as a two-column table."""
    rows = [(name, f"{value:.3f}" if isinstance(value, float) else value)
            for group in statistics.values() for name, value in group.items()]
    return tabulate(rows, headers=["pseudo boxes", "value"], tablefmt="pipe")


def _prepare_parts_dir(parts_dir: str, settings: Dict) -> None:
    """Create the parts folder with its settings, or check that an existing one (resume) matches."""
    settings_file = os.path.join(parts_dir, "settings.json")
    if os.path.isdir(parts_dir):
        with open(settings_file) as f:
            previous = json.load(f)
        if previous != json.loads(json.dumps(settings)):
            raise ValueError(
                f"{parts_dir} holds an interrupted run with other settings ({previous}); resume with the "
                f"same arguments, or delete {parts_dir} to start over"
            )
        return
    os.makedirs(parts_dir)
    write_json_atomically(settings_file, settings)


def _finished_indices(parts_dir: str) -> set:
    return {entry["index"] for entry in read_jsonl_parts(parts_dir)}


def _process_shard(model, dataset_dicts, shard, options, batch_size, num_workers, part_file) -> None:
    drop_partial_line(part_file)
    mapper = options.cam_mapper(model)
    loader = torch.utils.data.DataLoader(
        LabelledImageReader(dataset_dicts, shard, getattr(model, "input_format", "BGR")),
        batch_size=batch_size, num_workers=num_workers, collate_fn=lambda batch: batch,
    )
    box_arguments = options.box_arguments()
    progress = tqdm(total=len(shard), desc="pseudo boxes", unit="img", disable=not comm.is_main_process())
    with open(part_file, "a") as part:
        for batch in loader:
            indices, inputs = zip(*batch)
            lines = []
            for index, cam in zip(indices, mapper(list(inputs))):
                image_boxes = cam.to_image_boxes(boxes_from_cam(cam.cam, **box_arguments))
                height, width = cam.image_size
                lines.append(json.dumps({"index": index, "height": height, "width": width,
                                         "boxes": np.round(image_boxes, 2).tolist()}) + "\n")
            part.write("".join(lines))
            part.flush()
            os.fsync(part.fileno())
            progress.update(len(batch))
    progress.close()


def _collect_parts(parts_dir: str, num_images: int) -> List[Dict]:
    entries = {}
    for entry in read_jsonl_parts(parts_dir):
        entries.setdefault(entry["index"], entry)  # a duplicate can only repeat the same result
    missing = sorted(set(range(num_images)) - set(entries))
    if missing:
        raise RuntimeError(f"{len(missing)} images have no result in {parts_dir} (e.g. {missing[:5]}): run again to finish them")
    return [entries[index] for index in range(num_images)]


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


def add_pseudo_box_arguments(parser: argparse.ArgumentParser) -> None:
    """Command-line options of ``PseudoBoxOptions`` (read back with ``options_from_args``)."""
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


def parse_args(argv: Sequence[str] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="CAM pseudo boxes of a classification dataset -> COCO JSON (DAP step 2)",
        epilog=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config-file", required=True, help="LazyConfig of the classifier (its model)")
    parser.add_argument("--weights", required=True, help="classifier checkpoint (path, URL or detectron2://)")
    parser.add_argument("--dataset", required=True, help="registered classification dataset, e.g. imagenet_train")
    parser.add_argument("--output", required=True, help="COCO JSON to write")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    parser.add_argument("--batch-size", type=int, default=16, help="images per forward, per process")
    parser.add_argument("--num-workers", type=int, default=2, help="image-reading workers per process")
    add_pseudo_box_arguments(parser)
    parser.add_argument("--num-gpus", type=int, default=1, help="processes per machine (GPUs, or CPU processes)")
    parser.add_argument("--num-machines", type=int, default=1)
    parser.add_argument("--machine-rank", type=int, default=0)
    parser.add_argument("--dist-url", default="auto", help="tcp://HOST:PORT of machine 0 (auto: one machine)")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="key=value overrides of the config")
    return parser.parse_args(argv)


def options_from_args(args: argparse.Namespace) -> PseudoBoxOptions:
    return PseudoBoxOptions(
        scales=tuple(args.scales), flip=not args.no_flip, resolution=args.resolution, cell_origin=args.cell_origin,
        thresholds=tuple(args.thresholds), nms_iou=args.nms_iou, min_area_ratio=args.min_area_ratio,
        connectivity=args.connectivity, component_area=args.component_area, weighting=args.weighting,
        max_components_per_threshold=args.max_components,
    )


def load_classifier(config_file: str, weights: str, opts: Sequence[str] = ()):
    """The config's model on ``train.device`` in eval mode, with ``weights`` loaded."""
    from train_net import load_config  # the launcher's config loading (clear errors, overrides)

    cfg = load_config(config_file, opts)
    model = instantiate(cfg.model).to(cfg.train.device).eval()  # launch() sets each rank's CUDA device
    DetectionCheckpointer(model).load(weights)
    return model


def _worker(args: argparse.Namespace) -> Dict:
    setup_logger(name="dap", distributed_rank=comm.get_rank())
    setup_logger(name="detectron2", distributed_rank=comm.get_rank())
    model = load_classifier(args.config_file, args.weights, args.opts)
    run_identity = {"config_file": os.path.abspath(args.config_file), "opts": list(args.opts),
                    "weights": args.weights}
    return generate_pseudo_boxes(
        model, args.dataset, args.output, options_from_args(args), batch_size=args.batch_size,
        num_workers=args.num_workers, run_identity=run_identity, overwrite=args.overwrite,
    )


def main(argv: Sequence[str] = None) -> None:
    args = parse_args(argv)
    launch(_worker, args.num_gpus, num_machines=args.num_machines, machine_rank=args.machine_rank,
           dist_url=args.dist_url, args=(args,))


if __name__ == "__main__":
    main()
