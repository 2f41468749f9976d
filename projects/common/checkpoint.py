"""
Weight conversions between the collection's models: the one home for checkpoint formats.

* torchvision ImageNet ResNet -> ``projects.common.modeling.ImageClassifier`` built like
  ``configs/common/models/classifier.py`` (detectron2 ``ResNet``, ``stride_in_1x1=False``, BN):
  ``torchvision_resnet_to_classifier_state_dict``. torchvision's first conv reads RGB; the
  collection's configs feed BGR, so the conversion reverses conv1's input channels unless told
  ``input_format="RGB"``. The classifier config's pixel mean/std (torchvision's ImageNet
  statistics, x255, BGR) are the ones these weights were trained with; detection configs that
  start from them need the same ``pixel_std`` (detectron2's MSRA default is 1.0) and
  ``stride_in_1x1=False`` (the model zoo's R-50 configs use True).
* ImageClassifier -> detection backbone: a checkpoint saved by detectron2's
  ``DetectionCheckpointer`` holds ``{"model": {"backbone.<...>": ..., "fc.weight", "fc.bias"}, ...}``.
  Detection models keep the same backbone under ``backbone.bottom_up.`` (FPN) or ``backbone.``
  (plain C4/DC5 backbones): ``classifier_to_detection_state_dict``.

Written files hold ``{"model": state_dict}`` only and load with ``DetectionCheckpointer`` /
``train.init_checkpoint``:

    python -m projects.common.checkpoint --from-torchvision --input resnet50.pth --output cls.pth
    python -m projects.common.checkpoint --input cls.pth --output det.pth [--fpn]
"""
import argparse
import logging
import re
from typing import Dict

import torch

from .io import atomic_output

__all__ = [
    "classifier_to_detection_state_dict",
    "convert_classifier_checkpoint",
    "convert_torchvision_checkpoint",
    "load_model_state_dict",
    "save_model_state_dict",
    "torchvision_resnet_to_classifier_state_dict",
]

logger = logging.getLogger(__name__)

CLASSIFIER_BACKBONE_PREFIX = "backbone."
INPUT_FORMATS = ("BGR", "RGB")

_BN_SUFFIX = r"(weight|bias|running_mean|running_var|num_batches_tracked)"
# (torchvision name pattern, ImageClassifier name template); layerN is detectron2's res{N+1}.
_TORCHVISION_RESNET_RENAMES = [
    (re.compile(r"conv1\.weight"), "backbone.stem.conv1.weight"),
    (re.compile(rf"bn1\.{_BN_SUFFIX}"), "backbone.stem.conv1.norm.{0}"),
    (re.compile(r"layer([1-4])\.(\d+)\.conv(\d)\.weight"), "backbone.res{stage}.{1}.conv{2}.weight"),
    (re.compile(rf"layer([1-4])\.(\d+)\.bn(\d)\.{_BN_SUFFIX}"), "backbone.res{stage}.{1}.conv{2}.norm.{3}"),
    (re.compile(r"layer([1-4])\.(\d+)\.downsample\.0\.weight"), "backbone.res{stage}.{1}.shortcut.weight"),
    (re.compile(rf"layer([1-4])\.(\d+)\.downsample\.1\.{_BN_SUFFIX}"), "backbone.res{stage}.{1}.shortcut.norm.{2}"),
    (re.compile(r"fc\.(weight|bias)"), "fc.{0}"),
]


def _classifier_name(torchvision_name: str):
    """ImageClassifier name of a torchvision ResNet parameter/buffer, None if it is not one."""
    for pattern, template in _TORCHVISION_RESNET_RENAMES:
        match = pattern.fullmatch(torchvision_name)
        if match:
            groups = match.groups()
            stage = int(groups[0]) + 1 if torchvision_name.startswith("layer") else None
            return template.format(*groups, stage=stage)
    return None


def torchvision_resnet_to_classifier_state_dict(
    state_dict: Dict[str, torch.Tensor], input_format: str = "BGR"
) -> Dict[str, torch.Tensor]:
    """
    Rename a torchvision ResNet state dict (conv1, bn1, layerN.M.convK/bnK, downsample.0/1, fc)
    to ``ImageClassifier`` names (backbone.stem.conv1(.norm), backbone.res{N+1}.M.convK(.norm),
    backbone.res{N+1}.M.shortcut(.norm), fc). With ``input_format="BGR"`` conv1's input channels
    are reversed so the classifier computes torchvision's logits on BGR images.
    """
    if input_format not in INPUT_FORMATS:
        raise ValueError(f"input_format={input_format!r}: use one of {INPUT_FORMATS} (the classifier config's)")
    converted, unexpected = {}, []
    for key, value in state_dict.items():
        new_key = _classifier_name(key)
        if new_key is None:
            unexpected.append(key)
        else:
            converted[new_key] = value
    if unexpected:
        hint = " (strip the 'module.' prefix of DistributedDataParallel first)" if any(
            key.startswith("module.") for key in unexpected
        ) else ""
        raise ValueError(
            f"{len(unexpected)} keys are not torchvision ResNet names (conv1, bn1, layerN.M.convK/bnK, "
            f"layerN.M.downsample.0/1, fc){hint}: {unexpected[:20]}; the input must be the state "
            "dict of a torchvision.models.resnet* model"
        )
    if input_format == "BGR":
        converted["backbone.stem.conv1.weight"] = converted["backbone.stem.conv1.weight"].flip(1)
    logger.info("Converted %d torchvision ResNet tensors to ImageClassifier names (%s input)", len(converted),
                input_format)
    return converted


