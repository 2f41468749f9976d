"""
SAN data: training dicts that carry the same crop at every training resolution, and the
validation resize of the SAN paper (resize the short edge to floor(S / 0.875), centre crop S).
"""

import math
from typing import Sequence, Tuple

import torch
import torch.nn.functional as F

import detectron2.data.transforms as T

from projects.common.data import ClassificationDatasetMapper, RandomResizedCrop

VALIDATION_CROP_FRACTION = 0.875


class MultiResolutionClassificationMapper(ClassificationDatasetMapper):
    """
    Training mapper of SAN (supplement Algorithm 1, lines 4-7): ONE random-resized crop and flip
    per image at the largest training resolution, then that crop resized to every training
    resolution, so every batch carries all resolutions of the same image content.

    Output: the dataset dict plus ``"image"`` (the largest crop), ``"images_by_resolution"``
    ``{resolution: (C, S, S) uint8 tensor}`` (every training resolution, the largest included)
    and ``"class_id"``. The smaller images are bilinear with antialiasing (``F.interpolate(...,
    antialias=True)``, like PIL's bilinear ``Resize`` used by the authors), rounded back to uint8.
    """

    def __init__(
        self,
        resolutions: Sequence[int] = (224, 192, 160, 128, 96),
        crop_scale: Tuple[float, float] = (0.08, 1.0),
        image_format: str = "BGR",
    ):
        """
        Args:
            resolutions: training resolutions (square side in pixels), in any order.
            crop_scale: area fraction range of the random-resized crop.
            image_format: any format of ``detectron2.data.detection_utils.read_image``.
        """
        resolutions = sorted({int(r) for r in resolutions}, reverse=True)
        if not resolutions or resolutions[-1] < 1:
            raise ValueError(f"resolutions must be positive ints, got {resolutions}")
        self.resolutions = resolutions
        super().__init__(
            is_train=True,
            augmentations=[
                RandomResizedCrop(resolutions[0], scale=tuple(crop_scale)),
                T.RandomFlip(horizontal=True),
            ],
            image_format=image_format,
        )

    def __call__(self, dataset_dict: dict) -> dict:
        record = super().__call__(dataset_dict)
        largest = record["image"]
        record["images_by_resolution"] = {
            resolution: resize_square(largest, resolution) for resolution in self.resolutions
        }
        return record


def resize_square(image: torch.Tensor, size: int) -> torch.Tensor:
    """(C, H, W) uint8 image -> (C, size, size) uint8, bilinear with antialiasing."""
    if image.shape[-2:] == (size, size):
        return image
    resized = F.interpolate(
        image[None].float(), size=(size, size), mode="bilinear", align_corners=False, antialias=True
    )[0]
    return resized.round().clamp(0, 255).to(torch.uint8)


def validation_resize_edge(resolution: int) -> int:
    """Short edge before the centre crop of side ``resolution``: floor(S / 0.875) (256 for 224)."""
    return math.floor(resolution / VALIDATION_CROP_FRACTION)


def set_test_resolution(test_loader_cfg, resolution: int) -> None:
    """
    Make a test-loader config (``dataloader.test`` of configs/common/data/imagenet.py: augmentations
    ``[ResizeShortestEdge, CenterCrop]``) evaluate at ``resolution`` with the SAN validation resize.
    """
    augmentations = test_loader_cfg.mapper.augmentations
    if len(augmentations) != 2 or "size" not in augmentations[1]:
        raise ValueError(
            "set_test_resolution expects dataloader.test.mapper.augmentations = [ResizeShortestEdge, "
            f"CenterCrop] as in configs/common/data/imagenet.py, got {augmentations}"
        )
    augmentations[0].short_edge_length = validation_resize_edge(resolution)
    augmentations[1].size = resolution


def use_resolution(dataloader_cfg, resolution: int) -> None:
    """
    Make a plain classifier's dataloader config (configs/common/data/imagenet.py layout) train on
    random-resized crops of ``resolution`` and evaluate at ``resolution`` with the SAN validation
    resize: the individually trained baselines of the SAN paper.
    """
    dataloader_cfg.train.mapper.augmentations[0].size = resolution
    set_test_resolution(dataloader_cfg.test, resolution)
