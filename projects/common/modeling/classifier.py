"""Image classification on top of any detectron2 backbone."""

from typing import Dict, List, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from detectron2.config import CfgNode, configurable
from detectron2.modeling import META_ARCH_REGISTRY, Backbone, build_backbone
from detectron2.structures import ImageList

from .preprocessing import normalize_and_pad, register_pixel_statistics


@META_ARCH_REGISTRY.register()
class ImageClassifier(nn.Module):
    """
    Backbone -> global average pooling of one feature map -> dropout -> linear layer (``self.fc``).

    Configured with keyword arguments (LazyConfig) or a yacs config (``MODEL.META_ARCHITECTURE =
    "ImageClassifier"``, options of ``add_classifier_config``), like detectron2's own
    meta-architectures.

    Inputs follow detectron2's convention: a list of dicts, each with
    ``"image"``: uint8 or float tensor (C, H, W) in ``input_format`` channel order, and, in
    training, ``"class_id"``: int. Images are normalised and batched by ``normalize_and_pad``,
    which pads every image to the largest one (and to the backbone's ``size_divisibility``).
    Classification batches are expected to be same-sized crops: padded zeros would reach the
    backbone and be averaged into the pooled feature, changing the scores.

    Training returns ``{"loss_cls": cross-entropy}``; inference returns one
    ``{"scores": softmax probabilities of shape (num_classes,)}`` per input.
    """

    @configurable
    def __init__(
        self,
        *,
        backbone: Backbone,
        in_feature: str,
        num_classes: int,
        pixel_mean: Sequence[float],
        pixel_std: Sequence[float],
        input_format: str = "BGR",
        dropout: float = 0.0,
        label_smoothing: float = 0.0,
    ):
        """
        Args:
            backbone: any detectron2 backbone; ``in_feature`` must be one of its outputs.
            in_feature: name of the backbone output that is pooled and classified, e.g. "res5".
            num_classes: number of classes of the linear layer.
            pixel_mean, pixel_std: per-channel normalisation, in ``input_format`` channel order.
            input_format: channel order of the input images (e.g. "BGR" or "RGB"), kept so that
                visualisation code can convert images back.
            dropout: drop probability applied to the pooled feature before ``self.fc``.
            label_smoothing: passed to ``F.cross_entropy``.
        """
        super().__init__()
        output_shapes = backbone.output_shape()
        if in_feature not in output_shapes:
            raise ValueError(
                f"in_feature={in_feature!r} is not produced by the backbone, whose outputs are "
                f"{sorted(output_shapes)}: pick one of them or add it to the backbone's out_features"
            )
        if num_classes < 1:
            raise ValueError(f"num_classes must be at least 1, got {num_classes}")
        self.backbone = backbone
        self.in_feature = in_feature
        self.num_classes = num_classes
        self.input_format = input_format
        self.label_smoothing = label_smoothing
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(output_shapes[in_feature].channels, num_classes)
        register_pixel_statistics(self, pixel_mean, pixel_std)

    @classmethod
    def from_config(cls, cfg: CfgNode) -> dict:
        """The constructor's arguments from MODEL.BACKBONE (built by ``build_backbone``),
        MODEL.CLASSIFIER, MODEL.PIXEL_MEAN/PIXEL_STD and INPUT.FORMAT."""
        return {
            "backbone": build_backbone(cfg),
            "in_feature": cfg.MODEL.CLASSIFIER.IN_FEATURE,
            "num_classes": cfg.MODEL.CLASSIFIER.NUM_CLASSES,
            "pixel_mean": cfg.MODEL.PIXEL_MEAN,
            "pixel_std": cfg.MODEL.PIXEL_STD,
            "input_format": cfg.INPUT.FORMAT,
            "dropout": cfg.MODEL.CLASSIFIER.DROPOUT,
            "label_smoothing": cfg.MODEL.CLASSIFIER.LABEL_SMOOTHING,
        }

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    def preprocess_image(self, batched_inputs: List[Dict]) -> ImageList:
        """Normalise the images and pad them into one batch (see the class note on padding)."""
        images = [x["image"] for x in batched_inputs]
        return normalize_and_pad(images, self.pixel_mean, self.pixel_std, self.backbone.size_divisibility)

    def feature_map(self, batched_inputs: List[Dict]) -> torch.Tensor:
        """
        The backbone's ``in_feature`` map (N, C, h, w) for the batch, before pooling.

        Because the head is a global average pool followed by the linear layer ``self.fc``,
        the class activation map of class ``c`` is
        ``torch.einsum("c,nchw->nhw", self.fc.weight[c], feature_map)`` (plus ``self.fc.bias[c]``),
        whose spatial mean is that class's logit.
        """
        images = self.preprocess_image(batched_inputs)
        return self.backbone(images.tensor)[self.in_feature]

    def logits(self, batched_inputs: List[Dict]) -> torch.Tensor:
        """(N, num_classes) class logits: pooled ``in_feature`` map -> dropout -> ``self.fc``."""
        pooled = self.feature_map(batched_inputs).mean(dim=(2, 3))
        return self.fc(self.dropout(pooled))

    def forward(self, batched_inputs: List[Dict]):
        """Loss dict in training mode, list of ``{"scores": probabilities}`` in eval mode."""
        logits = self.logits(batched_inputs)
        if self.training:
            targets = torch.as_tensor(self._class_ids(batched_inputs), device=self.device)
            loss = F.cross_entropy(logits, targets, label_smoothing=self.label_smoothing)
            return {"loss_cls": loss}
        return [{"scores": probabilities} for probabilities in logits.softmax(dim=1)]

    def _class_ids(self, batched_inputs: List[Dict]) -> List[int]:
        """Training targets, with an error that says which input lacks its label."""
        class_ids = []
        for index, x in enumerate(batched_inputs):
            if "class_id" not in x:
                raise KeyError(
                    f"ImageClassifier needs 'class_id' in every input dict during training, but "
                    f"input {index} only has {sorted(x)}: make the dataset dicts carry 'class_id' "
                    "and the dataset mapper copy it into its output"
                )
            class_id = int(x["class_id"])
            if not 0 <= class_id < self.num_classes:
                raise ValueError(
                    f"input {index} has class_id={class_id}, outside [0, {self.num_classes}): "
                    "set num_classes to the dataset's number of classes"
                )
            class_ids.append(class_id)
        return class_ids


def add_classifier_config(cfg: CfgNode) -> None:
    """Add ``cfg.MODEL.CLASSIFIER`` (the ``ImageClassifier`` options that detectron2's config lacks):
    IN_FEATURE, NUM_CLASSES, DROPOUT and LABEL_SMOOTHING."""
    cfg.MODEL.CLASSIFIER = CfgNode()
    cfg.MODEL.CLASSIFIER.IN_FEATURE = "res5"
    cfg.MODEL.CLASSIFIER.NUM_CLASSES = 1000
    cfg.MODEL.CLASSIFIER.DROPOUT = 0.0
    cfg.MODEL.CLASSIFIER.LABEL_SMOOTHING = 0.0
