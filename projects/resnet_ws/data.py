"""
ResNet-WS data: detection datasets with precomputed proposals in detectron2's convention
(``get_detection_dataset_dicts(..., proposal_files=[...])``: a pickle with "ids", "boxes" and
"objectness_logits" or "scores"), mapped by detectron2's DatasetMapper with a proposal top-K, and
a LazyConfig dataloader recipe with the authors' VOC settings.

Training keeps every image (``filter_empty=False``); DatasetMapper(is_train=True) turns the
annotations into ``instances`` (boxes transformed, crowd objects dropped) whose ``gt_classes``
are all the weakly supervised model reads. Images whose annotations give no class are counted
and logged here and left out of the loss by the model.
"""

import logging
import sys
from typing import Hashable, List, Sequence, Union

import numpy as np
from omegaconf import DictConfig, OmegaConf

import detectron2.data.transforms as T
from detectron2.config import LazyCall as L
from detectron2.data import build_detection_test_loader
from detectron2.data.build import check_metadata_consistency
from detectron2.evaluation import DatasetEvaluators
from detectron2.structures import BoxMode
from detectron2.utils.file_io import PathManager

from projects.common.data import DetectionDatasetMapper, get_detection_dataset_dicts
from projects.common.data.resumable import build_resumable_train_loader
from projects.common.evaluation import VOCDetectionEvaluator

from .evaluation import CorLocEvaluator

logger = logging.getLogger(__name__)

TRAIN_SHORT_EDGES = tuple(range(480, 1217, 32))
"""Training scales of the authors' VOC configs (480..1216 step 32; the paper lists 480..1200)."""


def images_without_labels(dataset_dicts: Sequence[dict]) -> List[Hashable]:
    """Image ids (file names when there is none) of dicts without any non-crowd annotation."""
    return [
        record.get("image_id", record.get("file_name"))
        for record in dataset_dicts
        if not any(annotation.get("iscrowd", 0) == 0 for annotation in record.get("annotations", []))
    ]


def get_weak_detection_dataset_dicts(
    names: Union[str, Sequence[str]], proposal_files: Sequence[str]
) -> List[dict]:
    """
    Dataset dicts of ``names`` with the proposals of ``proposal_files`` (one file per name),
    images without annotations included; logs how many images give no class (the model skips
    them in the loss).
    """
    names = [names] if isinstance(names, str) else list(names)
    proposal_files = [proposal_files] if isinstance(proposal_files, str) else list(proposal_files)
    if len(proposal_files) != len(names):
        raise ValueError(
            f"got {len(proposal_files)} proposal files for {len(names)} datasets {names}: give one "
            "proposal file per dataset name, in the same order"
        )
    for name, proposal_file in zip(names, proposal_files):
        if not PathManager.exists(proposal_file):
            raise FileNotFoundError(
                f"proposal file {proposal_file!r} of {name!r} does not exist: make it with `python -m "
                f"projects.resnet_ws.proposals --dataset {name} --output {proposal_file}` (Selective "
                "Search), convert downloaded MCG / Selective Search .mat files with `python -m "
                "projects.resnet_ws.proposals convert ...`, or point to an existing detectron2 proposal file"
            )
    dataset_dicts = []
    for name, proposal_file in zip(names, proposal_files):
        try:
            dicts = get_detection_dataset_dicts(name, filter_empty=False, proposal_files=[proposal_file])
        except KeyError as err:  # detectron2's load_proposals_into_dataset looks every image id up
            raise KeyError(
                f"image id {err} of {name!r} has no entry in the proposal file {proposal_file}: "
                "each file must hold proposals for every image of its dataset"
            ) from err
        check_proposals(dicts, proposal_file)
        dataset_dicts += dicts
    if len(names) > 1:
        check_metadata_consistency("thing_classes", names)
    unlabelled = images_without_labels(dataset_dicts)
    if unlabelled:
        logger.warning(
            f"{len(unlabelled)} of {len(dataset_dicts)} images of {names} have no class label (e.g. "
            f"{unlabelled[:5]}): they are kept but skipped by the weakly supervised losses"
        )
    return dataset_dicts


def check_proposals(dataset_dicts: Sequence[dict], proposal_file: str) -> None:
    """Refuse, naming the file, the image and a box, proposals that would be trained on wrongly or
    crash training when their image comes up: NaN or infinite coordinates, negative widths or
    heights (detectron2 would silently swap the corners), or an image none of whose proposals
    overlaps it."""
    for record in dataset_dicts:
        boxes = BoxMode.convert(
            np.asarray(record["proposal_boxes"], dtype=np.float64).reshape(-1, 4),
            record.get("proposal_bbox_mode", BoxMode.XYXY_ABS), BoxMode.XYXY_ABS,
        )
        image = f"image {record.get('image_id')!r} ({record.get('file_name')})"
        if not np.isfinite(boxes).all():
            bad = boxes[~np.isfinite(boxes).all(axis=1)][0].tolist()
            raise ValueError(f"{proposal_file}: a proposal of {image} is not finite, {bad}: regenerate the file")
        inverted = (boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])
        if inverted.any():
            raise ValueError(
                f"{proposal_file}: proposal {boxes[inverted][0].tolist()} of {image} has a negative width or "
                "height: boxes are [x1, y1, x2, y2] with x1 <= x2 and y1 <= y2 (set 'bbox_mode' in the file "
                "if they are [x, y, w, h]); fix or regenerate the file"
            )
        width, height = record.get("width"), record.get("height")
        if width is None or height is None or not len(boxes):
            continue
        clipped = np.clip(boxes, 0, [width, height, width, height])
        if not ((clipped[:, 2] > clipped[:, 0]) & (clipped[:, 3] > clipped[:, 1])).any():
            raise ValueError(
                f"{proposal_file}: none of the {len(boxes)} proposals of {image} overlaps the {width}x{height} "
                f"image (e.g. {boxes[0].tolist()}): were they computed for another image or another size?"
            )


