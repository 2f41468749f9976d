"""SAN (Scale Adaptive Network): networks whose convolution kernels are generated from a scale
encoding of the input resolution, with batch normalisation private to each training resolution.

Public names, one import line per module.
"""
from .layers import INFERENCE_MODES, MetaConv2d, PrivateBatchNorm2d, scale_encoding  # noqa: F401
from .backbones import SANBackbone, SANMobileNetV2, SANResNet, build_san_mobilenetv2_backbone, build_san_resnet_backbone, calibrate_batchnorm  # noqa: F401
from .data import MultiResolutionClassificationMapper, set_test_resolution, use_resolution, validation_resize_edge  # noqa: F401
from .losses import scale_distillation_loss  # noqa: F401
from .modeling import ScaleAdaptiveClassifier  # noqa: F401
from .config import add_san_config  # noqa: F401
