"""
d-li14/SAN ImageNet checkpoints -> ``projects.san`` classifiers (``--from san``).

Facts from the authors' code (models/imagenet/meta_resnet.py, meta_mobilenetv2.py, parallel.py,
imagenet.py): ``imagenet.py`` saves ``{"state_dict": DataParallel state dict, ...}``. A generated
convolution is ``fcK = nn.Linear(1, C_out * C_in/g * k * k)`` whose output, ``.resize``-d row-major to
``(C_out, C_in/g, k, k)``, is the kernel: the layout of our ``MetaConv2d.meta``. Branch i of
``BatchNorm2dParallel`` (``bn_i``) is the private BN of the i-th input size, and the kernels of
branch i use the encoding ``0.7 - 0.1 i``, hard-coded: only the default sizes 224, 192, 160, 128,
96 (i.e. S / 320, our encoding) are consistent with it, so branch i is resolution
``SAN_RESOLUTIONS[i]``. Images are RGB in [0, 1] without mean/std (``ToTensor`` only).

* ResNet-18/50: ``conv1.module`` (shared stem conv), ``bn1``; per block ``fc1, fc2`` (+ ``fc3``
  in bottlenecks) and the generated projection shortcut ``fc3`` (basic) / ``fc4`` (bottleneck)
  with ``bn3`` / ``bn4``; ``fc.module`` the shared classifier. ``_make_layer`` also builds a
  ``downsample`` (conv + parallel BN) that the blocks' forward never uses: left out.
* MobileNetV2: ``features.0`` (stem ``fc``, ``bn``), ``features.k`` blocks (``fc1..fc3``,
  ``bn1..bn3``; two of each without expansion), ``conv`` (last 1x1), ``classifier.module``.
* The single-resolution baselines are torchvision ResNets: converted by ``--from torchvision``'s
  rules (their input normalisation is not recorded in the repository).
"""
import re
from typing import Mapping, Tuple

import torch

from .conversion import (
    CLASSIFIER,
    UNIT_RANGE_INPUT,
    Conversion,
    drop_step_counters,
    flip_input_channels,
    needs_channel_flip,
    reject_unknown_keys,
    rename_all,
    rule,
)
from .torchvision_resnet import convert_torchvision, is_torchvision_resnet

SAN_RESOLUTIONS = (224, 192, 160, 128, 96)
"""The authors' training sizes; their branch i uses the encoding 0.7 - 0.1 i = SAN_RESOLUTIONS[i] / 320."""

_STAT = r"(weight|bias|running_mean|running_var)"
_BRANCH = r"bn_(\d)"


def _resolution(branch: str) -> int:
    return SAN_RESOLUTIONS[int(branch)]


def _resnet_rules(bottleneck: bool):
    shortcut = 4 if bottleneck else 3

    def unit(stage: str, block: str, index: str) -> str:
        name = "shortcut" if int(index) == shortcut else f"conv{index}"
        return f"backbone.stages.res{int(stage) + 1}.{block}.{name}"

    return [
        rule(r"conv1\.module\.weight", lambda m: "backbone.stem_conv.weight"),
        rule(rf"bn1\.{_BRANCH}\.{_STAT}", lambda m: f"backbone.stem_norm.norms.{_resolution(m[1])}.{m[2]}"),
        rule(r"layer(\d)\.(\d+)\.fc(\d)\.(weight|bias)", lambda m: f"{unit(m[1], m[2], m[3])}.conv.meta.{m[4]}"),
        rule(rf"layer(\d)\.(\d+)\.bn(\d)\.{_BRANCH}\.{_STAT}",
             lambda m: f"{unit(m[1], m[2], m[3])}.norm.norms.{_resolution(m[4])}.{m[5]}"),
        rule(r"fc\.module\.(weight|bias)", lambda m: f"fc.{m[1]}"),
    ]


MOBILENETV2_RULES = [
    rule(r"features\.0\.fc\.(weight|bias)", lambda m: f"backbone.stem.conv.meta.{m[1]}"),
    rule(rf"features\.0\.bn\.{_BRANCH}\.{_STAT}", lambda m: f"backbone.stem.norm.norms.{_resolution(m[1])}.{m[2]}"),
    rule(r"features\.(\d+)\.fc(\d)\.(weight|bias)",
         lambda m: f"backbone.blocks.{int(m[1]) - 1}.layers.{int(m[2]) - 1}.conv.meta.{m[3]}"),
    rule(rf"features\.(\d+)\.bn(\d)\.{_BRANCH}\.{_STAT}",
         lambda m: f"backbone.blocks.{int(m[1]) - 1}.layers.{int(m[2]) - 1}.norm.norms.{_resolution(m[3])}.{m[4]}"),
    rule(r"conv\.fc\.(weight|bias)", lambda m: f"backbone.head.conv.meta.{m[1]}"),
    rule(rf"conv\.bn\.{_BRANCH}\.{_STAT}", lambda m: f"backbone.head.norm.norms.{_resolution(m[1])}.{m[2]}"),
    rule(r"classifier\.module\.(weight|bias)", lambda m: f"fc.{m[1]}"),
]

