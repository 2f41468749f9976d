"""
Slimmable ResNet-50 of JiahuiYu/slimmable_networks (MSAD's ImageNet initialisation) -> a plain
ResNet of one width (``--from slimmable --width W``).

Facts from the authors' code (models/s_resnet.py, models/slimmable_ops.py, train.py,
apps/s_resnet50_train_val.yml): ``train.py`` saves ``{"model": DataParallel state dict}``.
``features.0`` is the stem (``SlimmableConv2d`` 7x7 + ``SwitchableBatchNorm2d``), ``features.k``
(k >= 1) the bottlenecks in order (``body.0/3/6`` the 1x1, 3x3 (the block's stride) and 1x1
convs, ``body.1/4/7`` their BNs, ``shortcut.0/1`` the projection of each stage's first block),
``classifier.0`` the fc. A slimmable conv keeps the full-width kernel and runs at width w on its
first ``C_out(w)`` filters of the first ``C_in(w)`` channels; a switchable BN keeps one
``nn.BatchNorm2d`` per width (``bn.i`` for the i-th of ``width_mult_list`` = 0.25, 0.5, 0.75, 1.0),
whose channel counts tell the widths: ``C(w) = int(C * w)``. So a width's ResNet is: every kernel
sliced to its channels, and BN ``i`` of that width. Images: RGB in [0, 1] normalised with
ImageNet's mean and std; the bottleneck stride is in the 3x3 conv (``stride_in_1x1=False``).
"""
import re
from typing import List, Mapping, Sequence, Tuple

import torch

from .conversion import (
    CLASSIFIER,
    TORCHVISION_INPUT,
    Conversion,
    StateDict,
    copy_bn,
    flip_input_channels,
    is_step_counter,
    needs_channel_flip,
    reject_unknown_keys,
)

BLOCKS_PER_STAGE = {16: (3, 4, 6, 3), 33: (3, 4, 23, 3), 50: (3, 8, 36, 3)}
"""Bottlenecks of the slimmable ResNet-50/101/152 (``block_setting_dict``) by their total number."""
_BODY_CONVS = ((0, 1, "conv1"), (3, 4, "conv2"), (6, 7, "conv3"))
SLIMMABLE_BACKBONE_KEY = re.compile(r"features\.0\.[01]\..*|features\.\d+\.(body|shortcut)\.\d\..*")
"""Keys of the slimmable ResNet's ``features`` (stem, bottlenecks and projections)."""
_CLASSIFIER_KEY = re.compile(r"classifier\.0\.(weight|bias)")


def slimmable_widths(state: Mapping[str, torch.Tensor], prefix: str = "") -> Tuple[float, ...]:
    """The widths of a slimmable ResNet, from the channels of its stem's switchable BNs (int(64 w))."""
    sizes, index = [], 0
    while f"{prefix}features.0.1.bn.{index}.weight" in state:
        sizes.append(state[f"{prefix}features.0.1.bn.{index}.weight"].numel())
        index += 1
    if not sizes:
        raise ValueError(
            f"no switchable BN {prefix}features.0.1.bn.0 in the checkpoint: it is not a slimmable ResNet of "
            "JiahuiYu/slimmable_networks (models/s_resnet.py)"
        )
    return tuple(size / 64 for size in sizes)


def width_index(widths: Sequence[float], width: float) -> int:
    """Which switchable BN serves ``width``; an error listing the checkpoint's widths otherwise."""
    for index, candidate in enumerate(widths):
        if abs(candidate - width) < 1e-6:
            return index
    raise ValueError(f"width {width} is not one of the checkpoint's slimmable widths {list(widths)}: use one of them")


def _block_names(state: Mapping[str, torch.Tensor], prefix: str) -> List[Tuple[int, str]]:
    """(features index, detectron2 block name "resS.B") of every bottleneck, in order."""
    body = re.compile(rf"{re.escape(prefix)}features\.(\d+)\.body\.")
    indices = sorted({int(match[1]) for key in state for match in [body.match(key)] if match})
    if len(indices) not in BLOCKS_PER_STAGE or indices != list(range(1, len(indices) + 1)):
        raise ValueError(
            f"the checkpoint has bottlenecks features.{indices[:1]}..{indices[-1:]} ({len(indices)} in all); a "
            f"slimmable ResNet-50/101/152 has {sorted(BLOCKS_PER_STAGE)} of them, numbered from features.1"
        )
    names = []
    for stage, blocks in enumerate(BLOCKS_PER_STAGE[len(indices)], start=2):
        names += [f"res{stage}.{block}" for block in range(blocks)]
    return list(zip(indices, names))


