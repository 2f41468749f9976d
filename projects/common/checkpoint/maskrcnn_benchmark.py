"""
The DAP authors' releases (mikuhatsune/dap, built on maskrcnn-benchmark) -> detectron2 names
(``--from maskrcnn-benchmark``): their ImageNet-22K classifiers and their DAP-pre-trained Faster
R-CNN R50/R101-FPN.

Facts from the authors' code and configs (code/compute_box_imagenet22k.py, configs/imagenet*/)
and from maskrcnn-benchmark (modeling/backbone/{resnet,fpn}.py, rpn/rpn.py,
roi_heads/box_head/*, layers/batch_norm.py, utils/checkpoint.py):

* The ImageNet-22K classifiers are torchvision ResNets (21,841 classes) saved as
  ``{"model": DataParallel state dict}``, RGB images normalised with ImageNet's mean and std:
  converted as torchvision ResNets.
* A detector checkpoint is ``{"model": state dict, "optimizer", "scheduler", "iteration"}``
  (``module.`` prefixed after distributed training). Names: ``backbone.body.stem.conv1/bn1``,
  ``backbone.body.layerN.M.convK/bnK/downsample.{0,1}``, ``backbone.fpn.fpn_inner{1-4}`` (laterals)
  and ``fpn_layer{1-4}`` (outputs), ``rpn.head.{conv,cls_logits,bbox_pred}``,
  ``rpn.anchor_generator.cell_anchors.*`` (buffers detectron2 recomputes),
  ``roi_heads.box.feature_extractor.fc6/fc7`` and ``roi_heads.box.predictor.{cls_score,bbox_pred}``.
* Conventions that differ from detectron2: the class-dependent layers have the background at
  index 0 (detectron2: last) and ``bbox_pred`` has 4 rows for the background too (detectron2: none;
  class-agnostic regression, which the IN-22K R101 config uses, has background + one class);
  ``FrozenBatchNorm2d`` computes ``w / sqrt(var)`` without epsilon (converted exactly: the weight
  is scaled by sqrt((var + eps) / var)). Anchors, box coding with the legacy +1 and RoIAlign
  without the half-pixel shift are computed differently by detectron2 (not weights: see MODEL_ZOO.md).
* The IN-1K DAP detectors start from MSRA's caffe ResNets (BGR 0..255 minus Detectron's pixel
  means, std 1, stride in the 1x1 conv); the IN-22K ones from the torchvision-style classifier
  (RGB, ImageNet mean/std, ``TO_BGR255: False``, ``STRIDE_IN_1X1: False``). maskrcnn-benchmark keeps
  the backbone's statistics frozen, so the first have mean 0 / variance 1 in every BN (caffe
  models have no statistics) and the second the classifier's: ``--source-channel-order`` says
  which, and otherwise it is read from them.
"""
import logging
import re
from typing import Mapping, Optional

import torch

from .conversion import (
    CAFFE2_INPUT,
    DETECTOR,
    TORCHVISION_INPUT,
    Conversion,
    add_missing_epsilon,
    flip_input_channels,
    needs_channel_flip,
    reject_unknown_keys,
    rename_all,
    rule,
)
from .torchvision_resnet import convert_torchvision, is_torchvision_resnet

logger = logging.getLogger(__name__)

_BN = r"(weight|bias|running_mean|running_var)"
_BODY = "backbone.body."


def _stage(match: "re.Match") -> int:
    return int(match[1]) + 1


DETECTOR_RULES = [
    rule(r"backbone\.body\.stem\.conv1\.weight", lambda m: "backbone.bottom_up.stem.conv1.weight"),
    rule(rf"backbone\.body\.stem\.bn1\.{_BN}", lambda m: f"backbone.bottom_up.stem.conv1.norm.{m[1]}"),
    rule(r"backbone\.body\.layer([1-4])\.(\d+)\.conv(\d)\.weight",
         lambda m: f"backbone.bottom_up.res{_stage(m)}.{m[2]}.conv{m[3]}.weight"),
    rule(rf"backbone\.body\.layer([1-4])\.(\d+)\.bn(\d)\.{_BN}",
         lambda m: f"backbone.bottom_up.res{_stage(m)}.{m[2]}.conv{m[3]}.norm.{m[4]}"),
    rule(r"backbone\.body\.layer([1-4])\.(\d+)\.downsample\.0\.weight",
         lambda m: f"backbone.bottom_up.res{_stage(m)}.{m[2]}.shortcut.weight"),
    rule(rf"backbone\.body\.layer([1-4])\.(\d+)\.downsample\.1\.{_BN}",
         lambda m: f"backbone.bottom_up.res{_stage(m)}.{m[2]}.shortcut.norm.{m[3]}"),
    rule(r"backbone\.fpn\.fpn_inner([1-4])\.(weight|bias)", lambda m: f"backbone.fpn_lateral{_stage(m)}.{m[2]}"),
    rule(r"backbone\.fpn\.fpn_layer([1-4])\.(weight|bias)", lambda m: f"backbone.fpn_output{_stage(m)}.{m[2]}"),
    rule(r"rpn\.head\.conv\.(weight|bias)", lambda m: f"proposal_generator.rpn_head.conv.{m[1]}"),
    rule(r"rpn\.head\.cls_logits\.(weight|bias)", lambda m: f"proposal_generator.rpn_head.objectness_logits.{m[1]}"),
    rule(r"rpn\.head\.bbox_pred\.(weight|bias)", lambda m: f"proposal_generator.rpn_head.anchor_deltas.{m[1]}"),
    rule(r"roi_heads\.box\.feature_extractor\.fc([67])\.(weight|bias)",
         lambda m: f"roi_heads.box_head.fc{int(m[1]) - 5}.{m[2]}"),
    rule(r"roi_heads\.box\.predictor\.(cls_score|bbox_pred)\.(weight|bias)",
         lambda m: f"roi_heads.box_predictor.{m[1]}.{m[2]}"),
]
_CELL_ANCHORS = re.compile(r"rpn\.anchor_generator\.cell_anchors\.\d+")


