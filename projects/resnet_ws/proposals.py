"""
Object proposals for ResNet-WS (WSDDN / OICR train and test on precomputed boxes), written as
detectron2 proposal files: a pickle with ``"ids"`` (the dataset dicts' ``image_id``), ``"boxes"``
(one (N, 4) float32 XYXY_ABS array per image), ``"objectness_logits"`` (one (N,) float32 array)
and ``"bbox_mode"``. ``detectron2.data.get_detection_dataset_dicts(names, proposal_files=[...])``
reads it with ``load_proposals_into_dataset`` (images matched by ``str(image_id)``; each image's
boxes sorted by decreasing objectness) and ``DatasetMapper(precomputed_proposal_topk=K)`` keeps
the first K. One file may serve several datasets: ids of other datasets are ignored on loading.

    # Selective Search (OpenCV contrib) over registered datasets: resumable, parallel
    python -m projects.resnet_ws.proposals --dataset voc_2007_trainval --output ss_voc07.pkl \\
        [--mode fast] [--max-proposals 4000] [--num-workers 8] [--num-shards 4 --shard-index K]
    # published .mat files (Fast R-CNN's Selective Search, MCG) -> the same pickle
    python -m projects.resnet_ws.proposals convert --format ss --input voc_2007_trainval.mat \\
        --dataset voc_2007_trainval --output ss_voc07.pkl
    # PNGs of the top proposals (and the real boxes) of a few images
    python -m projects.resnet_ws.proposals visualize --proposals ss_voc07.pkl \\
        --dataset voc_2007_trainval --output-dir ss_pictures [--num-images 4 --top 20]

Generation runs Selective Search in ``--num-workers`` processes of this machine (multiprocessing;
OpenCV itself uses ``--opencv-threads`` threads in each). Several machines sharing the output
folder each run the same command with ``--num-shards S --shard-index K`` and take the images
with dataset index % S == K: the images are independent, so static shards need no process group
(detectron2's ``launch`` would need one, and a rendez-vous address, for nothing). Every process
appends its finished images to its own ``<output>.parts/<host>-<pid>.jsonl``, flushed and
fsynced every ``--flush-every`` images, so a killed run restarted with the same command (any
number of workers or shards) skips what any run finished and loses at most the unflushed images.
The settings that decide the boxes are stored in ``<output>.parts/settings.json``; resuming with
others is refused. The run that finds every image done writes the pickle atomically, logs the
statistics (boxes per image; recall at IoU 0.5 / 0.7 and mean best IoU when the datasets have
real boxes) and removes the parts.
"""

import argparse
import ctypes
import dataclasses
import hashlib
import json
import logging
import multiprocessing
import os
import pickle
import shutil
import socket
import sys
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import scipy.io
import torch
from tqdm import tqdm

from detectron2.data import DatasetCatalog
from detectron2.data import detection_utils
from detectron2.data.build import load_proposals_into_dataset
from detectron2.structures import Boxes, BoxMode, pairwise_iou
from detectron2.utils.logger import setup_logger
from detectron2.utils.visualizer import Visualizer

# JSONL part files handled as by DAP's generator (candidates for projects.common.io)
from projects.common.data import check_dataset_available
from projects.common.io import atomic_output, drop_partial_line, read_jsonl_parts, write_json_atomically

__all__ = [
    "SELECTIVE_SEARCH_MODES",
    "ProposalOptions",
    "convert_mcg_mats",
    "convert_selective_search_mat",
    "draw_proposals",
    "format_statistics",
    "generate_proposals",
    "load_image_records",
    "main",
    "matlab_boxes_to_xyxy",
    "proposal_statistics",
    "rank_scores",
    "save_proposal_pictures",
    "selective_search",
    "write_proposal_file",
]

logger = logging.getLogger("projects.resnet_ws.proposals")  # also when run as __main__

SELECTIVE_SEARCH_MODES = ("fast", "quality")
RECALL_IOU_THRESHOLDS = (0.5, 0.7)
PROPOSAL_COLOUR = "magenta"
GROUND_TRUTH_COLOUR = "lime"
DISPLAY_SHORT_SIDE = 512  # small images are enlarged in pictures so that boxes stay legible


# ---------------------------------------------------------------------------------------------
# Selective Search of one image


