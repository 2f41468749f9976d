"""
Fitting a conversion to the model it is meant for, and proving that it loads there.

A classifier's backbone also initialises detectors: ``place_backbone`` moves ``backbone.*`` under
the detector's backbone prefix (``backbone.bottom_up.`` in an FPN, ``detector.backbone.bottom_up.``
in an MSAD teacher), found in the model of a config by ``find_backbone_prefix``. ``check_loads``
loads the result with detectron2's ``DetectionCheckpointer`` and fails on any unexpected key, any
shape mismatch and any missing key, except, for a backbone initialisation, the keys outside the
backbone (heads that start from the config's initialisation), which are listed.
"""
import logging
from typing import List, Mapping, Optional, Sequence, Tuple

import torch
from fvcore.common.checkpoint import _filter_reused_missing_keys
from torch import nn

from detectron2.checkpoint import DetectionCheckpointer

from .conversion import CLASSIFIER, Conversion, StateDict

logger = logging.getLogger(__name__)

CLASSIFIER_BACKBONE_PREFIX = "backbone."
FPN_BACKBONE_PREFIX = "backbone.bottom_up."


def classifier_to_detection_state_dict(classifier_state: Mapping[str, torch.Tensor], fpn: bool) -> StateDict:
    """Rename the classifier's ``backbone.*`` weights to the detector's bottom-up
    (``backbone.bottom_up.*`` if ``fpn`` else ``backbone.*``); drop the rest (the fc), logging it."""
    target_prefix = FPN_BACKBONE_PREFIX if fpn else CLASSIFIER_BACKBONE_PREFIX
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
            "--from torchvision)"
        )
    logger.info(
        "Converted %d backbone tensors to '%s*'; dropped %d: %s",
        len(converted), target_prefix, len(dropped), ", ".join(dropped) or "nothing",
    )
    return converted


def place_backbone(conversion: Conversion, backbone_prefix: str, keep: Sequence[str] = ()) -> Conversion:
    """The classifier ``conversion`` as a detector initialisation: ``backbone.*`` under
    ``backbone_prefix``, the keys in ``keep`` (e.g. a neck the detector shares) unchanged, the rest
    (the ImageNet fc) left out."""
    if conversion.kind != CLASSIFIER:
        raise ValueError(
            f"a {conversion.kind} checkpoint is a whole model, not a backbone: load it into the config it was "
            "converted for (drop --fpn / --backbone-prefix)"
        )
    state, dropped = {}, []
    for key, value in conversion.state.items():
        if key.startswith(CLASSIFIER_BACKBONE_PREFIX):
            state[backbone_prefix + key[len(CLASSIFIER_BACKBONE_PREFIX):]] = value
        elif key in keep:
            state[key] = value
        else:
            dropped.append(key)
    placed = Conversion(state, CLASSIFIER, conversion.input,
                        {reason: list(keys) for reason, keys in conversion.left_out.items()}, list(conversion.notes))
    placed.leave_out(f"not part of the detector's backbone (placed under '{backbone_prefix}')", dropped)
    return placed


def find_backbone_prefix(backbone: Mapping[str, torch.Tensor], model_state: Mapping[str, torch.Tensor]) -> List[str]:
    """Every prefix P under which the model has each backbone tensor k (``stem.conv1.weight``...)
    as P + k, with its shape."""
    probe = next(iter(backbone))
    candidates = [key[: len(key) - len(probe)] for key in model_state if key.endswith(probe)]
    def holds_backbone(prefix: str) -> bool:
        return all(prefix + key in model_state and model_state[prefix + key].shape == value.shape
                   for key, value in backbone.items())

    return [prefix for prefix in candidates if (prefix == "" or prefix.endswith(".")) and holds_backbone(prefix)]


def fit_to_model(conversion: Conversion, model: nn.Module,
                 backbone_prefix: Optional[str] = None) -> Tuple[Conversion, Optional[str]]:
    """``(conversion as it loads into model, backbone prefix or None)``: unchanged (None) when
    its keys are the model's, else a classifier's backbone placed where the model keeps one
    (``backbone_prefix`` or the one found), a backbone initialisation."""
    model_state = model.state_dict()
    if backbone_prefix is None and set(conversion.state) <= set(model_state):
        return conversion, None
    if conversion.kind != CLASSIFIER:
        return conversion, None  # a whole model: check_loads names what does not fit
    backbone = {key[len(CLASSIFIER_BACKBONE_PREFIX):]: value for key, value in conversion.state.items()
                if key.startswith(CLASSIFIER_BACKBONE_PREFIX)}
    if backbone_prefix is None:
        prefixes = find_backbone_prefix(backbone, model_state)
        if len(prefixes) != 1:
            found = f"it has one under each of {prefixes}" if prefixes else "it has none"
            raise ValueError(
                f"the config's {type(model).__name__} must have exactly one backbone with the checkpoint's "
                f"{len(backbone)} backbone tensors and shapes (e.g. {next(iter(backbone))}), but {found}: "
                + ("choose one with --backbone-prefix" if prefixes else
                   "convert for a config whose backbone has the checkpoint's architecture, depth and width")
            )
        backbone_prefix = prefixes[0]
    keep = [key for key, value in conversion.state.items() if not key.startswith(CLASSIFIER_BACKBONE_PREFIX)
            and key in model_state and model_state[key].shape == value.shape]
    return place_backbone(conversion, backbone_prefix, keep), backbone_prefix


def check_loads(state: StateDict, model: nn.Module, initialised_prefix: Optional[str] = None) -> List[str]:
    """
    Load ``state`` into ``model`` as ``DetectionCheckpointer`` does. Unexpected keys, shapes that
    differ and missing keys are an error naming them, except, when ``initialised_prefix`` is
    given (a backbone initialisation), missing keys outside it: those are returned.
    """
    incompatible = DetectionCheckpointer(model)._load_model({"model": dict(state)})
    missing = sorted(_filter_reused_missing_keys(model, incompatible.missing_keys))
    problems = []
    if incompatible.unexpected_keys:
        problems.append(f"{len(incompatible.unexpected_keys)} keys the model does not have: "
                        f"{sorted(incompatible.unexpected_keys)[:10]}")
    if incompatible.incorrect_shapes:
        shapes = [f"{key}: {tuple(saved)} converted, {tuple(wanted)} in the model"
                  for key, saved, wanted in incompatible.incorrect_shapes]
        problems.append(f"{len(shapes)} shapes differ: {shapes[:6]}")
    required = [key for key in missing if initialised_prefix is None or key.startswith(initialised_prefix)]
    if required:
        problems.append(f"{len(required)} model tensors the checkpoint does not set: {required[:10]}")
    if problems:
        raise ValueError(
            f"the converted checkpoint does not load into the config's {type(model).__name__}: "
            + "; ".join(problems)
            + ". Check that the config matches the checkpoint (depth, width, number of classes, resolutions) "
            "and give it the overrides that make it so"
        )
    return [key for key in missing if key not in required]
