"""Crossing feature-level fusion (C-FF, MSAD Sec. 3.2): a per-image, per-level soft choice between
a high-resolution and a low-resolution feature map of the same size."""
from typing import Dict

import torch
import torch.nn.functional as F
from torch import nn


class CrossFeatureFusion(nn.Module):
    """
    For each pyramid level: ``concat(P_H, P_L)`` along channels -> global average pool ->
    ``Linear(2C, hidden, no bias)`` -> ReLU -> ``Linear(hidden, 2, no bias)`` -> softmax over the
    two resolutions -> ``fused = w0 * P_H + w1 * P_L``.

    The weights are computed for every image and every level separately (the authors' first
    release applied image 0's weights to the whole batch). One module serves all levels, as in
    the authors' code; its ``reduce`` and ``expand`` layers keep PyTorch's default initialisation.
    """

    def __init__(self, channels: int = 256, hidden_channels: int = 32):
        """
        Args:
            channels: channels C of each input map (the FPN's out_channels).
            hidden_channels: width of the hidden layer (32 in the paper).
        """
        super().__init__()
        if channels < 1 or hidden_channels < 1:
            raise ValueError(f"channels={channels} and hidden_channels={hidden_channels} must be positive")
        self.channels = channels
        self.reduce = nn.Linear(2 * channels, hidden_channels, bias=False)
        self.expand = nn.Linear(hidden_channels, 2, bias=False)

    def resolution_weights(self, high: torch.Tensor, low: torch.Tensor) -> torch.Tensor:
        """(N, 2) softmax weights of the high- and the low-resolution map, one pair per image."""
        if high.shape != low.shape or high.dim() != 4 or high.shape[1] != self.channels:
            raise ValueError(
                f"C-FF needs two (N, {self.channels}, H, W) maps of the same shape, got "
                f"{list(high.shape)} and {list(low.shape)}: pad the high-resolution batch so that paired "
                "levels have the same size (MultiScaleFusionTeacher.size_divisibility) and give "
                "channels= the FPN's out_channels"
            )
        pooled = torch.cat([high, low], dim=1).mean(dim=(2, 3))
        return F.softmax(self.expand(F.relu(self.reduce(pooled))), dim=1)

    def forward(self, high: Dict[str, torch.Tensor], low: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """Fuse ``high[level]`` with ``low[level]`` for every level name (both dicts need the same)."""
        if set(high) != set(low):
            raise ValueError(
                f"C-FF pairs levels by name but got high-resolution levels {sorted(high)} and "
                f"low-resolution levels {sorted(low)}: rename the low-resolution levels to the "
                "high-resolution ones they align with first"
            )
        fused = {}
        for level, high_map in high.items():
            weights = self.resolution_weights(high_map, low[level])[:, :, None, None, None]
            fused[level] = weights[:, 0] * high_map + weights[:, 1] * low[level]
        return fused