def selective_search(
    image_bgr: np.ndarray,
    mode: str = "fast",
    max_proposals: int = 4000,
    min_size: float = 2.0,
    max_image_size: int = 0,
    seed: int = 0,
    num_threads: Optional[int] = None,
) -> Tuple[np.ndarray, np.ndarray]:
    """
    Selective Search boxes of one image (OpenCV contrib's ``SelectiveSearchSegmentation``), in
    OpenCV's ranking.

    Args:
        image_bgr: (H, W, 3) uint8 image in BGR order (as read by OpenCV or ``read_image``).
        mode: "fast" or "quality", OpenCV's ``switchToSelectiveSearchFast`` / ``...Quality``
            (the "fast" setting is the one of the Selective Search files of Fast R-CNN).
        max_proposals: keep the first this many boxes (after the two filters below); 0 keeps all.
        min_size: drop boxes narrower or lower than this (pixels of ``image_bgr``).
        max_image_size: when > 0 and the image's long side is longer, segment a copy resized
            (INTER_AREA) so that its long side is ``max_image_size`` and scale the boxes back to
            ``image_bgr``: much faster on large images (the cost grows with the pixel count), at
            the price of coarser boxes (coordinates on the resized image's grid).
        seed: OpenCV ranks the regions with C ``rand()`` (hierarchy level times a random number,
            as in Uijlings et al.); it is seeded with ``srand(seed)`` (POSIX C library) before
            the image so that the order is reproducible. The set of boxes does not depend on it.
        num_threads: when given, ``cv2.setNumThreads(num_threads)`` first (process-wide).

    Returns:
        boxes: (N, 4) float32 XYXY in pixels of ``image_bgr`` with x2 = x + w, y2 = y + h
            (detectron2's convention), in OpenCV's order, repeated boxes removed (first kept).
        scores: (N,) float32 ``rank_scores(N)``, strictly decreasing, so that sorting by score
            (what detectron2 does with objectness_logits) keeps OpenCV's order.
    """
    if mode not in SELECTIVE_SEARCH_MODES:
        raise ValueError(f"mode must be one of {SELECTIVE_SEARCH_MODES}, got {mode!r}")
    image_bgr = np.asarray(image_bgr)
    if image_bgr.ndim != 3 or image_bgr.shape[2] != 3 or image_bgr.dtype != np.uint8:
        raise ValueError(f"image_bgr must be an (H, W, 3) uint8 BGR image, got {image_bgr.dtype} {image_bgr.shape}")
    if num_threads is not None:
        cv2.setNumThreads(num_threads)
    height, width = image_bgr.shape[:2]
    scale = max_image_size / max(height, width) if 0 < max_image_size < max(height, width) else 1.0
    segmented = image_bgr
    if scale != 1.0:
        resized_size = (max(1, round(width * scale)), max(1, round(height * scale)))
        segmented = cv2.resize(image_bgr, resized_size, interpolation=cv2.INTER_AREA)
    search = cv2.ximgproc.segmentation.createSelectiveSearchSegmentation()
    search.setBaseImage(segmented)
    if mode == "fast":
        search.switchToSelectiveSearchFast()
    else:
        search.switchToSelectiveSearchQuality()
    ctypes.CDLL(None).srand(seed)
    rectangles = np.asarray(search.process(), dtype=np.float64).reshape(-1, 4)  # x, y, w, h
    boxes = np.concatenate([rectangles[:, :2], rectangles[:, :2] + rectangles[:, 2:]], axis=1)
    boxes *= [width / segmented.shape[1], height / segmented.shape[0]] * 2
    boxes = boxes.astype(np.float32)
    _, first_occurrences = np.unique(boxes, axis=0, return_index=True)
    boxes = boxes[np.sort(first_occurrences)]
    boxes = boxes[(boxes[:, 2] - boxes[:, 0] >= min_size) & (boxes[:, 3] - boxes[:, 1] >= min_size)]
    if max_proposals > 0:
        boxes = boxes[:max_proposals]
    return boxes, rank_scores(len(boxes))


def rank_scores(num_boxes: int) -> np.ndarray:
    """
    Objectness of boxes known only by their rank: (N - rank) / N, i.e. 1 for the first box down
    to 1/N for the last (float32, strictly decreasing for N < 2**24). Not a probability: it only
    orders the boxes, in (0, 1] like a score (the authors weight RoI features by score + 1).
    """
    return ((num_boxes - np.arange(num_boxes)) / max(num_boxes, 1)).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Proposal files and their quality


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


# ---------------------------------------------------------------------------------------------
# Datasets


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


def _file_stem(record: dict) -> str:
    return os.path.splitext(os.path.basename(record["file_name"]))[0]


