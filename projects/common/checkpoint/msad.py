"""
dvlab-research/MSAD FCOS teachers and students (detectron2 v0.2.1 project) -> the MSAD configs'
``MultiScaleFusionTeacher`` / ``AlignedDistillationStudent`` (``--from msad``).

Facts from the authors' code (msad/arch_t.py, arch_s.py, tower.py, modeling/backbone/fpn.py,
slresnets.py, slimmable_ops.py, config.py, configs/SLR*-50-{T,S}.yaml): detectron2 saves
``{"model": state dict, ...}``. The teacher ``TFCOS`` has ``T_backbone`` (detectron2 ``FPN`` on the
slimmable ResNet-50 ``bottom_up.features``, laterals ``fpn_lateral2..5``, outputs ``fpn_output2..5``,
``top_block.p6/p7`` from res5), ``T_fcos_head`` (``cls_tower`` / ``bbox_tower`` of 4 x (conv, GN,
ReLU), empty ``share_tower``, ``cls_logits``, bias-free ``bbox_pred`` and ``ctrness``, one
``scales.l.scale`` per level) and the fusion ``SE.fc.0`` (512 -> 32) / ``SE.fc.2`` (32 -> 2), both
bias-free. The student ``SFCOS`` adds ``S_backbone`` and ``S_fcos_head`` of the same shapes. The
backbone is slimmable (full-width kernels, one SyncBN per width) and runs at
``MODEL.SLRESNETS.WIDTH_MULT``, whose channels the FPN's lateral convs have: the width is read from
``fpn_lateral2``. Images: detectron2's defaults (BGR 0..255 minus its pixel means, std 1).
"""
import re
from typing import Mapping, Tuple

import torch

from .conversion import (
    DETECTOR,
    DETECTRON2_INPUT,
    Conversion,
    StateDict,
    is_step_counter,
    reject_unknown_keys,
    rename_all,
    rule,
)
from .slimmable import SLIMMABLE_BACKBONE_KEY, slim_resnet, slimmable_widths

FPN_STAGE_CHANNELS = 256
"""res2's channels at width 1 (fpn_lateral2's input channels are int(256 w))."""

_HEAD_RULES = [
    rule(r"(cls_tower|bbox_tower)\.(\d+)\.(weight|bias)", lambda m: f"head.{m[1]}.{m[2]}.{m[3]}"),
    rule(r"cls_logits\.(weight|bias)", lambda m: f"head.cls_logits.{m[1]}"),
    rule(r"bbox_pred\.weight", lambda m: "head.bbox_pred.weight"),
    rule(r"ctrness\.weight", lambda m: "head.centerness.weight"),
]
_FPN_KEY = re.compile(r"(fpn_(lateral|output)[2-5]|top_block\.p[67])\.(weight|bias)")
_FUSION = {"SE.fc.0.weight": "fusion.reduce.weight", "SE.fc.2.weight": "fusion.expand.weight"}


def _width(state: Mapping[str, torch.Tensor], backbone: str) -> float:
    """The width the backbone ran at: fpn_lateral2's input channels are res2's, int(256 w)."""
    lateral = state[f"{backbone}.fpn_lateral2.weight"]
    width = lateral.shape[1] / FPN_STAGE_CHANNELS
    widths = slimmable_widths(state, f"{backbone}.bottom_up.")
    if not any(abs(width - candidate) < 1e-6 for candidate in widths):
        raise ValueError(f"{backbone}.fpn_lateral2 reads {lateral.shape[1]} channels, the res2 of none of the "
                         f"slimmable widths {list(widths)}: the checkpoint is inconsistent")
    return width


def _detector(state: Mapping[str, torch.Tensor], backbone: str, head: str, target: str,
              conversion: Conversion) -> Tuple[StateDict, float]:
    """One FCOS (backbone + head) of the checkpoint under ``target`` (``detector.``...) and its width."""
    width = _width(state, backbone)
    bottom_up = f"{backbone}.bottom_up."
    unknown = [key for key in state if key.startswith(backbone + ".") and not (
        _FPN_KEY.fullmatch(key[len(backbone) + 1:])
        or key.startswith(bottom_up) and SLIMMABLE_BACKBONE_KEY.fullmatch(key[len(bottom_up):]))]
    reject_unknown_keys(unknown, "MSAD FCOS backbone",
                        "bottom_up.features.*, fpn_lateral2..5, fpn_output2..5, top_block.p6/p7")
    out = slim_resnet(state, width, bottom_up, f"{target}backbone.bottom_up.", conversion, flip_channels=False)
    for key, value in state.items():
        if key.startswith(backbone + ".") and _FPN_KEY.fullmatch(key[len(backbone) + 1:]):
            out[f"{target}backbone.{key[len(backbone) + 1:]}"] = value
    head_state = {key[len(head) + 1:]: value for key, value in state.items() if key.startswith(head + ".")}
    scales = sorted((key for key in head_state if re.fullmatch(r"scales\.\d+\.scale", key)),
                    key=lambda key: int(key.split(".")[1]))
    renamed, unknown = rename_all({key: value for key, value in head_state.items() if key not in scales}, _HEAD_RULES)
    reject_unknown_keys([f"{head}.{key}" for key in unknown], "MSAD FCOS head",
                        "cls_tower, bbox_tower, cls_logits, bbox_pred, ctrness, scales.L.scale")
    out.update({target + key: value for key, value in renamed.items()})
    out[f"{target}head.scales"] = torch.cat([head_state[key].reshape(1) for key in scales])
    return out, width


def convert_msad(state: Mapping[str, torch.Tensor]) -> Conversion:
    """An MSAD teacher (``T_*``, ``SE``) or student (plus ``S_*``) in our teacher / student names."""
    if "T_backbone.fpn_lateral2.weight" not in state or "SE.fc.0.weight" not in state:
        raise ValueError(
            "not a dvlab-research/MSAD FCOS checkpoint: it lacks T_backbone.fpn_lateral2.weight or SE.fc.0.weight "
            f"(first keys: {sorted(state)[:6]})"
        )
    known = re.compile(r"(T|S)_(backbone|fcos_head)\..*|SE\.fc\.[02]\.weight")
    reject_unknown_keys([key for key in state if not known.fullmatch(key)], "MSAD", "T_backbone, T_fcos_head, SE, S_*")
    conversion = Conversion({}, DETECTOR, DETECTRON2_INPUT)
    conversion.leave_out("BN step counters num_batches_tracked, unused at inference",
                         [key for key in state if is_step_counter(key)])
    student = "S_backbone.fpn_lateral2.weight" in state
    teacher_target = "teacher." if student else ""
    teacher, width = _detector(state, "T_backbone", "T_fcos_head", teacher_target + "detector.", conversion)
    converted = dict(teacher)
    converted.update({teacher_target + name: state[key] for key, name in _FUSION.items()})
    if student:
        student_state, student_width = _detector(state, "S_backbone", "S_fcos_head", "detector.", conversion)
        if student_width != width:
            raise ValueError(f"the student's backbone has width {student_width} but its teacher's {width}: the MSAD "
                             "configs need one width for both")
        converted.update(student_state)
    conversion.state = converted
    conversion.notes.append(f"{'student' if student else 'teacher'} of width {width}: use the config with "
                            f"model.{teacher_target}detector.backbone.width={width}"
                            + (f" model.detector.backbone.width={width}" if student else "")
                            + " and the slimmable bottleneck's stride in the 3x3 conv (stride_in_1x1=False)")
    return conversion