_UNUSED_DOWNSAMPLE = re.compile(r"layer\d\.\d+\.downsample\..*")


def _branches(state: Mapping[str, torch.Tensor]) -> int:
    """Number of resolution branches (``bn_i``) of the checkpoint's BNs."""
    branches = {int(match[1]) for key in state for match in [re.search(r"\.bn_(\d+)\.", key)] if match}
    if not branches or branches != set(range(len(branches))) or len(branches) > len(SAN_RESOLUTIONS):
        raise ValueError(
            f"the checkpoint's parallel BNs have branches {sorted(branches)}; a SAN checkpoint has bn_0..bn_{{n-1}} "
            f"for its n <= {len(SAN_RESOLUTIONS)} training sizes {SAN_RESOLUTIONS}"
        )
    return len(branches)


def _flip_generated_input_channels(meta_weight: torch.Tensor, meta_bias: torch.Tensor,
                                   out_channels: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """A generated first conv (``Linear(1, out * 3 * k * k)``) for images of the other channel order:
    both A and b reversed along the kernel's input-channel axis."""
    def flip(tensor: torch.Tensor) -> torch.Tensor:
        kernel = tensor.reshape(out_channels, 3, -1)
        return kernel.flip(1).reshape(tensor.shape)

    return flip(meta_weight), flip(meta_bias)


def convert_san(state: Mapping[str, torch.Tensor], input_format: str = "BGR") -> Conversion:
    """A SAN ResNet / MobileNetV2 checkpoint (or a single-resolution baseline) as our classifier."""
    if is_torchvision_resnet(state):
        conversion = convert_torchvision(state, input_format)
        conversion.input = UNIT_RANGE_INPUT
        conversion.notes.append("a SAN baseline (a torchvision ResNet): the authors' repository does not record its "
                                "input normalisation; [0, 1] RGB as the SAN script is assumed, else try ImageNet "
                                "mean/std")
        return conversion
    if "conv1.module.weight" not in state and "features.0.fc.weight" not in state:
        raise ValueError(
            "not a d-li14/SAN checkpoint: it has neither the meta ResNet's conv1.module.weight nor the meta "
            f"MobileNetV2's features.0.fc.weight (first keys: {sorted(state)[:6]})"
        )
    conversion = Conversion({}, CLASSIFIER, UNIT_RANGE_INPUT)
    state = drop_step_counters(state, conversion)
    branches = _branches(state)
    if "features.0.fc.weight" in state:
        renamed, unknown = rename_all(state, MOBILENETV2_RULES)
        reject_unknown_keys(unknown, "SAN MobileNetV2", "features.K.fcJ / bnJ.bn_I, conv, classifier.module")
        if needs_channel_flip("RGB", input_format):
            stem = "backbone.stem.conv.meta."
            out_channels = renamed[f"backbone.stem.norm.norms.{SAN_RESOLUTIONS[0]}.weight"].numel()
            renamed[stem + "weight"], renamed[stem + "bias"] = _flip_generated_input_channels(
                renamed[stem + "weight"], renamed[stem + "bias"], out_channels)
    else:
        unused = [key for key in state if _UNUSED_DOWNSAMPLE.fullmatch(key)]
        conversion.leave_out("the authors' downsample layers, built but never used by their blocks' forward "
                             "(the shortcut is the generated fc3 / fc4 with bn3 / bn4)", unused)
        bottleneck = any(re.fullmatch(r"layer\d\.\d+\.fc4\.weight", key) for key in state)
        used = {key: value for key, value in state.items() if key not in unused}
        renamed, unknown = rename_all(used, _resnet_rules(bottleneck))
        reject_unknown_keys(unknown, "SAN meta ResNet", "conv1.module, bn1.bn_I, layerL.B.fcK / bnK.bn_I, fc.module")
        if needs_channel_flip("RGB", input_format):
            renamed["backbone.stem_conv.weight"] = flip_input_channels(renamed["backbone.stem_conv.weight"])
    conversion.state = renamed
    conversion.notes.append(f"{branches} resolution branches: bn_i -> the private BN of "
                            f"{SAN_RESOLUTIONS[:branches]}[i]; the config's resolutions must be these")
    return conversion
