"""Inference on single images with detectron2's ``DefaultPredictor`` semantics, for LazyConfigs."""
import numpy as np
import torch

import detectron2.data.transforms as T
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import instantiate

from .runtime import resolve_device


class LazyPredictor:
    """Builds ``cfg.model`` in eval mode, loads a checkpoint and runs it on one image.

    Like ``DefaultPredictor``: the input is an (H, W, C) uint8 image in BGR order (as read by
    ``cv2.imread``); the output is the model's output for that image, e.g. ``{"instances": ...}``
    for a detector (boxes in the original image's coordinates) or ``{"scores": ...}`` for an
    ``ImageClassifier``. The test-time resize is the one of ``cfg.dataloader.test.mapper``.
    """

    def __init__(self, cfg, checkpoint=None, device="auto"):
        self.cfg = cfg
        self.device = resolve_device(device)
        self.model = instantiate(cfg.model).to(self.device).eval()
        DetectionCheckpointer(self.model).load(checkpoint or cfg.train.init_checkpoint)
        mapper = cfg.dataloader.test.mapper
        self.augmentations = T.AugmentationList(instantiate(list(mapper.augmentations)))
        self.input_format = mapper.image_format

    def __call__(self, original_image: np.ndarray) -> dict:
        if original_image.ndim != 3 or original_image.shape[2] != 3:
            raise ValueError(f"expected an (H, W, 3) BGR image, got shape {original_image.shape}")
        height, width = original_image.shape[:2]
        image = original_image[:, :, ::-1] if self.input_format == "RGB" else original_image
        aug_input = T.AugInput(np.ascontiguousarray(image))
        self.augmentations(aug_input)
        tensor = torch.as_tensor(aug_input.image.astype("float32").transpose(2, 0, 1))
        with torch.no_grad():
            return self.model([{"image": tensor.to(self.device), "height": height, "width": width}])[0]