class ProposalDatasetMapper(DetectionDatasetMapper):
    """
    detectron2's DatasetMapper with precomputed proposals, keeping only proposals whose width and
    height exceed ``proposal_min_size`` pixels (after the augmentations; ``Boxes.nonempty``) before
    taking the top ``proposal_topk`` by score: what detectron2 <= 0.2 did with
    MODEL.PROPOSAL_GENERATOR.MIN_SIZE (20 in the authors' configs). With ``proposal_min_size=0``
    it is exactly ``DatasetMapper(precomputed_proposal_topk=proposal_topk)``.
    """

    def __init__(self, is_train: bool, *, proposal_topk: int, proposal_min_size: float = 0.0, **mapper_args):
        """
        Args:
            is_train, mapper_args: those of detectron2's DatasetMapper (augmentations,
                image_format, ...) except ``precomputed_proposal_topk``.
            proposal_topk: proposals kept per image, highest ``objectness_logits`` first (the
                paper: 4000; its appendix also 1024 and 512).
            proposal_min_size: proposals must be wider and taller than this, in pixels.
        """
        if proposal_topk < 1:
            raise ValueError(f"proposal_topk must be at least 1, got {proposal_topk}")
        # detectron2 only clips and drops empty proposals; the top-K is taken after the size filter
        super().__init__(is_train, precomputed_proposal_topk=sys.maxsize, **mapper_args)
        self.proposals_per_image = proposal_topk
        self.proposal_min_size = proposal_min_size

    def __call__(self, dataset_dict: dict) -> dict:
        if "proposal_boxes" not in dataset_dict:
            raise KeyError(
                f"dataset dict of {dataset_dict.get('file_name')!r} has no precomputed proposals: load the "
                "dataset with get_weak_detection_dataset_dicts(names, proposal_files=[...])"
            )
        record = super().__call__(dataset_dict)
        proposals = record["proposals"]
        keep = proposals.proposal_boxes.nonempty(threshold=self.proposal_min_size)
        record["proposals"] = proposals[keep][: self.proposals_per_image]
        return record


def weak_detection_dataloader(
    train_names: Union[str, Sequence[str]],
    train_proposal_files: Sequence[str],
    test_names: str,
    test_proposal_files: Sequence[str],
    *,
    proposal_topk: int = 4000,
    proposal_min_size: float = 20,
    train_short_edges: Sequence[int] = TRAIN_SHORT_EDGES,
    train_max_size: int = 2000,
    test_short_edge: int = 688,
    test_max_size: int = 4000,
    total_batch_size: int = 4,
    num_workers: int = 4,
    image_format: str = "BGR",
) -> DictConfig:
    """
    LazyConfig ``dataloader`` (train, test, evaluator) with the authors' VOC settings as defaults:
    random short edge from ``train_short_edges`` (max ``train_max_size``) + horizontal flip,
    test short edge 688 (max 4000; multi-scale testing is ``WeaklySupervisedRCNNWithTTA``),
    top-4000 proposals wider and taller than 20 px, batch 4; evaluated by VOC AP and CorLoc on
    the test set (CorLoc is reported on trainval: set ``dataloader.test.dataset.names`` and its
    proposal files to it). Change the top-K with ``dataloader.train.mapper.proposal_topk=1024``
    (the test mapper follows).
    """
    dataloader = OmegaConf.create()
    dataloader.train = L(build_resumable_train_loader)(
        dataset=L(get_weak_detection_dataset_dicts)(names=train_names, proposal_files=train_proposal_files),
        mapper=L(ProposalDatasetMapper)(
            is_train=True,
            augmentations=[
                L(T.ResizeShortestEdge)(
                    short_edge_length=tuple(train_short_edges), max_size=train_max_size, sample_style="choice"
                ),
                L(T.RandomFlip)(horizontal=True),
            ],
            image_format=image_format,
            proposal_topk=proposal_topk,
            proposal_min_size=proposal_min_size,
        ),
        total_batch_size=total_batch_size,
        num_workers=num_workers,
    )
    dataloader.test = L(build_detection_test_loader)(
        dataset=L(get_weak_detection_dataset_dicts)(names=test_names, proposal_files=test_proposal_files),
        mapper=L(ProposalDatasetMapper)(
            is_train=False,
            augmentations=[L(T.ResizeShortestEdge)(short_edge_length=test_short_edge, max_size=test_max_size)],
            image_format="${...train.mapper.image_format}",
            proposal_topk="${...train.mapper.proposal_topk}",
            proposal_min_size="${...train.mapper.proposal_min_size}",
        ),
        num_workers=num_workers,
    )
    dataloader.evaluator = L(DatasetEvaluators)(
        evaluators=[
            L(VOCDetectionEvaluator)(dataset_name="${....test.dataset.names}"),
            L(CorLocEvaluator)(dataset_name="${....test.dataset.names}"),
        ]
    )
    return dataloader
