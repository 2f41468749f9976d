"""
What the formats share: the result of a conversion, renaming by patterns, and the conventions
that differ between code bases (BN epsilon, Caffe2's affine channels, the input channel order).
"""
import logging
import re
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import torch

logger = logging.getLogger(__name__)

StateDict = Dict[str, torch.Tensor]

CLASSIFIER = "classifier"
"""A whole image classifier in ``ImageClassifier`` names: ``backbone.*``, ``fc.*`` (and a model's
own extras such as ResNet-WS's ``neck.*``); its backbone can also initialise a detector."""
DETECTOR = "detector"
"""A whole model of a detection config (every tensor under its own name)."""

CHANNEL_ORDERS = ("BGR", "RGB")
DETECTRON2_BN_EPSILON = 1e-5
"""The epsilon of detectron2's ``FrozenBatchNorm2d`` and of ``nn.BatchNorm2d`` (also Caffe2's and
SyncBN's): converted statistics are chosen so that these layers compute the source's output."""
BN_STATISTICS = ("weight", "bias", "running_mean", "running_var")


@dataclass(frozen=True)
class InputConvention:
    """How the converted weights expect images: normalised ``(x - pixel_mean) / pixel_std`` with
    x a BGR 0..255 image (the collection's configs feed BGR). The CLI compares it with the
    normalisation of the config it checks."""

    pixel_mean: Tuple[float, float, float]
    pixel_std: Tuple[float, float, float]
    description: str


TORCHVISION_INPUT = InputConvention(
    (103.530, 116.280, 123.675), (57.375, 57.120, 58.395),
    "RGB images in [0, 1] normalised with ImageNet's mean and std (torchvision's recipe)")
UNIT_RANGE_INPUT = InputConvention(
    (0.0, 0.0, 0.0), (255.0, 255.0, 255.0), "RGB images in [0, 1], not normalised (the SAN authors' loader)")
CAFFE2_INPUT = InputConvention(
    (102.9801, 115.9465, 122.7717), (1.0, 1.0, 1.0),
    "BGR 0..255 images minus Detectron's pixel means, unit std (Caffe2 / Detectron / maskrcnn-benchmark)")
DETECTRON2_INPUT = InputConvention(
    (103.530, 116.280, 123.675), (1.0, 1.0, 1.0), "BGR 0..255 images minus detectron2's pixel means, unit std")


@dataclass
class Conversion:
    """A checkpoint converted to the collection's names.

    ``state``: the tensors under our names. ``kind``: ``CLASSIFIER`` or ``DETECTOR``.
    ``left_out``: why -> source keys deliberately not converted (logged, and listed in the docs).
    ``input``: the normalisation the weights expect (None: unknown). ``notes``: other facts a
    user of the converted weights must know, such as config settings (logged).
    """

    state: StateDict
    kind: str
    input: Optional[InputConvention]
    left_out: Dict[str, List[str]] = field(default_factory=dict)
    notes: List[str] = field(default_factory=list)

    def leave_out(self, reason: str, keys: Sequence[str]) -> None:
        if keys:
            self.left_out.setdefault(reason, []).extend(keys)

    def log(self, format_name: str) -> None:
        logger.info("Converted %d tensors from the %s checkpoint to the collection's names", len(self.state),
                    format_name)
        for reason, keys in self.left_out.items():
            shown = ", ".join(keys[:6]) + (f", ... ({len(keys)} in all)" if len(keys) > 6 else "")
            logger.info("Left out (%s): %s", reason, shown)
        for note in dict.fromkeys(self.notes):
            logger.info("Note: %s", note)


Rule = Tuple["re.Pattern", Callable[["re.Match"], str]]


def rule(pattern: str, template: Callable[["re.Match"], str]) -> Rule:
    """A renaming rule: keys that fully match ``pattern`` get the name ``template(match)``."""
    return re.compile(pattern), template


def rename(key: str, rules: Sequence[Rule]) -> Optional[str]:
    """The new name of ``key`` under the first rule that matches it, None if none does."""
    for pattern, template in rules:
        match = pattern.fullmatch(key)
        if match:
            return template(match)
    return None