def background_last(cls_score: torch.Tensor) -> torch.Tensor:
    """maskrcnn-benchmark's class scores (background first) in detectron2's order (background last)."""
    return torch.cat([cls_score[1:], cls_score[:1]])


def foreground_box_deltas(bbox_pred: torch.Tensor) -> torch.Tensor:
    """maskrcnn-benchmark's per-class box deltas (4 rows per class, background first) without the
    background's rows: detectron2's class-specific regression has none."""
    return bbox_pred[4:]


def backbone_statistics_are_caffe(state: Mapping[str, torch.Tensor]) -> bool:
    """Whether every backbone BN has mean 0 and variance 1: a caffe (MSRA) initialisation."""
    means = [value for key, value in state.items() if key.startswith(_BODY) and key.endswith("running_mean")]
    variances = [value for key, value in state.items() if key.startswith(_BODY) and key.endswith("running_var")]
    return all(bool((m == 0).all()) for m in means) and all(bool((v == 1).all()) for v in variances)


def convert_maskrcnn_benchmark(state: Mapping[str, torch.Tensor], input_format: str = "BGR",
                               source_channel_order: Optional[str] = None) -> Conversion:
    """A DAP ImageNet-22K classifier or DAP Faster R-CNN in detectron2 names."""
    if is_torchvision_resnet(state):
        conversion = convert_torchvision(state, input_format)
        conversion.notes.append("a DAP ImageNet classifier (a torchvision ResNet): class order as the authors' "
                                "ImageNet dataset")
        return conversion
    if _BODY + "stem.conv1.weight" not in state:
        raise ValueError(
            "not a DAP / maskrcnn-benchmark checkpoint: it has neither torchvision ResNet names (conv1.weight, "
            "layer1.0.conv1.weight) nor maskrcnn-benchmark's backbone.body.stem.conv1.weight "
            f"(first keys: {sorted(state)[:6]})"
        )
    if source_channel_order is None:
        caffe = backbone_statistics_are_caffe(state)
        source_channel_order = "BGR" if caffe else "RGB"
        start = "all 0 / 1 (a caffe MSRA start)" if caffe else "learnt (a torchvision-style start)"
        logger.info("Backbone BN statistics %s: the detector was trained on %s images (override with "
                    "--source-channel-order)", start, source_channel_order)
    conversion = Conversion({}, DETECTOR, CAFFE2_INPUT if source_channel_order == "BGR" else TORCHVISION_INPUT)
    anchors = [key for key in state if _CELL_ANCHORS.fullmatch(key)]
    conversion.leave_out("RPN cell anchors, buffers detectron2 computes from the config's anchor sizes", anchors)
    renamed, unknown = rename_all({key: value for key, value in state.items() if key not in anchors}, DETECTOR_RULES)
    reject_unknown_keys(unknown, "maskrcnn-benchmark Faster R-CNN FPN",
                        "backbone.body, backbone.fpn, rpn.head, roi_heads.box.feature_extractor / predictor")
    for key in [key for key in renamed if key.endswith(".norm.running_var")]:
        norm = key[: -len("running_var")]
        renamed[norm + "weight"] = add_missing_epsilon(renamed[norm + "weight"], renamed[key])
    predictor = "roi_heads.box_predictor."
    for name in ("weight", "bias"):
        renamed[f"{predictor}cls_score.{name}"] = background_last(renamed[f"{predictor}cls_score.{name}"])
        renamed[f"{predictor}bbox_pred.{name}"] = foreground_box_deltas(renamed[f"{predictor}bbox_pred.{name}"])
    if needs_channel_flip(source_channel_order, input_format):
        stem = "backbone.bottom_up.stem.conv1.weight"
        renamed[stem] = flip_input_channels(renamed[stem])
    conversion.state = renamed
    num_classes = renamed[f"{predictor}cls_score.bias"].numel() - 1
    if renamed[f"{predictor}bbox_pred.bias"].numel() == 4 and num_classes > 1:
        conversion.notes.append("class-agnostic box regression (CLS_AGNOSTIC_BBOX_REG): the config needs "
                                "model.roi_heads.box_predictor.cls_agnostic_bbox_reg=True")
    conversion.notes.append(
        f"{num_classes} classes (maskrcnn-benchmark's {num_classes + 1} minus the background, now last); "
        + ("MSRA start: stride_in_1x1=True" if source_channel_order == "BGR"
           else "torchvision-style start: stride_in_1x1=False")
        + "; maskrcnn-benchmark pools with ROIAlign (no half-pixel shift) at sampling ratio 2")
    return conversion
