"""
Dataset mappers and augmentations: detectron2's DatasetMapper with read errors that name the
file, a classification mapper, Inception-style RandomResizedCrop / CenterCrop, and loaders.
"""

import logging
import math
from contextlib import contextmanager
from typing import List, Sequence, Tuple, Union

import numpy as np
import torch
from PIL import Image

from detectron2.data import DatasetFromList, DatasetMapper, MapDataset
from detectron2.data import detection_utils as utils
from detectron2.data import transforms as T
from detectron2.data.build import trivial_batch_collator
from detectron2.data.samplers import InferenceSampler

from .resumable import ResumableTrainLoader

logger = logging.getLogger(__name__)


class ImageReadError(OSError):
    """An image file exists but cannot be decoded (corrupt, truncated or not an image)."""


@contextmanager
def naming_unreadable_image(file_name: str):
    """Re-raise failures to read ``file_name`` with the file's path and the fix in the message."""
    try:
        yield
    except FileNotFoundError as err:
        missing = err.filename or file_name
        raise FileNotFoundError(
            f"Image file {missing!r} does not exist: the dataset's image root is wrong or the file "
            "was removed; restore it, or re-download / regenerate the dataset"
        ) from err
    except OSError as err:  # PIL's UnidentifiedImageError and truncated-file errors are OSErrors
        raise ImageReadError(
            f"Cannot read image {file_name!r} ({type(err).__name__}: {err}): the file is corrupt, "
            "truncated or not an image; replace it, or re-download / regenerate the dataset"
        ) from err


class DetectionDatasetMapper(DatasetMapper):
    """detectron2's DatasetMapper; a missing or unreadable image raises an error naming the file."""

    def __call__(self, dataset_dict):
        with naming_unreadable_image(dataset_dict["file_name"]):
            return super().__call__(dataset_dict)


class ClassificationDatasetMapper:
    """
    Map a classification dataset dict (``file_name``, ``class_id``, ...) to model input: the dict
    plus ``"image"``, a (C, H, W) tensor (uint8 for BGR/RGB) after the augmentations, like
    detectron2's DatasetMapper. ``height``/``width`` stay those of the original image.
    """

    def __init__(
        self,
        is_train: bool,
        augmentations: Sequence[Union[T.Augmentation, T.Transform]],
        image_format: str = "BGR",
    ):
        """
        Args:
            is_train: whether this maps training data (only used in the log message).
            augmentations: detectron2 augmentations, e.g. ``[RandomResizedCrop(224), T.RandomFlip()]``.
            image_format: any format of ``detectron2.data.detection_utils.read_image``.
        """
        self.is_train = is_train
        self.augmentations = T.AugmentationList(augmentations)
        self.image_format = image_format
        mode = "training" if is_train else "inference"
        logger.info(f"[ClassificationDatasetMapper] Augmentations used in {mode}: {augmentations}")

    def __call__(self, dataset_dict: dict) -> dict:
        record = dict(dataset_dict)
        with naming_unreadable_image(record["file_name"]):
            image = utils.read_image(record["file_name"], format=self.image_format)
        utils.check_image_size(record, image)
        aug_input = T.AugInput(image)
        self.augmentations(aug_input)
        record["image"] = torch.as_tensor(np.ascontiguousarray(aug_input.image.transpose(2, 0, 1)))
        record["class_id"] = int(record["class_id"])
        return record


