"""Inference on single images with detectron2's ``DefaultPredictor`` semantics, for LazyConfigs."""
import numpy as np
import torch

import detectron2.data.transforms as T
from detectron2.config import instantiate

from .runtime import resolve_device
from .weights import load_trained_weights


def check_bgr_image(image) -> None:
    """An image as ``cv2.imread`` gives it: (H, W, 3) uint8, BGR, not empty; anything else is an
    error that says how to convert it (a 16-bit or float image would be scaled wrongly in silence)."""
    if not isinstance(image, np.ndarray):
        raise TypeError(f"expected the image as a NumPy array (cv2.imread), got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(
            f"expected an (H, W, 3) BGR image, got shape {image.shape}: read files with cv2.imread(path) (colour); "
            "convert a grayscale array with cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)"
        )
    if image.dtype != np.uint8:
        raise ValueError(
            f"expected uint8 pixels (0-255) as cv2.imread gives, got {image.dtype}: convert, e.g. "
            "(image // 257).astype(np.uint8) for 16-bit images, (image * 255).clip(0, 255).astype(np.uint8) "
            "for floats in [0, 1]"
        )
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"the image is empty ({image.shape[0]}x{image.shape[1]} pixels)")


class LazyPredictor:
    """Builds ``cfg.model`` in eval mode, loads a checkpoint and runs it on one image.

    Like ``DefaultPredictor``: the input is an (H, W, C) uint8 image in BGR order (as read by
    ``cv2.imread``); the output is the model's output for that image, e.g. ``{"instances": ...}``
    for a detector (boxes in the original image's coordinates) or ``{"scores": ...}`` for an
    ``ImageClassifier``. The test-time resize is the one of ``cfg.dataloader.test.mapper``.
    The weights (``checkpoint``, else ``train.init_checkpoint``) must set every parameter of the
    model (see ``projects.common.weights.load_trained_weights`` and its two ``allow_*`` options).
    """

    def __init__(self, cfg, checkpoint=None, device="auto", *, allow_partial_weights=False,
                 allow_random_weights=False):
        self.cfg = cfg
        self.device = resolve_device(device)
        self.model = instantiate(cfg.model).to(self.device).eval()
        load_trained_weights(self.model, checkpoint or cfg.train.init_checkpoint,
                             allow_partial=allow_partial_weights, allow_random=allow_random_weights)
        mapper = cfg.dataloader.test.mapper
        self.augmentations = T.AugmentationList(instantiate(list(mapper.augmentations)))
        self.input_format = mapper.image_format

    def __call__(self, original_image: np.ndarray) -> dict:
        tensor = self.preprocess(original_image)
        height, width = original_image.shape[:2]
        with torch.no_grad():
            return self.model([{"image": tensor.to(self.device), "height": height, "width": width}])[0]

    def preprocess(self, original_image: np.ndarray) -> torch.Tensor:
        """The model's ``"image"`` for a BGR image: (C, H, W) float32 in the config's channel order,
        resized by its test augmentations (also what an exported model takes)."""
        check_bgr_image(original_image)
        height, width = original_image.shape[:2]
        image = original_image[:, :, ::-1] if self.input_format == "RGB" else original_image
        aug_input = T.AugInput(np.ascontiguousarray(image))
        try:
            self.augmentations(aug_input)
        except (ValueError, ZeroDivisionError) as error:  # a side resized to 0 pixels
            raise ValueError(
                f"the {height}x{width} image cannot be resized by the config's test augmentations "
                f"({self.augmentations}): {error}. It is too elongated for them: crop or pad it to a less "
                "extreme aspect ratio"
            ) from error
        return torch.as_tensor(aug_input.image.astype("float32").transpose(2, 0, 1))
