"""Tied attention modules (TBC paper, Fig. 5): SE and GCB with their FC/conv layers tied over B blocks."""
import torch
from torch import nn

from .layers import TiedBlockConv2d, TiedLinear, _check_blocks


class TiedSE(nn.Module):
    """Squeeze-and-excitation (Hu et al. 2018) with both FC layers replaced by TFC (Fig. 5a).

    Global average pool -> ``TiedLinear(C, hidden)`` -> ReLU -> ``TiedLinear(hidden, C)`` ->
    sigmoid -> channel-wise scale of the input. Each of the B channel blocks gets
    ``max(2, (C/B) // reduction)`` hidden units, as in the authors' code, so ``B=1`` is the SE module
    (hidden ``C // reduction`` whenever ``C >= 2 * reduction``) with B^2 fewer parameters per B.
    """

    def __init__(self, channels: int, B: int = 1, reduction: int = 16):
        super().__init__()
        _check_blocks("TiedSE", channels, channels, B)
        if reduction < 1:
            raise ValueError(f"TiedSE: reduction={reduction} must be a positive integer (SE uses 16)")
        hidden = B * max(2, (channels // B) // reduction)
        self.reduce = TiedLinear(channels, hidden, B=B)
        self.expand = TiedLinear(hidden, channels, B=B)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.expand(torch.relu(self.reduce(x.mean(dim=(2, 3)))))
        return x * torch.sigmoid(scale)[:, :, None, None]


class TiedGCB(nn.Module):
    """Global context block (Cao et al. 2019, GCNet) with every convolution replaced by TBC (Fig. 5b).

    Context modelling: a 1x1 conv gives attention logits over the H*W positions, softmax, and the
    attention-weighted sum of the features gives a ``C x 1 x 1`` context. The C->1 conv cannot give
    C/B outputs per block, so it is tied the TBC way: one shared ``C/B -> 1`` filter yields B
    attention maps, one per channel block, and each block pools its own channels with its own map.
    Transform: ``TBC(C, hidden) -> LayerNorm([hidden, 1, 1]) -> ReLU -> TBC(hidden, C)`` with
    ``hidden / B = int((C/B) * ratio)``; the LayerNorm is kept as in GCB (over all hidden channels).
    Fusion: the transformed context is added to every position. ``B=1`` is exactly GCB
    (attention pooling, channel-add fusion). As in GCNet the last conv starts at zero, so a freshly
    inserted block is the identity.
    """

    def __init__(self, channels: int, B: int = 1, ratio: float = 1 / 4):
        super().__init__()
        _check_blocks("TiedGCB", channels, channels, B)
        hidden_per_block = int((channels // B) * ratio)
        if hidden_per_block < 1:
            raise ValueError(
                f"TiedGCB: ratio={ratio} leaves no hidden channel for blocks of {channels // B} "
                f"channels (channels={channels}, B={B}); raise ratio or lower B"
            )
        hidden = B * hidden_per_block
        self.B = B
        self.context_conv = TiedBlockConv2d(channels, B, kernel_size=1, B=B)
        self.transform = nn.Sequential(
            TiedBlockConv2d(channels, hidden, kernel_size=1, B=B),
            nn.LayerNorm([hidden, 1, 1]),
            nn.ReLU(inplace=True),
            TiedBlockConv2d(hidden, channels, kernel_size=1, B=B),
        )
        nn.init.kaiming_normal_(self.context_conv.weight, mode="fan_in", nonlinearity="relu")
        nn.init.zeros_(self.context_conv.bias)
        nn.init.zeros_(self.transform[-1].weight)
        nn.init.zeros_(self.transform[-1].bias)

    def context(self, x: torch.Tensor) -> torch.Tensor:
        """Attention pooling of each channel block with its own softmax map: ``(N, C, 1, 1)``."""
        n, c, h, w = x.shape
        attention = torch.softmax(self.context_conv(x).reshape(n, self.B, h * w, 1), dim=2)
        pooled = torch.matmul(x.reshape(n, self.B, c // self.B, h * w), attention)
        return pooled.reshape(n, c, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.transform(self.context(x))
