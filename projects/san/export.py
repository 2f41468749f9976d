"""
A SAN network frozen at one input resolution: every generated kernel is computed once (the
meta layers' own ``MetaConv2d.kernel``) and, with the affine map its private BN applies at that
resolution, folded into a plain ``nn.Conv2d`` with bias. The frozen network computes what the
SAN computes at that resolution, in its inference mode ("proxy", "data_free", or "ideal" with
calibrated statistics), at the cost of an ordinary ResNet / MobileNetV2: no kernel generation
and no per-resolution lookup. It is what ``projects.common.export`` traces, and the fastest way
to serve a SAN at a fixed resolution.
"""
import copy
from typing import Tuple

import torch
from torch import nn

from .backbones import MetaConvNorm, SANBackbone
from .layers import MetaConv2d, PrivateBatchNorm2d

__all__ = ["FrozenAffine", "FrozenConv2d", "freeze_at_resolution", "frozen_resolution"]


class FrozenConv2d(nn.Conv2d):
    """A plain convolution in place of a generated one (and its BN): it accepts and ignores the
    scale encoding / resolution arguments SAN blocks pass to their layers."""

    def forward(self, x: torch.Tensor, *resolution_arguments) -> torch.Tensor:
        return super().forward(x)


class FrozenAffine(nn.Module):
    """``x * scale + shift`` per channel: a private BN at one resolution (the stem's, which
    follows a shared convolution), ignoring the resolution argument SAN passes to it."""

    def __init__(self, scale: torch.Tensor, shift: torch.Tensor):
        super().__init__()
        self.register_buffer("scale", scale.view(1, -1, 1, 1))
        self.register_buffer("shift", shift.view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor, *resolution_arguments) -> torch.Tensor:
        return torch.addcmul(self.shift, x, self.scale)


def freeze_at_resolution(model: nn.Module, resolution: int) -> nn.Module:
    """
    A copy of ``model`` (a SAN backbone, or a classifier whose ``backbone`` is one) in eval mode
    whose generated convolutions and private BNs are frozen at ``resolution`` (``min(H, W)`` of
    the inputs it will see), in the backbone's current inference mode; ``model`` is unchanged.
    The copy records the resolution (``frozen_resolution``) and computes the SAN's outputs only
    for inputs of that resolution.

    Raises:
        TypeError: ``model`` has no SAN backbone.
        RuntimeError: "ideal" mode without BN statistics calibrated at ``resolution``.
    """
    backbone = model if isinstance(model, SANBackbone) else getattr(model, "backbone", None)
    if not isinstance(backbone, SANBackbone):
        raise TypeError(
            f"freeze_at_resolution needs a SAN backbone or a model whose .backbone is one, got "
            f"{type(model).__name__}" + (f" with a {type(backbone).__name__} backbone" if backbone is not None else "")
        )
    if int(resolution) < 1:
        raise ValueError(f"resolution={resolution} must be a positive number of pixels")
    frozen = copy.deepcopy(model).eval()
    frozen_backbone = frozen if isinstance(frozen, SANBackbone) else frozen.backbone
    probe = torch.empty(1, 1, int(resolution), int(resolution), device="meta")
    resolution, encoding = frozen_backbone.resolution_and_encoding(probe)
    with torch.no_grad():
        for parent in list(frozen_backbone.modules()):
            for name, child in list(parent.named_children()):
                if isinstance(child, MetaConvNorm):
                    setattr(parent, name, _fold(child.conv, encoding, child.norm, resolution))
                elif isinstance(child, MetaConv2d):
                    setattr(parent, name, _fold(child, encoding, None, resolution))
                elif isinstance(child, PrivateBatchNorm2d):
                    setattr(parent, name, FrozenAffine(*_affine(child, resolution)))
    frozen_backbone.frozen_resolution = resolution
    return frozen


def frozen_resolution(model: nn.Module):
    """The resolution ``model`` (or its backbone) was frozen at, None if it was not."""
    return getattr(getattr(model, "backbone", model), "frozen_resolution", None)


def _affine(norm: PrivateBatchNorm2d, resolution: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """(scale, shift) of the per-channel map ``norm`` applies at ``resolution`` in eval mode,
    read off its own forward at 0 and 1 so that every inference mode is honoured as it is."""
    reference = norm.norm(norm.resolutions[0])
    zeros = reference.weight.new_zeros(1, norm.num_features, 1, 1)
    shift = norm(zeros, resolution).flatten()
    scale = norm(zeros + 1, resolution).flatten() - shift
    return scale, shift


def _fold(conv: MetaConv2d, encoding: float, norm, resolution: int) -> FrozenConv2d:
    """The generated kernel of ``conv`` at ``encoding`` (times the BN's scale, plus its shift
    as bias, when ``norm`` is given) as a plain convolution."""
    kernel = conv.kernel(encoding)
    folded = FrozenConv2d(conv.in_channels, conv.out_channels, tuple(conv.kernel_shape[2:]), stride=conv.stride,
                          padding=conv.padding, dilation=conv.dilation, groups=conv.groups, bias=norm is not None)
    folded.to(device=kernel.device, dtype=kernel.dtype)
    if norm is None:
        folded.weight.copy_(kernel)
    else:
        scale, shift = _affine(norm, resolution)
        folded.weight.copy_(kernel * scale.view(-1, 1, 1, 1))
        folded.bias.copy_(shift)
    return folded
