"""
torchvision ImageNet ResNets -> ``projects.common.modeling.ImageClassifier`` built like
``configs/common/models/classifier.py`` (detectron2 ``ResNet``, ``stride_in_1x1=False``, BN).

torchvision's first conv reads RGB; the collection's configs feed BGR, so conv1's input channels
are reversed unless the target reads RGB. The classifier config's pixel mean/std (torchvision's
ImageNet statistics, x255, BGR) are the ones these weights were trained with; detection configs
that start from them need the same ``pixel_std`` (detectron2's MSRA default is 1.0) and
``stride_in_1x1=False`` (the model zoo's R-50 configs use True). Also the reader of the
torchvision-layout ResNets other formats contain (SAN's baselines, DAP's ImageNet-22K classifiers).
"""
import logging
import re
from typing import Mapping

import torch

from .conversion import (
    CLASSIFIER,
    TORCHVISION_INPUT,
    Conversion,
    StateDict,
    drop_step_counters,
    flip_input_channels,
    needs_channel_flip,
    rename_all,
    rule,
)

logger = logging.getLogger(__name__)

_BN = r"(weight|bias|running_mean|running_var|num_batches_tracked)"


def _stage(match: "re.Match") -> int:
    """detectron2's res{N+1} for torchvision's layerN."""
    return int(match.group(1)) + 1


TORCHVISION_RESNET_RULES = [
    rule(r"conv1\.weight", lambda m: "backbone.stem.conv1.weight"),
    rule(rf"bn1\.{_BN}", lambda m: f"backbone.stem.conv1.norm.{m.group(1)}"),
    rule(r"layer([1-4])\.(\d+)\.conv(\d)\.weight",
         lambda m: f"backbone.res{_stage(m)}.{m.group(2)}.conv{m.group(3)}.weight"),
    rule(rf"layer([1-4])\.(\d+)\.bn(\d)\.{_BN}",
         lambda m: f"backbone.res{_stage(m)}.{m.group(2)}.conv{m.group(3)}.norm.{m.group(4)}"),
    rule(r"layer([1-4])\.(\d+)\.downsample\.0\.weight",
         lambda m: f"backbone.res{_stage(m)}.{m.group(2)}.shortcut.weight"),
    rule(rf"layer([1-4])\.(\d+)\.downsample\.1\.{_BN}",
         lambda m: f"backbone.res{_stage(m)}.{m.group(2)}.shortcut.norm.{m.group(3)}"),
    rule(r"fc\.(weight|bias)", lambda m: f"fc.{m.group(1)}"),
]


def is_torchvision_resnet(state: Mapping[str, torch.Tensor]) -> bool:
    """Whether ``state`` has torchvision ResNet names (for formats that may hold one)."""
    return "conv1.weight" in state and "layer1.0.conv1.weight" in state


def torchvision_resnet_to_classifier_state_dict(
    state_dict: Mapping[str, torch.Tensor], input_format: str = "BGR"
) -> StateDict:
    """
    Rename a torchvision ResNet state dict (conv1, bn1, layerN.M.convK/bnK, downsample.0/1, fc)
    to ``ImageClassifier`` names (backbone.stem.conv1(.norm), backbone.res{N+1}.M.convK(.norm),
    backbone.res{N+1}.M.shortcut(.norm), fc). With ``input_format="BGR"`` conv1's input channels
    are reversed so the classifier computes torchvision's logits on BGR images.
    """
    if input_format not in ("BGR", "RGB"):
        raise ValueError(f"input_format={input_format!r}: use one of ('BGR', 'RGB') (the classifier config's)")
    converted, unexpected = rename_all(state_dict, TORCHVISION_RESNET_RULES)
    if unexpected:
        hint = " (strip the 'module.' prefix of DistributedDataParallel first)" if any(
            key.startswith("module.") for key in unexpected
        ) else ""
        raise ValueError(
            f"{len(unexpected)} keys are not torchvision ResNet names (conv1, bn1, layerN.M.convK/bnK, "
            f"layerN.M.downsample.0/1, fc){hint}: {unexpected[:20]}; the input must be the state "
            "dict of a torchvision.models.resnet* model"
        )
    if needs_channel_flip("RGB", input_format):
        converted["backbone.stem.conv1.weight"] = flip_input_channels(converted["backbone.stem.conv1.weight"])
    logger.info("Converted %d torchvision ResNet tensors to ImageClassifier names (%s input)", len(converted),
                input_format)
    return converted


def convert_torchvision(state: Mapping[str, torch.Tensor], input_format: str = "BGR") -> Conversion:
    """A torchvision ResNet as an ImageClassifier (``--from torchvision``)."""
    converted = torchvision_resnet_to_classifier_state_dict(state, input_format)
    conversion = Conversion({}, CLASSIFIER, TORCHVISION_INPUT)
    conversion.state = drop_step_counters(converted, conversion)
    conversion.notes.append("torchvision ResNets put the bottleneck stride in the 3x3 conv: the target ResNet needs "
                            "stride_in_1x1=False (configs/common/models/classifier.py has it)")
    return conversion
