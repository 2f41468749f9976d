"""The ImageNet classification form of ResNet-WS (appendix Table A1), in which the redundant
adaptation neck is pre-trained together with the backbone."""
from typing import Dict, List

import torch
import torch.nn.functional as F
from torch import nn

from detectron2.config import CfgNode, configurable
from detectron2.layers import ShapeSpec
from detectron2.modeling import META_ARCH_REGISTRY
from detectron2.structures import ImageList

from projects.common.modeling import ImageClassifier

from .neck import RedundantAdaptationNeck


@META_ARCH_REGISTRY.register()
class NeckClassifier(ImageClassifier):
    """
    Backbone ``in_feature`` map -> 2x2 max-pool stride 2 -> RedundantAdaptationNeck -> dropout
    -> ``fc`` (Table A1: ResNet-WS in its classification form, ``output_stride=16``, turns a
    224x224 crop into a 14x14 res5 map, pooled to the neck's 7x7).

    yacs: ``MODEL.META_ARCHITECTURE = "NeckClassifier"``, ImageClassifier's options plus the neck's
    MODEL.RAN and its pooled size MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION (the RoI pooler resolution
    of the detectors it initialises); the backbone in its classification form
    (MODEL.RESNET_WS.OUTPUT_STRIDE = 16).

    Parameters are ``backbone.*``, ``neck.*`` and ``fc.*``: a checkpoint of this model loads with
    ``DetectionCheckpointer`` (``train.init_checkpoint``) into a WSOD detector with attributes
    ``backbone`` (the same backbone in its WSOD form) and ``neck``; only ``fc.*`` is unused.

    Preprocessing, loss (``{"loss_cls"}``) and inference output (``[{"scores"}]``) are
    ImageClassifier's. The flattened neck needs a fixed input size,
    ``input_size = 2 * backbone stride * neck.pooled_size`` (224 for ResNet-WS at stride 16 and
    the 7x7 neck); other sizes raise an error naming it.
    """

    @configurable
    def __init__(self, *, neck: RedundantAdaptationNeck, **classifier_args):
        """
        Args:
            neck: takes the pooled map: ``neck.in_channels`` must be the backbone's
                ``in_feature`` channels.
            classifier_args: those of ``ImageClassifier`` (backbone, in_feature, num_classes,
                pixel_mean, pixel_std, ...); its ``dropout`` is applied to the neck's output
                (the neck has its own dropout, so the default 0 is the paper's).
        """
        super().__init__(**classifier_args)
        feature_shape = self.backbone.output_shape()[self.in_feature]
        if neck.in_channels != feature_shape.channels:
            raise ValueError(
                f"the neck takes {neck.in_channels} channels but the backbone's {self.in_feature!r} "
                f"has {feature_shape.channels}: build the neck with in_channels={feature_shape.channels}"
            )
        self.neck = neck
        self.input_size = 2 * feature_shape.stride * neck.pooled_size
        # the authors' (and detectron2's ResNet) classifier init: N(0, 0.01), zero bias
        self.fc = nn.Linear(neck.output_size, self.num_classes)
        nn.init.normal_(self.fc.weight, std=0.01)
        nn.init.zeros_(self.fc.bias)

    @classmethod
    def from_config(cls, cfg: CfgNode) -> dict:
        classifier_args = super().from_config(cfg)
        shapes = classifier_args["backbone"].output_shape()
        in_feature = classifier_args["in_feature"]
        if in_feature not in shapes:
            raise ValueError(
                f"MODEL.CLASSIFIER.IN_FEATURE={in_feature!r} is not an output of the backbone {sorted(shapes)}: "
                "pick one of them or add it to MODEL.RESNETS.OUT_FEATURES"
            )
        pooled_size = cfg.MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION
        neck_input = ShapeSpec(channels=shapes[in_feature].channels, height=pooled_size, width=pooled_size)
        return {**classifier_args, "neck": RedundantAdaptationNeck(cfg, neck_input)}

    def preprocess_image(self, batched_inputs: List[Dict]) -> ImageList:
        """ImageClassifier's, after checking that every image has the fixed input size."""
        expected = (self.input_size, self.input_size)
        for index, x in enumerate(batched_inputs):
            if tuple(x["image"].shape[-2:]) != expected:
                raise ValueError(
                    f"NeckClassifier needs {self.input_size}x{self.input_size} images (its neck "
                    f"flattens a fixed {self.neck.pooled_size}x{self.neck.pooled_size} map), but input "
                    f"{index} is {tuple(x['image'].shape[-2:])}: crop or resize to "
                    f"{self.input_size} (e.g. RandomResizedCrop / CenterCrop of size {self.input_size})"
                )
        return super().preprocess_image(batched_inputs)

    def logits(self, batched_inputs: List[Dict]) -> torch.Tensor:
        """(N, num_classes): max-pooled ``in_feature`` map -> neck -> dropout -> ``self.fc``."""
        pooled = F.max_pool2d(self.feature_map(batched_inputs), kernel_size=2, stride=2)
        return self.fc(self.dropout(self.neck(pooled)))