def _records_by_stem(records: Sequence[dict]) -> Dict[str, dict]:
    by_stem = {}
    for record in records:
        stem = _file_stem(record)
        if stem in by_stem:
            raise ValueError(
                f"two images of the datasets have the file name stem {stem!r} ({by_stem[stem]['file_name']}, "
                f"{record['file_name']}): .mat proposals name images by stem, convert one dataset at a time"
            )
        by_stem[stem] = record
    return by_stem


# ---------------------------------------------------------------------------------------------
# Generation over datasets


@dataclasses.dataclass(frozen=True)
class ProposalOptions:
    """Everything that decides the boxes of an image (the arguments of ``selective_search``)."""

    mode: str = "fast"
    max_proposals: int = 4000
    min_size: float = 2.0
    max_image_size: int = 0
    seed: int = 0

    def __post_init__(self):
        if self.mode not in SELECTIVE_SEARCH_MODES:
            raise ValueError(f"mode must be one of {SELECTIVE_SEARCH_MODES}, got {self.mode!r}")
        if self.max_proposals < 0 or self.min_size < 0 or self.max_image_size < 0:
            raise ValueError(f"max_proposals, min_size and max_image_size must be >= 0 (0: no limit), got {self}")


def generate_proposals(
    dataset_names: Sequence[str],
    output: str,
    options: ProposalOptions = ProposalOptions(),
    num_workers: int = 1,
    opencv_threads: int = 1,
    num_shards: int = 1,
    shard_index: int = 0,
    flush_every: int = 16,
    max_images: int = 0,
    overwrite: bool = False,
) -> Optional[Dict[str, float]]:
    """
    Selective Search proposals of every image of ``dataset_names`` into the proposal pickle
    ``output`` (see the module docstring for resuming and sharding).

    Args:
        num_workers: processes on this machine; <= 1 runs in this process.
        opencv_threads: ``cv2.setNumThreads`` of each process.
        num_shards, shard_index: this run does the images whose index % num_shards == shard_index.
        flush_every: images per append to the part file (what a kill can lose).
        max_images: only the first this many images when > 0.

    Returns:
        ``proposal_statistics`` of the written file, or None when images of other shards are
        not finished yet (the last run to finish writes the file).
    """
    _refuse_existing(output, overwrite)
    if not 0 <= shard_index < num_shards:
        raise ValueError(
            f"--shard-index must be in [0, {num_shards - 1}] for --num-shards {num_shards}, got {shard_index}"
        )
    if flush_every < 1:
        raise ValueError(f"flush_every must be >= 1, got {flush_every}")
    records = load_image_records(dataset_names, max_images)
    parts_dir = output + ".parts"
    images = hashlib.sha1("\n".join(f"{r['image_id']}\t{r['file_name']}" for r in records).encode()).hexdigest()
    settings = {"datasets": list(dataset_names), "max_images": max_images, "num_images": len(records),
                "images_sha1": images, "options": dataclasses.asdict(options)}
    _open_parts_dir(parts_dir, settings)
    done = {entry["index"] for entry in read_jsonl_parts(parts_dir)}
    todo = [index for index in range(shard_index, len(records), num_shards) if index not in done]
    logger.info(f"{'+'.join(dataset_names)}: {len(records)} images, {len(done)} already done, {len(todo)} to do "
                f"in shard {shard_index}/{num_shards} with {max(num_workers, 1)} process(es)")
    if todo:
        part_file = os.path.join(parts_dir, f"{socket.gethostname()}-{os.getpid()}.jsonl")
        tasks = [(index, _image_fields(records[index]), options) for index in todo]
        _write_part(_image_proposals(tasks, num_workers, opencv_threads), part_file, len(tasks), flush_every)
    boxes_by_index = {}
    for entry in read_jsonl_parts(parts_dir):
        boxes_by_index.setdefault(entry["index"], entry["boxes"])  # a repeat can only hold the same boxes
    missing = len(records) - len(boxes_by_index)
    if missing:
        logger.info(f"shard {shard_index}/{num_shards} is done; {missing} images of other shards are not: the run "
                    f"that finishes last writes {output} (or run this command again once they are done)")
        return None
    boxes = [np.asarray(boxes_by_index[index], dtype=np.float32).reshape(-1, 4) for index in range(len(records))]
    write_proposal_file(output, [record["image_id"] for record in records], boxes, [rank_scores(len(b)) for b in boxes])
    shutil.rmtree(parts_dir)
    statistics = proposal_statistics(boxes, records)
    logger.info(f"Wrote {output}\n{format_statistics(statistics)}")
    return statistics