class RandomResizedCrop(T.Augmentation):
    """
    Inception-style crop for ImageNet training: a random region with ``scale`` of the image area
    and aspect ratio (w / h) in ``ratio`` (sampled log-uniformly), resized to ``size`` x ``size``.
    If ``max_attempts`` samples all fall outside the image, the largest centred crop whose
    aspect ratio is within ``ratio`` is used. Returns CropTransform + ResizeTransform, so boxes,
    masks and points follow the image.
    """

    def __init__(
        self,
        size: int,
        scale: Tuple[float, float] = (0.08, 1.0),
        ratio: Tuple[float, float] = (3 / 4, 4 / 3),
        interp=Image.BILINEAR,
        max_attempts: int = 10,
    ):
        super().__init__()
        if size < 1:
            raise ValueError(f"RandomResizedCrop size must be a positive int, got {size}")
        if not 0 < scale[0] <= scale[1] <= 1:
            raise ValueError(f"RandomResizedCrop scale={scale} must satisfy 0 < min <= max <= 1")
        if not 0 < ratio[0] <= ratio[1]:
            raise ValueError(f"RandomResizedCrop ratio={ratio} must satisfy 0 < min <= max")
        self._init(locals())

    def get_transform(self, image) -> T.TransformList:
        height, width = image.shape[:2]
        x0, y0, crop_width, crop_height = self._sample_crop(height, width)
        return T.TransformList(
            [
                T.CropTransform(x0, y0, crop_width, crop_height),
                T.ResizeTransform(crop_height, crop_width, self.size, self.size, self.interp),
            ]
        )

    def _sample_crop(self, height: int, width: int) -> Tuple[int, int, int, int]:
        """x0, y0, width, height of the crop."""
        log_ratio = np.log(self.ratio)
        for _ in range(self.max_attempts):
            target_area = height * width * self._rand_range(*self.scale)
            aspect_ratio = math.exp(self._rand_range(*log_ratio))
            crop_width = int(round(math.sqrt(target_area * aspect_ratio)))
            crop_height = int(round(math.sqrt(target_area / aspect_ratio)))
            if 0 < crop_width <= width and 0 < crop_height <= height:
                x0 = int(np.random.randint(0, width - crop_width + 1))
                y0 = int(np.random.randint(0, height - crop_height + 1))
                return x0, y0, crop_width, crop_height
        image_ratio = width / height
        crop_width, crop_height = width, height
        if image_ratio < self.ratio[0]:
            crop_height = int(round(width / self.ratio[0]))
        elif image_ratio > self.ratio[1]:
            crop_width = int(round(height * self.ratio[1]))
        return (width - crop_width) // 2, (height - crop_height) // 2, crop_width, crop_height


class CenterCrop(T.Augmentation):
    """Central ``size`` x ``size`` crop, the evaluation counterpart of RandomResizedCrop."""

    def __init__(self, size: int):
        super().__init__()
        self._init(locals())

    def get_transform(self, image) -> T.CropTransform:
        height, width = image.shape[:2]
        if height < self.size or width < self.size:
            raise ValueError(
                f"CenterCrop({self.size}) needs an image of at least {self.size}x{self.size}, got "
                f"{height}x{width}: resize first, e.g. with T.ResizeShortestEdge({self.size})"
            )
        return T.CropTransform((width - self.size) // 2, (height - self.size) // 2, self.size, self.size)


def build_classification_train_loader(
    dataset: List[dict], *, mapper, total_batch_size: int, num_workers: int = 0
):
    """
    Infinite shuffled loader yielding lists of mapped dicts: detectron2's detection train loader
    without aspect-ratio grouping (classification crops all have one size), resumable exactly.
    """
    return ResumableTrainLoader(
        dataset,
        mapper=mapper,
        total_batch_size=total_batch_size,
        aspect_ratio_grouping=False,
        num_workers=num_workers,
    )


def build_classification_test_loader(
    dataset: List[dict], *, mapper, batch_size: int = 1, num_workers: int = 0
):
    """
    Loader that visits every image exactly once across processes (detectron2's InferenceSampler),
    yielding lists of ``batch_size`` mapped dicts; detectron2's test loader is fixed at 1 image.
    """
    mapped = MapDataset(DatasetFromList(dataset, copy=False), mapper)
    return torch.utils.data.DataLoader(
        mapped,
        batch_size=batch_size,
        sampler=InferenceSampler(len(mapped)),
        num_workers=num_workers,
        collate_fn=trivial_batch_collator,
    )