def slim_resnet(state: Mapping[str, torch.Tensor], width: float, source_prefix: str, target_prefix: str,
                conversion: Conversion, flip_channels: bool) -> StateDict:
    """The ResNet of one ``width`` in detectron2 names under ``target_prefix`` (``stem.conv1``,
    ``resS.B.convK``, ``.shortcut``, each with ``.norm``) from the slimmable ResNet under
    ``source_prefix``; the other widths' BNs and the step counters are recorded as left out."""
    widths = slimmable_widths(state, source_prefix)
    index = width_index(widths, width)
    out = {}

    def conv_and_norm(conv: str, norm: str, target: str, in_channels: int) -> int:
        bn = f"{source_prefix}{norm}.bn.{index}."
        if bn + "weight" not in state:
            raise ValueError(f"the checkpoint lacks {bn}weight: it is not a complete slimmable ResNet")
        out_channels = state[bn + "weight"].numel()
        out[f"{target_prefix}{target}.weight"] = state[f"{source_prefix}{conv}.weight"][:out_channels, :in_channels]
        out.update(copy_bn(state, bn, f"{target_prefix}{target}.norm."))
        return out_channels

    channels = conv_and_norm("features.0.0", "features.0.1", "stem.conv1", 3)
    if flip_channels:
        out[f"{target_prefix}stem.conv1.weight"] = flip_input_channels(out[f"{target_prefix}stem.conv1.weight"])
    for feature, block in _block_names(state, source_prefix):
        body = f"features.{feature}.body"
        block_input, mid = channels, channels
        for conv, norm, name in _BODY_CONVS:
            mid = conv_and_norm(f"{body}.{conv}", f"{body}.{norm}", f"{block}.{name}", mid)
        if f"{source_prefix}features.{feature}.shortcut.0.weight" in state:
            shortcut = f"features.{feature}.shortcut"
            conv_and_norm(f"{shortcut}.0", f"{shortcut}.1", f"{block}.shortcut", block_input)
        channels = mid

    others = [key for key in state if key.startswith(source_prefix + "features.")
              and re.search(r"\.bn\.\d+\.", key) and f".bn.{index}." not in key and not is_step_counter(key)]
    conversion.leave_out(f"switchable BNs of the other widths {[w for w in widths if w != width]}", others)
    conversion.notes.append(f"width {width}: every slimmable kernel sliced to the width's channels (the filters "
                            "beyond them serve only wider widths)")
    return out


def convert_slimmable(state: Mapping[str, torch.Tensor], width: float, input_format: str = "BGR") -> Conversion:
    """The slimmable ResNet's network of ``width`` as an ImageClassifier (its backbone initialises
    the slimmed ResNets of the MSAD configs)."""
    unknown = [key for key in state if not (SLIMMABLE_BACKBONE_KEY.fullmatch(key) or _CLASSIFIER_KEY.fullmatch(key))]
    reject_unknown_keys(unknown, "slimmable ResNet",
                        "features.0.{0,1}, features.K.body.J, features.K.shortcut.J, classifier.0")
    conversion = Conversion({}, CLASSIFIER, TORCHVISION_INPUT)
    conversion.leave_out("BN step counters num_batches_tracked, unused at inference",
                         [key for key in state if is_step_counter(key)])
    converted = slim_resnet(state, width, "", "backbone.", conversion, needs_channel_flip("RGB", input_format))
    in_features = converted[f"backbone.{_block_names(state, '')[-1][1]}.conv3.weight"].shape[0]
    converted["fc.weight"] = state["classifier.0.weight"][:, :in_features]
    converted["fc.bias"] = state["classifier.0.bias"]
    conversion.state = converted
    conversion.notes.append("the slimmable ResNet puts the bottleneck stride in the 3x3 conv: the target ResNet needs "
                            "stride_in_1x1=False (for the MSAD configs: model.detector.backbone.stride_in_1x1=False)")
    conversion.notes.append("the MSAD authors loaded these weights unchanged into detectron2's BGR pipeline "
                            "(pixel std 1); --input-format RGB keeps the first conv as they did")
    return conversion
