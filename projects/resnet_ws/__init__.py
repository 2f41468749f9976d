"""ResNet-WS (seeds/000): residual backbones made to work for weakly supervised object detection,
with WSDDN / OICR heads on precomputed proposals."""
from .neck import RedundantAdaptationNeck  # noqa: F401
