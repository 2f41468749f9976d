"""The SAN meta-architecture: an ImageClassifier trained on every resolution of each batch."""

from typing import Dict, List

import torch
import torch.nn.functional as F

from detectron2.config import CfgNode, configurable
from detectron2.modeling import META_ARCH_REGISTRY

from projects.common.modeling import ImageClassifier

from .losses import scale_distillation_loss


@META_ARCH_REGISTRY.register()
class ScaleAdaptiveClassifier(ImageClassifier):
    """
    ImageClassifier whose training step follows SAN (supplement Algorithm 1): the same images at
    every training resolution (``"images_by_resolution"`` of ``MultiResolutionClassificationMapper``)
    go through the backbone in descending resolution order, each with its own cross-entropy, plus
    the dense top-down scale distillation between the resolutions' logits.

    Training returns ``{"loss_ce_<resolution>": ce_weight * CE, ...,
    "loss_scale_distillation": distillation_weight * KD}`` (the paper's un-weighted sum: both 1).
    Evaluation is ImageClassifier's: any input size -> ``{"scores"}``; the backbone picks its
    scale encoding / BN for that size (SAN's proxy, ideal or data-free inference).

    yacs: ``MODEL.META_ARCHITECTURE = "ScaleAdaptiveClassifier"``, ImageClassifier's options plus
    MODEL.SAN (``add_san_config``).
    """

    @configurable
    def __init__(self, *, ce_weight: float = 1.0, distillation_weight: float = 1.0, **classifier_args):
        """
        Args:
            ce_weight: weight of each resolution's cross-entropy.
            distillation_weight: weight of the scale distillation loss.
            classifier_args: those of ``ImageClassifier`` (backbone, in_feature, num_classes, ...).
        """
        super().__init__(**classifier_args)
        self.ce_weight = ce_weight
        self.distillation_weight = distillation_weight

    @classmethod
    def from_config(cls, cfg: CfgNode) -> dict:
        return {
            **super().from_config(cfg),
            "ce_weight": cfg.MODEL.SAN.CE_WEIGHT,
            "distillation_weight": cfg.MODEL.SAN.DISTILLATION_WEIGHT,
        }

    def forward(self, batched_inputs: List[Dict]):
        if not self.training:
            return super().forward(batched_inputs)
        targets = torch.as_tensor(self._class_ids(batched_inputs), device=self.device)
        logits_by_resolution = {
            resolution: self.logits([{"image": x["images_by_resolution"][resolution]} for x in batched_inputs])
            for resolution in self._training_resolutions(batched_inputs)
        }
        losses = {
            f"loss_ce_{resolution}": self.ce_weight
            * F.cross_entropy(logits, targets, label_smoothing=self.label_smoothing)
            for resolution, logits in logits_by_resolution.items()
        }
        losses["loss_scale_distillation"] = self.distillation_weight * scale_distillation_loss(
            logits_by_resolution
        )
        return losses

    @staticmethod
    def _training_resolutions(batched_inputs: List[Dict]) -> List[int]:
        """The batch's resolutions, descending; every input must carry the same ones."""
        for index, x in enumerate(batched_inputs):
            if "images_by_resolution" not in x:
                raise KeyError(
                    f"ScaleAdaptiveClassifier needs 'images_by_resolution' in every training input, but "
                    f"input {index} only has {sorted(x)}: use projects.san.data."
                    "MultiResolutionClassificationMapper as dataloader.train.mapper"
                )
        resolutions = sorted(batched_inputs[0]["images_by_resolution"], reverse=True)
        for index, x in enumerate(batched_inputs):
            if sorted(x["images_by_resolution"], reverse=True) != resolutions:
                raise ValueError(
                    f"input {index} has resolutions {sorted(x['images_by_resolution'], reverse=True)} but "
                    f"input 0 has {resolutions}: map the whole batch with one MultiResolutionClassificationMapper"
                )
        return resolutions
