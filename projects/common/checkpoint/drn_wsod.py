"""
shenyunhang/DRN-WSOD checkpoints -> ``projects.resnet_ws`` models (``--from drn-wsod``):

* The published ImageNet ResNet18/50/101-WS (``resnet{18,50,101}_ws_model_120.pkl``), Caffe2 blobs
  of the authors' Caffe2 code (DRN-WSOD, detectron/modeling/ResNet_WS.py): the deep stem
  ``conv1_{1,2,3}`` (3x3 convs, each with ``_bn``), the stages' ``resS_B_branch2{a,b}`` (basic) or
  ``branch2{a,b,c}`` (bottleneck) and ``branch1`` projections, the adaptation neck ``fc6`` / ``fc7``
  and the 1000-way classifier (``fc8``, or ``pred`` as in Detectron's ImageNet models). Their
  detectron2 fork loads the same file after renaming ``conv1_N`` to ``stem_convN`` and ``fcN`` to
  ``fc(N-5)`` (DRN-WSOD-pytorch, projects/WSL/tools/convert_resnet_ws_c2.py). -> ``NeckClassifier``.
* WSOD detectors trained with the authors' detectron2 fork (DRN-WSOD-pytorch, projects/WSL; none
  is published): ``backbone.*`` with our ResNet-WS names, the neck ``roi_heads.box_head.fc1/fc2``,
  WSDDN's ``roi_heads.box_predictor.cls/det`` and OICR's ``roi_heads.box_refinery_k.{cls_score,
  bbox_pred}`` (background last, as ours). Every refinement branch builds a ``bbox_pred``; the
  authors' configs regress with the last of 4 branches (``REFINE_REG [False, False, False, True]``)
  or not at all (3 branches): the others are left out. -> ``WeaklySupervisedRCNN``.

Images: BGR 0..255 minus Detectron's pixel means, std 1, in both code bases.
"""
import re
from typing import Mapping, Optional

import torch

from .caffe2 import caffe2_stage_layer, convert_caffe2_blobs
from .conversion import (
    CAFFE2_INPUT,
    DETECTOR,
    Conversion,
    drop_step_counters,
    flip_input_channels,
    needs_channel_flip,
    reject_unknown_keys,
    rename_all,
    rule,
)

REGRESSING_BRANCHES = 4
"""The authors' OICR+REG configs have 4 refinement branches, the last regressing boxes."""


def _resnet_ws_layer(layer: str) -> Optional[str]:
    """Our module of a Caffe2 ResNet-WS layer (ImageClassifier + neck names of projects.resnet_ws)."""
    stem = re.fullmatch(r"conv1_([123])", layer)
    if stem:
        return f"backbone.stem.conv{stem[1]}"
    names = {"fc6": "neck.layers.0", "fc7": "neck.layers.3", "fc8": "fc", "pred": "fc"}
    return names.get(layer) or caffe2_stage_layer(layer)


def _convert_imagenet(blobs: Mapping[str, torch.Tensor], input_format: str) -> Conversion:
    conversion = convert_caffe2_blobs(blobs, _resnet_ws_layer, "backbone.stem.conv1.weight", CAFFE2_INPUT,
                                      input_format, "DRN-WSOD ResNet-WS", "conv1_1..3, resS_B_branch1/2a/2b/2c, fc6, "
                                      "fc7, fc8 / pred")
    conversion.notes.append("the classification form of ResNet-WS (output stride 16, 2x2 max-pool before the neck); "
                            "its backbone.* and neck.* also load into the WSOD detectors")
    return conversion


def _convert_detector(state: Mapping[str, torch.Tensor], input_format: str) -> Conversion:
    conversion = Conversion({}, DETECTOR, CAFFE2_INPUT)
    state = drop_step_counters(state, conversion)
    normalisation = [key for key in ("pixel_mean", "pixel_std") if key in state]
    conversion.leave_out("pixel statistics, which our configs set", normalisation)
    branches = sorted({int(m[1]) for key in state for m in [re.match(r"roi_heads\.box_refinery_(\d+)\.", key)] if m})
    head = "head.mil." if branches else "head."
    regressing = branches[-1] if len(branches) == REGRESSING_BRANCHES else None
    unused = [key for key in state if re.fullmatch(r"roi_heads\.box_refinery_\d+\.bbox_pred\.(weight|bias)", key)
              and not key.startswith(f"roi_heads.box_refinery_{regressing}.")]
    conversion.leave_out("box regression of refinement branches that do not regress (REFINE_REG False)", unused)
    rules = [
        rule(r"(backbone\.(stem|res[2-5])\..*)", lambda m: m[1]),
        rule(r"roi_heads\.box_head\.fc([12])\.(weight|bias)", lambda m: f"neck.layers.{3 * (int(m[1]) - 1)}.{m[2]}"),
        rule(r"roi_heads\.box_predictor\.cls\.(weight|bias)", lambda m: f"{head}classification_stream.{m[1]}"),
        rule(r"roi_heads\.box_predictor\.det\.(weight|bias)", lambda m: f"{head}detection_stream.{m[1]}"),
        rule(r"roi_heads\.box_refinery_(\d+)\.cls_score\.(weight|bias)", lambda m: f"head.refinements.{m[1]}.{m[2]}"),
        rule(rf"roi_heads\.box_refinery_{regressing}\.bbox_pred\.(weight|bias)", lambda m: f"head.box_deltas.{m[1]}"),
    ]
    conversion.state, unknown = rename_all(
        {key: value for key, value in state.items() if key not in unused and key not in normalisation}, rules)
    reject_unknown_keys(unknown, "DRN-WSOD WSOD detector", "backbone, roi_heads.box_head.fc1/fc2, "
                        "roi_heads.box_predictor.cls/det, roi_heads.box_refinery_K")
    if needs_channel_flip("BGR", input_format):
        stem = "backbone.stem.conv1.weight"
        conversion.state[stem] = flip_input_channels(conversion.state[stem])
    kind = "OICR+REG" if regressing is not None else f"OICR ({len(branches)} refinements)" if branches else "WSDDN"
    conversion.notes.append(f"a {kind} detector: use the matching config (voc07_{'wsddn' if not branches else 'oicr'}"
                            f"{'_reg' if regressing is not None else ''}_R*_WS.py)")
    return conversion


def convert_drn_wsod(state: Mapping[str, torch.Tensor], input_format: str = "BGR") -> Conversion:
    """A DRN-WSOD ImageNet ``.pkl`` or WSOD detector in the collection's ResNet-WS names."""
    if "conv1_1_w" in state and "fc6_w" in state:
        return _convert_imagenet(state, input_format)
    if "roi_heads.box_head.fc1.weight" in state and "backbone.stem.conv1.weight" in state:
        return _convert_detector(state, input_format)
    raise ValueError(
        "not a DRN-WSOD checkpoint: it has neither the Caffe2 ImageNet model's conv1_1_w and fc6_w "
        "(resnet*_ws_model_120.pkl) nor a WSOD detector's backbone.stem.conv1.weight and roi_heads.box_head.fc1.weight "
        f"(first keys: {sorted(state)[:6]})"
    )
