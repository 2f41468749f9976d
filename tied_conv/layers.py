"""Tied block layers (TBC paper, Eq. 3-4): one thin filter bank shared by B equal channel blocks."""
from typing import Final

import torch
from torch import nn
from torch.nn import functional as F


def _check_blocks(layer: str, in_channels: int, out_channels: int, B: int) -> None:
    if B < 1:
        raise ValueError(f"{layer}: B={B} must be a positive number of blocks")
    for name, channels in (("in", in_channels), ("out", out_channels)):
        if channels % B:
            raise ValueError(
                f"{layer}: {name} channels {channels} are not divisible by B={B}; each of the B "
                f"blocks must have the same number of channels (use a B dividing {channels})"
            )


class TiedBlockConv2d(nn.Conv2d):
    """Tied block convolution (TBC); with ``groups > 1`` tied block group convolution (TGC).

    The input's channels are split into B contiguous blocks (block b holds channels
    ``[b*C/B, (b+1)*C/B)``); the same ``Conv2d(C_in/B, C_out/B, ...)`` is applied to every block
    and the B outputs are concatenated. This equals a grouped convolution with B groups whose
    weight is the shared one tiled B times, with B^2 fewer parameters than a dense convolution
    and B fewer FLOPs. ``B=1`` is a plain ``nn.Conv2d`` (same parameters and state dict keys).

    ``weight`` has shape ``(C_out/B, C_in/(B*groups), kH, kW)``; ``in_channels`` and
    ``out_channels`` keep the layer's full channel counts.
    """

    # the tiled weight's form runs below this many input channels per block (at it, when gradients
    # are needed): the crossover measured on CPU by benchmarks/tbc_speed.py
    tiled_below_block_channels: Final[int] = 16

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, B=1):
        _check_blocks("TiedBlockConv2d", in_channels, out_channels, B)
        if (in_channels // B) % groups or (out_channels // B) % groups:
            raise ValueError(
                f"TiedBlockConv2d: block channels {in_channels // B} -> {out_channels // B} "
                f"(channels / B={B}) are not divisible by groups={groups}; use groups dividing both"
            )
        super().__init__(in_channels // B, out_channels // B, kernel_size, stride=stride,
                         padding=padding, dilation=dilation, groups=groups, bias=bias)
        self.in_channels, self.out_channels, self.B = in_channels, out_channels, B

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Channel counts are fixed by the weights, so a trace needs no check (and would warn).
        if not torch.jit.is_tracing() and (x.dim() != 4 or x.shape[1] != self.in_channels):
            raise ValueError(
                f"TiedBlockConv2d: expected input of shape (N, {self.in_channels}, H, W), got "
                f"{list(x.shape)}; add a batch dimension to single images with x.unsqueeze(0)"
            )
        if self.tiled_weight_is_faster(x):
            return self.tiled_weight_forward(x)
        return self.block_batch_forward(x)

    def tiled_weight_is_faster(self, x: torch.Tensor) -> bool:
        """Which of the two equal forms to run, as measured on CPU (benchmarks/tbc_speed.py): the
        grouped convolution with the tiled weight for thin blocks (fewer than
        ``tiled_below_block_channels`` input channels per block, or exactly that many when
        gradients are needed) and for inputs not in the default layout (channels_last), which
        the block batch would copy; the block batch otherwise and for TGC (``groups > 1``),
        where the two run at the same speed."""
        if self.B == 1 or self.groups != 1:
            return False
        if not x.is_contiguous():
            return True
        block_channels = self.in_channels // self.B
        if torch.is_grad_enabled() and (x.requires_grad or self.weight.requires_grad):
            return block_channels <= self.tiled_below_block_channels
        return block_channels < self.tiled_below_block_channels

    def block_batch_forward(self, x: torch.Tensor) -> torch.Tensor:
        """The authors' form: the shared convolution on the input viewed as (N*B, C/B, H, W)."""
        n, c, h, w = x.shape
        y = self._conv_forward(x.reshape(n * self.B, c // self.B, h, w), self.weight, self.bias)
        return y.reshape(n, self.out_channels, y.shape[2], y.shape[3])

    def tiled_weight_forward(self, x: torch.Tensor) -> torch.Tensor:
        """The definition: a grouped convolution with B * groups groups, the weight tiled B times."""
        bias = self.bias
        if bias is not None:
            bias = bias.repeat(self.B)
        return F.conv2d(x, self.weight.repeat(self.B, 1, 1, 1), bias, self.stride, self.padding, self.dilation,
                        self.groups * self.B)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", B={self.B}"


class TiedLinear(nn.Linear):
    """Tied block fully connected layer (TFC): one ``Linear(C_in/B, C_out/B)`` shared by the B
    contiguous blocks of the input features; ``B=1`` is a plain ``nn.Linear``."""

    def __init__(self, in_features, out_features, B=1, bias=True):
        _check_blocks("TiedLinear", in_features, out_features, B)
        super().__init__(in_features // B, out_features // B, bias=bias)
        self.in_features, self.out_features, self.B = in_features, out_features, B

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_tracing() and x.shape[-1] != self.in_features:
            raise ValueError(
                f"TiedLinear: expected {self.in_features} input features in the last dimension, "
                f"got input of shape {list(x.shape)}"
            )
        leading = x.shape[:-1]
        y = F.linear(x.reshape(-1, self.in_features // self.B), self.weight, self.bias)
        return y.reshape(leading + (self.out_features,))

    def extra_repr(self) -> str:
        return super().extra_repr() + f", B={self.B}"
