"""
Caffe2 / Detectron ``.pkl`` ImageNet models -> ``ImageClassifier`` names; ``--from detectron``:
detectron2's MSRA R-50/R-101 (``detectron2://ImageNetPretrained/MSRA/R-*.pkl``, Detectron's
``R-50.pkl``), the plain baselines' initialisation. Blobs ``conv1_w`` (+ ``conv1_b``),
``res_conv1_bn_{s,b}``, ``resS_B_branch2{a,b,c}_w`` / ``_bn_{s,b}``, ``resS_B_branch1*`` (projection),
``fc1000_{w,b}``. BGR 0..255 minus the pixel means, std 1, stride in the 1x1 conv.
(``convert_caffe2_blobs`` also serves DRN-WSOD's Caffe2 files, see ``drn_wsod``.)

A Caffe2 ``AffineChannel`` (``_bn_s``, ``_bn_b``: the folded BN of ImageNet training) becomes a BN
with mean 0 and variance ``1 - eps`` (exact in detectron2's BN). Running statistics blobs
(``_bn_rm``, ``_bn_riv``), which the affine channels ignore, are left out; a conv's bias before an
affine channel (MSRA's ``conv1_b``) is folded exactly into the BN shift.
"""
import re
from typing import Callable, Dict, Mapping, Optional

import torch

from .conversion import (
    CLASSIFIER,
    DETECTRON2_INPUT,
    Conversion,
    InputConvention,
    StateDict,
    flip_input_channels,
    frozen_bn_from_affine,
    needs_channel_flip,
    reject_unknown_keys,
)

_BLOB = re.compile(r"(?P<layer>.+?)_(?P<param>w|b|bn_s|bn_b|bn_rm|bn_riv)")
_BRANCHES = {"branch1": "shortcut", "branch2a": "conv1", "branch2b": "conv2", "branch2c": "conv3"}
_STAGE_LAYER = re.compile(r"res([2-5])_(\d+)_(branch1|branch2[abc])")


def caffe2_stage_layer(layer: str) -> Optional[str]:
    """Our module (``backbone.resS.B.convK`` / ``.shortcut``) of a Caffe2 ResNet block layer
    (``resS_B_branch2a..c`` / ``branch1``), None for other layers."""
    match = _STAGE_LAYER.fullmatch(layer)
    return f"backbone.res{match[1]}.{match[2]}.{_BRANCHES[match[3]]}" if match else None


def _msra_layer(layer: str) -> Optional[str]:
    """Our module of a Detectron MSRA ResNet layer (None: not one of its layers)."""
    names = {"conv1": "backbone.stem.conv1", "res_conv1": "backbone.stem.conv1", "fc1000": "fc"}
    return names.get(layer) or caffe2_stage_layer(layer)


def convert_caffe2_blobs(blobs: Mapping[str, torch.Tensor], layer_name: Callable[[str], Optional[str]],
                         first_conv: str, input_convention: InputConvention, input_format: str, format_name: str,
                         expected: str) -> Conversion:
    """Caffe2 blobs in our names (``layer_name``: Caffe2 layer -> our module, None if unknown):
    ``_w`` / ``_b`` of convs and FCs, affine channels as BN, the first conv flipped for RGB input."""
    by_layer: Dict[str, Dict[str, torch.Tensor]] = {}
    unknown = []
    for key, value in blobs.items():
        match = _BLOB.fullmatch(key)
        module = layer_name(match["layer"]) if match else None
        if module is None:
            unknown.append(key)
        else:
            by_layer.setdefault(module, {})[match["param"]] = value
    reject_unknown_keys(unknown, format_name, expected)
    conversion = Conversion({}, CLASSIFIER, input_convention)
    state: StateDict = {}
    statistics = [key for key in blobs if key.endswith(("_bn_rm", "_bn_riv"))]
    conversion.leave_out("BN running statistics blobs, which Caffe2's affine channels (_bn_s, _bn_b) do not use",
                         statistics)
    for module, params in by_layer.items():
        if "w" in params:
            state[module + ".weight"] = params["w"]
        if "bn_s" in params:
            shift = params["bn_b"]
            if "b" in params:  # a conv bias before the affine channel: s (x + b) + t = s x + (s b + t)
                shift = shift + params["bn_s"] * params.pop("b")
                conversion.notes.append(f"{module}: the conv bias is folded into its BN shift")
            state.update(frozen_bn_from_affine(params["bn_s"], shift, module + ".norm."))
        elif "b" in params:
            state[module + ".bias"] = params["b"]
    if needs_channel_flip("BGR", input_format):
        state[first_conv] = flip_input_channels(state[first_conv])
    conversion.state = state
    return conversion


def convert_detectron(blobs: Mapping[str, torch.Tensor], input_format: str = "BGR") -> Conversion:
    """Detectron / detectron2 MSRA ResNet ``.pkl`` as an ImageClassifier (``--from detectron``)."""
    if "conv1_w" not in blobs or "res_conv1_bn_s" not in blobs:
        raise ValueError("not a Detectron MSRA ResNet .pkl: it lacks conv1_w / res_conv1_bn_s "
                         f"(first keys: {sorted(blobs)[:6]})")
    conversion = convert_caffe2_blobs(blobs, _msra_layer, "backbone.stem.conv1.weight", DETECTRON2_INPUT, input_format,
                                "Detectron MSRA ResNet", "conv1, res_conv1_bn, resS_B_branch1/2a/2b/2c, fc1000")
    conversion.notes.append("MSRA ResNets put the bottleneck stride in the 1x1 conv: stride_in_1x1=True")
    return conversion
