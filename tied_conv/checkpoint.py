"""ImageNet-trained (Tied)ResNet classifiers -> detection backbone initialisation.

A checkpoint of ``projects.common.modeling.ImageClassifier`` saved by detectron2's
``DetectionCheckpointer`` holds ``{"model": {"backbone.<...>": ..., "fc.weight", "fc.bias"}, ...}``.
Detection models keep the same backbone under ``backbone.bottom_up.`` (FPN) or ``backbone.``
(plain C4/DC5 backbones). The converted file loads with ``train.init_checkpoint``:

    python -m tied_conv.checkpoint --input cls.pth --output det.pth [--fpn]
"""
import argparse
import logging
from typing import Dict

import torch

__all__ = ["classifier_to_detection_state_dict", "convert_classifier_checkpoint"]

logger = logging.getLogger(__name__)

CLASSIFIER_BACKBONE_PREFIX = "backbone."


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
            "checkpoint saved by DetectionCheckpointer"
        )
    logger.info(
        "Converted %d backbone tensors to '%s*'; dropped %d: %s",
        len(converted), target_prefix, len(dropped), ", ".join(dropped) or "nothing",
    )
    return converted


def convert_classifier_checkpoint(input_path: str, output_path: str, fpn: bool) -> Dict[str, torch.Tensor]:
    """Read an ImageClassifier checkpoint, write ``{"model": detection weights}`` to
    ``output_path`` (loadable by ``DetectionCheckpointer`` / ``train.init_checkpoint``)."""
    # Our own training checkpoints also hold optimizer/scheduler state, which needs full unpickling.
    checkpoint = torch.load(input_path, map_location="cpu", weights_only=False)
    state = checkpoint.get("model", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise ValueError(f"{input_path} does not hold a state dict (a dict, or a dict under 'model')")
    converted = classifier_to_detection_state_dict(state, fpn=fpn)
    torch.save({"model": converted}, output_path)
    logger.info("Wrote %s", output_path)
    return converted


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Convert an ImageClassifier checkpoint into detection backbone weights."
    )
    parser.add_argument("--input", required=True, help="classification checkpoint (.pth)")
    parser.add_argument("--output", required=True, help="where to write the detection weights (.pth)")
    parser.add_argument("--fpn", action="store_true", help="target an FPN detector (backbone.bottom_up.*)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    convert_classifier_checkpoint(args.input, args.output, fpn=args.fpn)


if __name__ == "__main__":
    main()