def _open_parts_dir(parts_dir: str, settings: dict) -> None:
    """Create the parts folder with its settings, or check that an existing one (resume) matches;
    safe when runs of several shards start at once."""
    settings_file = os.path.join(parts_dir, "settings.json")
    os.makedirs(parts_dir, exist_ok=True)
    if not os.path.exists(settings_file):
        write_json_atomically(settings_file, settings, indent=1)
    with open(settings_file) as f:
        previous = json.load(f)
    settings = json.loads(json.dumps(settings))
    if previous != settings:
        differing = {key: f"{previous.get(key)} there, {settings.get(key)} now"
                     for key in sorted(set(previous) | set(settings)) if previous.get(key) != settings.get(key)}
        raise ValueError(
            f"{parts_dir} holds an interrupted run with other settings ({differing}): resume with the same "
            f"arguments, or delete {parts_dir} to start over"
        )


def _image_proposals(tasks: Sequence[tuple], num_workers: int, opencv_threads: int) -> Iterator[Tuple[int, np.ndarray]]:
    """(index, boxes) of every task, computed in this process or in ``num_workers`` processes."""
    if num_workers <= 1:
        cv2.setNumThreads(opencv_threads)
        yield from map(_proposals_of_image, tasks)
        return
    with multiprocessing.Pool(num_workers, initializer=cv2.setNumThreads, initargs=(opencv_threads,)) as pool:
        yield from pool.imap_unordered(_proposals_of_image, tasks)


def _image_fields(record: dict) -> dict:
    """What a worker needs of a dataset dict (not its annotations)."""
    return {key: record[key] for key in ("file_name", "height", "width") if key in record}


def _proposals_of_image(task: Tuple[int, dict, ProposalOptions]) -> Tuple[int, np.ndarray]:
    index, record, options = task
    image = detection_utils.read_image(record["file_name"], format="BGR")
    detection_utils.check_image_size(record, image)  # boxes must be in the dataset's pixels
    boxes, _ = selective_search(image, **dataclasses.asdict(options))
    return index, boxes


def _write_part(results: Iterator[Tuple[int, np.ndarray]], part_file: str, total: int, flush_every: int) -> None:
    """Append one JSON line per image to ``part_file``, flushed and fsynced every ``flush_every`` images."""
    drop_partial_line(part_file)  # a killed run of the same host and pid left it unfinished
    pending = []
    with open(part_file, "a") as part, tqdm(total=total, desc="selective search", unit="img") as progress:
        for index, boxes in results:
            pending.append(json.dumps({"index": index, "boxes": boxes.tolist()}) + "\n")
            progress.update()
            if len(pending) == flush_every or progress.n == total:
                part.write("".join(pending))
                part.flush()
                os.fsync(part.fileno())
                pending = []


# ---------------------------------------------------------------------------------------------
# Conversion of published .mat proposals