def rename_all(state: Mapping[str, torch.Tensor], rules: Sequence[Rule]) -> Tuple[StateDict, List[str]]:
    """``(renamed tensors, keys no rule matched)``."""
    renamed, unmatched = {}, []
    for key, value in state.items():
        new_key = rename(key, rules)
        if new_key is None:
            unmatched.append(key)
        else:
            renamed[new_key] = value
    return renamed, unmatched


def reject_unknown_keys(keys: Sequence[str], format_name: str, expected: str) -> None:
    """An error naming the keys a format does not know (a file of another format or version)."""
    if keys:
        raise ValueError(
            f"{len(keys)} keys are not {format_name} names ({expected}): {sorted(keys)[:12]}; check that the file "
            f"is a {format_name} checkpoint, or pick its format with --from "
            "(python -m projects.common.checkpoint --help)"
        )


def strip_prefix(state: Mapping[str, torch.Tensor], prefix: str) -> StateDict:
    """``state`` without ``prefix`` when every key has it (``module.`` of (Distributed)DataParallel)."""
    if state and all(key.startswith(prefix) for key in state):
        return {key[len(prefix):]: value for key, value in state.items()}
    return dict(state)


def is_step_counter(key: str) -> bool:
    """BN's ``num_batches_tracked``: a training step counter, unused at inference and by our
    momentum BNs; left out, and restarted at 0 by ``load_state_dict``."""
    return key.endswith("num_batches_tracked")


def drop_step_counters(state: Mapping[str, torch.Tensor], conversion: Conversion) -> StateDict:
    counters = [key for key in state if is_step_counter(key)]
    conversion.leave_out("BN step counters num_batches_tracked, unused at inference", counters)
    return {key: value for key, value in state.items() if not is_step_counter(key)}


def flip_input_channels(weight: torch.Tensor) -> torch.Tensor:
    """A first conv's kernel (out, 3, kh, kw) for images of the other channel order (RGB <-> BGR)."""
    if weight.dim() != 4 or weight.shape[1] != 3:
        raise ValueError(f"expected a first-layer kernel of shape (out, 3, kh, kw), got {list(weight.shape)}")
    return weight.flip(1)


def needs_channel_flip(source_order: str, target_order: str) -> bool:
    """Whether the first conv must be flipped to feed ``target_order`` images to a model trained
    on ``source_order`` ones."""
    for name, order in (("source", source_order), ("target", target_order)):
        if order not in CHANNEL_ORDERS:
            raise ValueError(f"{name} channel order {order!r}: use one of {CHANNEL_ORDERS}")
    return source_order != target_order


def frozen_bn_from_affine(scale: torch.Tensor, shift: torch.Tensor, prefix: str,
                          eps: float = DETECTRON2_BN_EPSILON) -> StateDict:
    """BN statistics under ``prefix`` (``...norm.``) that compute Caffe2's ``AffineChannel``
    ``y = scale * x + shift`` exactly: mean 0 and variance ``1 - eps``, so that BN's
    ``(x - mean) / sqrt(var + eps)`` divides by exactly 1 (detectron2's own loading of Caffe2 files
    keeps variance 1, off by a factor sqrt(1 + eps))."""
    return {
        prefix + "weight": scale,
        prefix + "bias": shift,
        prefix + "running_mean": torch.zeros_like(scale),
        prefix + "running_var": torch.full_like(scale, 1.0 - eps),
    }


def add_missing_epsilon(weight: torch.Tensor, running_var: torch.Tensor,
                        eps: float = DETECTRON2_BN_EPSILON) -> torch.Tensor:
    """The BN weight that makes ``weight / sqrt(var + eps)`` (detectron2) equal the source's
    ``weight / sqrt(var)`` (maskrcnn-benchmark's ``FrozenBatchNorm2d`` has no epsilon)."""
    return weight * torch.sqrt((running_var + eps) / running_var)


def copy_bn(state: Mapping[str, torch.Tensor], source_prefix: str, target_prefix: str,
            channels: Optional[int] = None) -> StateDict:
    """The BN statistics ``source_prefix{weight,bias,running_mean,running_var}`` under
    ``target_prefix``, the first ``channels`` of each when given."""
    missing = [source_prefix + name for name in BN_STATISTICS if source_prefix + name not in state]
    if missing:
        raise ValueError(f"the checkpoint lacks the BN statistics {missing}: it is incomplete or of another format")
    return {target_prefix + name: state[source_prefix + name][:channels] for name in BN_STATISTICS}