def classifier_to_detection_state_dict(
    classifier_state: Dict[str, torch.Tensor], fpn: bool
) -> Dict[str, torch.Tensor]:
    """Rename the classifier's ``backbone.*`` weights to the detector's bottom-up
    (``backbone.bottom_up.*`` if ``fpn`` else ``backbone.*``); drop the rest (the fc), logging it."""
    target_prefix = "backbone.bottom_up." if fpn else "backbone."
    converted, dropped = {}, []
    for key, value in classifier_state.items():
        if key.startswith(CLASSIFIER_BACKBONE_PREFIX):
            converted[target_prefix + key[len(CLASSIFIER_BACKBONE_PREFIX):]] = value
        else:
            dropped.append(key)
    if not converted:
        raise ValueError(
            f"no '{CLASSIFIER_BACKBONE_PREFIX}*' weights among the {len(classifier_state)} keys "
            f"(first: {sorted(classifier_state)[:5]}): the input must be an ImageClassifier "
            "checkpoint saved by DetectionCheckpointer (convert torchvision weights first with "
            "--from-torchvision)"
        )
    logger.info(
        "Converted %d backbone tensors to '%s*'; dropped %d: %s",
        len(converted), target_prefix, len(dropped), ", ".join(dropped) or "nothing",
    )
    return converted


def load_model_state_dict(path: str) -> Dict[str, torch.Tensor]:
    """The model weights of a checkpoint file: its ``"model"`` entry, or the file itself if it is
    a plain state dict (torchvision's files)."""
    # Our own training checkpoints also hold optimizer/scheduler state, which needs full unpickling.
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    state = checkpoint.get("model", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise ValueError(f"{path} does not hold a state dict (a dict, or a dict under 'model')")
    return state


def save_model_state_dict(state: Dict[str, torch.Tensor], path: str) -> None:
    """Write ``{"model": state}`` to ``path`` atomically (temporary file + ``os.replace``), so an
    interrupted run never leaves a truncated checkpoint where a training config expects one."""
    with atomic_output(path) as f:
        torch.save({"model": state}, f)
    logger.info("Wrote %s", path)


def convert_classifier_checkpoint(input_path: str, output_path: str, fpn: bool) -> Dict[str, torch.Tensor]:
    """Read an ImageClassifier checkpoint, write ``{"model": detection weights}`` to
    ``output_path`` (loadable by ``DetectionCheckpointer`` / ``train.init_checkpoint``)."""
    converted = classifier_to_detection_state_dict(load_model_state_dict(input_path), fpn=fpn)
    save_model_state_dict(converted, output_path)
    return converted


def convert_torchvision_checkpoint(
    input_path: str, output_path: str, input_format: str = "BGR"
) -> Dict[str, torch.Tensor]:
    """Read a torchvision ResNet checkpoint, write ``{"model": ImageClassifier weights}``."""
    converted = torchvision_resnet_to_classifier_state_dict(
        load_model_state_dict(input_path), input_format=input_format
    )
    save_model_state_dict(converted, output_path)
    return converted


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Convert torchvision ResNet weights into an ImageClassifier checkpoint "
        "(--from-torchvision), or an ImageClassifier checkpoint into detection backbone weights."
    )
    parser.add_argument(
        "--input", required=True, help="ImageClassifier checkpoint, or torchvision ResNet weights with --from-torchvision (.pth)"
    )
    parser.add_argument("--output", required=True, help="where to write the converted weights (.pth)")
    parser.add_argument("--fpn", action="store_true", help="target an FPN detector (backbone.bottom_up.*)")
    parser.add_argument(
        "--from-torchvision", action="store_true",
        help="the input is a torchvision ResNet state dict; write an ImageClassifier checkpoint",
    )
    parser.add_argument(
        "--input-format", choices=INPUT_FORMATS,
        help="with --from-torchvision: channel order the classifier is fed (default BGR, as the configs)",
    )
    args = parser.parse_args(argv)
    if args.from_torchvision and args.fpn:
        parser.error(
            "--fpn converts an ImageClassifier checkpoint: run --from-torchvision first, then convert "
            "its output with --fpn"
        )
    if args.input_format is not None and not args.from_torchvision:
        parser.error("--input-format only applies with --from-torchvision")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.from_torchvision:
        convert_torchvision_checkpoint(args.input, args.output, input_format=args.input_format or "BGR")
    else:
        convert_classifier_checkpoint(args.input, args.output, fpn=args.fpn)


if __name__ == "__main__":
    main()