def matlab_boxes_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    """
    (N, 4) MATLAB boxes [y1 x1 y2 x2], 1-based inclusive pixel indices (Selective Search and MCG
    files) -> float32 [x1 y1 x2 y2] in detectron2's convention: [x1 - 1, y1 - 1, x2, y2], the
    conversion detectron2 applies to PASCAL VOC's 1-based boxes (a box over pixels 1..W spans
    0..W). Fast R-CNN subtracts 1 from all four (inclusive 0-based), i.e. boxes 1 px smaller.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    y1, x1, y2, x2 = boxes.T
    return np.stack([x1 - 1, y1 - 1, x2, y2], axis=1).astype(np.float32)


def convert_selective_search_mat(
    mat_file: str, dataset_names: Sequence[str], output: str, overwrite: bool = False
) -> Dict[str, float]:
    """
    A Selective Search file of Fast R-CNN (``data/selective_search_data/voc_2007_trainval.mat``:
    cell arrays ``images``, the image names, and ``boxes``, per image an (N, 4) array [y1 x1 y2
    x2] 1-based, as read by Fast R-CNN's ``pascal_voc._load_selective_search_roidb`` with
    ``loadmat(...)['boxes'].ravel()``, ``[:, (1, 0, 3, 2)] - 1``) -> proposal pickle ``output``
    for the images of ``dataset_names``, matched by file name stem, ids = their ``image_id``.
    All boxes are kept in the file's order (no filtering), with ``rank_scores`` as objectness.
    Returns ``proposal_statistics``.
    """
    _refuse_existing(output, overwrite)
    content = _load_mat(mat_file, ("images", "boxes"))
    names = [_mat_string(value, mat_file) for value in content["images"].ravel()]
    box_arrays = content["boxes"].ravel()
    if len(names) != len(box_arrays):
        raise ValueError(f"{mat_file} has {len(names)} images but {len(box_arrays)} box arrays")
    boxes_by_stem = dict(zip(names, box_arrays))
    if len(boxes_by_stem) != len(names):
        raise ValueError(f"{mat_file} lists some images twice in 'images'")
    records = load_image_records(dataset_names)
    by_stem = _records_by_stem(records)
    _check_all_found([stem for stem in by_stem if stem not in boxes_by_stem], f"{mat_file} ('images')", dataset_names)
    left_out = len(boxes_by_stem) - len(by_stem)
    if left_out:
        logger.info(f"{left_out} images of {mat_file} are not in {list(dataset_names)}: left out")
    boxes = [matlab_boxes_to_xyxy(boxes_by_stem[stem]) for stem in by_stem]
    return _write_converted(output, records, boxes, [rank_scores(len(b)) for b in boxes])


def convert_mcg_mats(
    mat_dir: str, dataset_names: Sequence[str], output: str, overwrite: bool = False
) -> Dict[str, float]:
    """
    MCG proposals as published per image (``<mat_dir>/<image file stem>.mat`` with ``boxes``,
    (N, 4) [y1 x1 y2 x2] 1-based, and ``scores``, (N, 1); e.g. MCG-Pascal / MCG-COCO box files
    used by WSDDN / OICR, converted the same way by the authors' ``proposal_convert.py`` of
    DRN-WSOD-pytorch) -> proposal pickle ``output``, ids = the images' ``image_id``, objectness =
    MCG's scores. Returns ``proposal_statistics``.
    """
    _refuse_existing(output, overwrite)
    records = load_image_records(dataset_names)
    by_stem = _records_by_stem(records)
    if not os.path.isdir(mat_dir):
        raise FileNotFoundError(f"{mat_dir} is not a folder: --input must be the folder of per-image MCG .mat files")
    _check_all_found([stem for stem in by_stem if not os.path.isfile(os.path.join(mat_dir, stem + ".mat"))],
                     f"{mat_dir} (<stem>.mat files)", dataset_names)
    boxes, scores = [], []
    for stem in tqdm(by_stem, desc="MCG .mat files", unit="img"):
        mat_file = os.path.join(mat_dir, stem + ".mat")
        content = _load_mat(mat_file, ("boxes", "scores"))
        boxes.append(matlab_boxes_to_xyxy(content["boxes"]))
        scores.append(np.asarray(content["scores"], dtype=np.float32).reshape(-1))
        if len(scores[-1]) != len(boxes[-1]):
            raise ValueError(f"{mat_file} has {len(boxes[-1])} boxes but {len(scores[-1])} scores")
    return _write_converted(output, records, boxes, scores)


def _refuse_existing(output: str, overwrite: bool) -> None:
    if os.path.exists(output) and not overwrite:
        raise FileExistsError(f"{output} exists: pass --overwrite to replace it, or choose another --output")


def _load_mat(mat_file: str, keys: Sequence[str]) -> dict:
    content = scipy.io.loadmat(mat_file)
    missing = [key for key in keys if key not in content]
    if missing:
        found = sorted(key for key in content if not key.startswith("__"))
        raise KeyError(f"{mat_file} has no variable {missing} (it has {found}): is it the right --format?")
    return content


def _mat_string(value, mat_file: str) -> str:
    """A MATLAB char array of a cell (loadmat: array(['000005'])) as a str."""
    value = np.asarray(value).ravel()
    if value.dtype.kind != "U" or len(value) != 1:
        raise ValueError(f"{mat_file}: expected image names (char arrays) in 'images', got {value!r}")
    return str(value[0])


def _check_all_found(missing_stems: Sequence[str], source: str, dataset_names: Sequence[str]) -> None:
    if missing_stems:
        raise KeyError(f"{len(missing_stems)} images of {list(dataset_names)} have no proposals in {source}: "
                       f"{sorted(missing_stems)[:20]}{' ...' if len(missing_stems) > 20 else ''}; convert the file "
                       "made for these images, or name the datasets it covers")


def _write_converted(
    output: str, records: Sequence[dict], boxes: List[np.ndarray], scores: List[np.ndarray]
) -> Dict[str, float]:
    write_proposal_file(output, [record["image_id"] for record in records], boxes, scores)
    statistics = proposal_statistics(boxes, records)
    logger.info(f"Wrote {output}\n{format_statistics(statistics)}")
    return statistics


# ---------------------------------------------------------------------------------------------
# Pictures


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
        path = os.path.join(output_dir, _file_stem(record) + ".png")
        with atomic_output(path) as f:
            f.write(cv2.imencode(".png", picture[:, :, ::-1])[1].tobytes())
        paths.append(path)
    return paths


# ---------------------------------------------------------------------------------------------
# Command line


def _parse_generate_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m projects.resnet_ws.proposals",
        description="Selective Search proposals of registered datasets -> detectron2 proposal pickle "
        "(subcommands: convert, visualize; see their --help)",
        epilog=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    defaults = ProposalOptions()
    parser.add_argument("--dataset", action="append", required=True, help="registered dataset; repeat for several")
    parser.add_argument("--output", required=True, help="proposal pickle to write")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    parser.add_argument("--mode", choices=SELECTIVE_SEARCH_MODES, default=defaults.mode)
    parser.add_argument("--max-proposals", type=int, default=defaults.max_proposals, help="per image, 0 = all")
    parser.add_argument("--min-size", type=float, default=defaults.min_size, help="min box width and height (pixels)")
    parser.add_argument("--max-image-size", type=int, default=defaults.max_image_size,
                        help="segment images with a longer side at this size (boxes scaled back); 0 = never")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="of OpenCV's random ranking")
    parser.add_argument("--num-workers", type=int, default=1, help="processes on this machine (1: this process)")
    parser.add_argument("--opencv-threads", type=int, default=1, help="cv2.setNumThreads of each process")
    parser.add_argument("--num-shards", type=int, default=1, help="runs (machines) sharing the images")
    parser.add_argument("--shard-index", type=int, default=0, help="which of them this run is")
    parser.add_argument("--flush-every", type=int, default=16, help="images per flush of the part file")
    parser.add_argument("--max-images", type=int, default=0, help="only the first N images (quick runs); 0 = all")
    return parser.parse_args(argv)


def _parse_convert_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m projects.resnet_ws.proposals convert",
        description="Published .mat proposals -> detectron2 proposal pickle (images matched by file name stem)",
    )
    parser.add_argument("--format", choices=("ss", "mcg"), required=True,
                        help="ss: one Fast R-CNN Selective Search .mat; mcg: a folder of per-image MCG .mat files")
    parser.add_argument("--input", required=True, help="the .mat file (ss) or the folder of .mat files (mcg)")
    parser.add_argument("--dataset", action="append", required=True, help="registered dataset; repeat for several")
    parser.add_argument("--output", required=True, help="proposal pickle to write")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    return parser.parse_args(argv)


def _parse_visualize_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m projects.resnet_ws.proposals visualize",
        description="PNGs of the top proposals (magenta) and real boxes (lime, dashed) of a dataset's first images",
    )
    parser.add_argument("--proposals", required=True, help="proposal pickle")
    parser.add_argument("--dataset", required=True, help="registered dataset the pickle covers")
    parser.add_argument("--output-dir", required=True, help="folder of the PNGs")
    parser.add_argument("--num-images", type=int, default=4)
    parser.add_argument("--top", type=int, default=20, help="proposals drawn per image")
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> Optional[Dict[str, float]]:
    argv = list(sys.argv[1:] if argv is None else argv)
    setup_logger(name="projects.resnet_ws")
    if argv[:1] == ["convert"]:
        args = _parse_convert_args(argv[1:])
        convert = convert_selective_search_mat if args.format == "ss" else convert_mcg_mats
        return convert(args.input, args.dataset, args.output, overwrite=args.overwrite)
    if argv[:1] == ["visualize"]:
        args = _parse_visualize_args(argv[1:])
        for path in save_proposal_pictures(args.proposals, args.dataset, args.output_dir, args.num_images, args.top):
            logger.info(f"Wrote {path}")
        return None
    args = _parse_generate_args(argv)
    options = ProposalOptions(mode=args.mode, max_proposals=args.max_proposals, min_size=args.min_size,
                              max_image_size=args.max_image_size, seed=args.seed)
    return generate_proposals(
        args.dataset, args.output, options, num_workers=args.num_workers, opencv_threads=args.opencv_threads,
        num_shards=args.num_shards, shard_index=args.shard_index, flush_every=args.flush_every,
        max_images=args.max_images, overwrite=args.overwrite,
    )


if __name__ == "__main__":
    main()
