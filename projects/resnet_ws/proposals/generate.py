"""
Selective Search proposals of registered datasets, written as one detectron2 proposal file.

Generation runs Selective Search in ``num_workers`` processes of this machine (multiprocessing;
OpenCV itself uses ``opencv_threads`` threads in each). Several machines sharing the output
folder each run the same command with ``--num-shards S --shard-index K`` and take the images
with dataset index % S == K: the images are independent, so static shards need no process group
(detectron2's ``launch`` would need one, and a rendez-vous address, for nothing). Every process
appends its finished images to its own ``<output>.parts/<host>-<pid>.jsonl``, flushed and
fsynced every ``flush_every`` images (``projects.common.io.ResumableParts``), so a killed run
restarted with the same command (any number of workers or shards) skips what any run finished
and loses at most the unflushed images. The settings that decide the boxes are stored in
``<output>.parts/settings.json``; resuming with others is refused. The run that finds every
image done writes the pickle atomically, logs the statistics (boxes per image; recall at IoU
0.5 / 0.7 and mean best IoU when the datasets have real boxes) and removes the parts.
"""

import dataclasses
import hashlib
import logging
import multiprocessing
import os
import socket
from typing import Dict, Iterator, Optional, Sequence, Tuple

import cv2
import numpy as np
from tqdm import tqdm

from detectron2.data import detection_utils

from projects.common.io import ResumableParts, refuse_to_overwrite

from .files import load_image_records, write_proposals_with_statistics
from .search import SELECTIVE_SEARCH_MODES, rank_scores, selective_search

__all__ = ["ProposalOptions", "generate_proposals"]

logger = logging.getLogger(__name__)


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
    refuse_to_overwrite(output, overwrite)
    if not 0 <= shard_index < num_shards:
        raise ValueError(
            f"--shard-index must be in [0, {num_shards - 1}] for --num-shards {num_shards}, got {shard_index}"
        )
    records = load_image_records(dataset_names, max_images)
    images = hashlib.sha1("\n".join(f"{r['image_id']}\t{r['file_name']}" for r in records).encode()).hexdigest()
    settings = {"datasets": list(dataset_names), "max_images": max_images, "num_images": len(records),
                "images_sha1": images, "options": dataclasses.asdict(options)}
    parts = ResumableParts(output, settings)
    parts.open()
    done = parts.finished_indices()
    todo = [index for index in range(shard_index, len(records), num_shards) if index not in done]
    logger.info(f"{'+'.join(dataset_names)}: {len(records)} images, {len(done)} already done, {len(todo)} to do "
                f"in shard {shard_index}/{num_shards} with {max(num_workers, 1)} process(es)")
    if todo:
        tasks = [(index, _image_fields(records[index]), options) for index in todo]
        with parts.writer(f"{socket.gethostname()}-{os.getpid()}", flush_every) as part:
            for index, boxes in tqdm(_image_proposals(tasks, num_workers, opencv_threads), total=len(tasks),
                                     desc="selective search", unit="img"):
                part.add({"index": index, "boxes": boxes.tolist()})
    entries = parts.completed_records(len(records))
    if entries is None:
        missing = len(records) - len(parts.finished_indices())
        logger.info(f"shard {shard_index}/{num_shards} is done; {missing} images of other shards are not: the run "
                    f"that finishes last writes {output} (or run this command again once they are done)")
        return None
    boxes = [np.asarray(entry["boxes"], dtype=np.float32).reshape(-1, 4) for entry in entries]
    statistics = write_proposals_with_statistics(output, records, boxes, [rank_scores(len(b)) for b in boxes])
    parts.remove()
    return statistics


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
    """A worker's job: (dataset index, Selective Search boxes) of one image."""
    index, record, options = task
    image = detection_utils.read_image(record["file_name"], format="BGR")
    detection_utils.check_image_size(record, image)  # boxes must be in the dataset's pixels
    boxes, _ = selective_search(image, **dataclasses.asdict(options))
    return index, boxes
