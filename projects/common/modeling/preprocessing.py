"""The one input path of the collection's own models (``ImageClassifier``, ResNet-WS's
``WeaklySupervisedRCNN``, DAP's CAMs): per-channel pixel normalisation, then one zero-padded
batch, as detectron2's ``GeneralizedRCNN.preprocess_image`` does it."""

from typing import Sequence

import torch
from torch import nn

from detectron2.structures import ImageList

__all__ = ["normalize_and_pad", "register_pixel_statistics"]


def register_pixel_statistics(module: nn.Module, pixel_mean: Sequence[float], pixel_std: Sequence[float]) -> None:
    """``module.pixel_mean`` and ``module.pixel_std`` as (C, 1, 1) buffers, not saved in
    checkpoints (they belong to the config), in the input images' channel order."""
    if len(pixel_mean) != len(pixel_std):
        raise ValueError(
            f"pixel_mean has {len(pixel_mean)} channels but pixel_std has {len(pixel_std)}: "
            "give one value per image channel to both"
        )
    module.register_buffer("pixel_mean", torch.tensor(pixel_mean).view(-1, 1, 1), False)
    module.register_buffer("pixel_std", torch.tensor(pixel_std).view(-1, 1, 1), False)


def normalize_and_pad(
    images: Sequence[torch.Tensor], pixel_mean: torch.Tensor, pixel_std: torch.Tensor, size_divisibility: int = 0
) -> ImageList:
    """
    ``(image - pixel_mean) / pixel_std`` of every (C, H, W) image (moved to the statistics'
    device; a uint8 image becomes float by type promotion), batched by ``ImageList.from_tensors``:
    zero-padded bottom/right to the largest image, rounded up to a multiple of
    ``size_divisibility``. Zero after normalisation is the mean pixel.
    """
    normalized = [(image.to(pixel_mean.device) - pixel_mean) / pixel_std for image in images]
    return ImageList.from_tensors(normalized, size_divisibility)
