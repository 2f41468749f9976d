"""The redundant adaptation neck (RAN) of ResNet-WS: two fully connected layers between the 7x7
pooled conv5 features and the WSOD heads, pre-trained on ImageNet together with the backbone
(appendix Table A1) so that a frozen backbone ("F5") still adapts to detection."""
from typing import Sequence

import torch
from torch import nn

from detectron2.config import CfgNode, configurable
from detectron2.layers import ShapeSpec


class RedundantAdaptationNeck(nn.Module):
    """
    Flatten -> (Linear -> ReLU -> Dropout) per entry of ``hidden_dims``.

    Input: (N, in_channels, pooled_size, pooled_size) pooled features (RoIPool output, or the
    2x2-max-pooled conv5 map of the classification form). Output: (N, hidden_dims[-1]).
    The paper's dims: (4096, 4096) for ResNet18-WS, (2048, 4096) for ResNet50/101-WS.
    """

    @configurable
    def __init__(self, in_channels: int, pooled_size: int = 7,
                 hidden_dims: Sequence[int] = (4096, 4096), dropout: float = 0.5):
        super().__init__()
        if not hidden_dims:
            raise ValueError("hidden_dims must name at least one layer width, e.g. (4096, 4096)")
        self.in_channels = in_channels
        self.pooled_size = pooled_size
        self.output_size = hidden_dims[-1]
        layers = []
        width = in_channels * pooled_size * pooled_size
        for dim in hidden_dims:
            layers += [nn.Linear(width, dim), nn.ReLU(inplace=True), nn.Dropout(dropout)]
            width = dim
        self.layers = nn.Sequential(*layers)

    @classmethod
    def from_config(cls, cfg: CfgNode, input_shape: ShapeSpec) -> dict:
        """Channels and (square) pooled size from ``input_shape``, widths and dropout from MODEL.RAN."""
        return {
            "in_channels": input_shape.channels,
            "pooled_size": input_shape.height,
            "hidden_dims": cfg.MODEL.RAN.HIDDEN_DIMS,
            "dropout": cfg.MODEL.RAN.DROPOUT,
        }

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        expected = (self.in_channels, self.pooled_size, self.pooled_size)
        if tuple(pooled.shape[1:]) != expected:
            raise ValueError(
                f"RedundantAdaptationNeck expects (N, {expected[0]}, {expected[1]}, {expected[2]}) "
                f"pooled features, got {tuple(pooled.shape)}: pool the features to "
                f"{self.pooled_size}x{self.pooled_size} (RoIPool output size) first"
            )
        return self.layers(pooled.flatten(1))
