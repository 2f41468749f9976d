"""Published proposals as .mat files (Fast R-CNN's Selective Search, MCG) -> detectron2 proposal
files, images matched by file name stem."""

import logging
import os
from typing import Dict, Sequence

import numpy as np
import scipy.io
from tqdm import tqdm

from projects.common.io import refuse_to_overwrite

from .files import file_stem, load_image_records, write_proposals_with_statistics
from .search import rank_scores

__all__ = ["convert_mcg_mats", "convert_selective_search_mat", "matlab_boxes_to_xyxy"]

logger = logging.getLogger(__name__)


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
    refuse_to_overwrite(output, overwrite)
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
    return write_proposals_with_statistics(output, records, boxes, [rank_scores(len(b)) for b in boxes])


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
    refuse_to_overwrite(output, overwrite)
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
    return write_proposals_with_statistics(output, records, boxes, scores)


def _records_by_stem(records: Sequence[dict]) -> Dict[str, dict]:
    by_stem = {}
    for record in records:
        stem = file_stem(record)
        if stem in by_stem:
            raise ValueError(
                f"two images of the datasets have the file name stem {stem!r} ({by_stem[stem]['file_name']}, "
                f"{record['file_name']}): .mat proposals name images by stem, convert one dataset at a time"
            )
        by_stem[stem] = record
    return by_stem


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
