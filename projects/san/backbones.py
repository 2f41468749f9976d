"""Scale-adaptive ResNet and MobileNetV2 (SAN) as detectron2 backbones.

Their ``forward(x)`` takes only the image batch and reads the resolution from it: the resolution
is ``min(H, W)`` of ``x`` (training crops are square; for a non-square test image it is the
shorter side, the size validation resizes and crops by). Generated convolutions receive the
scale encoding of that resolution (of its nearest training resolution in "proxy" mode) and every
private BN the resolution itself, so the backbones drop into
``projects.common.modeling.ImageClassifier`` unchanged (backbone -> global pool -> ``fc``; the
shared classifier is the classifier's ``fc``).

Extrapolation (a test resolution outside the training range): the encoding is always computed
from the real resolution except in "proxy" mode (nearest training resolution, i.e. the end of
the range); BN uses the end of the range's BN ("proxy" and "data_free") or statistics calibrated
at the test resolution with the end's affine parameters ("ideal").
"""
from typing import Dict, Iterable, Sequence, Tuple

import torch
from torch import nn
from torch.nn import functional as F

from fvcore.nn.weight_init import c2_msra_fill

from detectron2.config import CfgNode
from detectron2.layers import ShapeSpec
from detectron2.modeling import BACKBONE_REGISTRY, Backbone

from projects.common.modeling.backbone import RESNET_BLOCKS_PER_STAGE

from .layers import (
    MetaConv2d,
    PrivateBatchNorm2d,
    check_inference_mode,
    check_resolutions,
    nearest_resolution,
    scale_encoding,
)


class MetaConvNorm(nn.Module):
    """A generated convolution followed by its private BN: the unit SAN blocks are made of."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 resolutions: Sequence[int], stride: int = 1, groups: int = 1):
        super().__init__()
        self.conv = MetaConv2d(in_channels, out_channels, kernel_size, stride=stride,
                               padding=kernel_size // 2, groups=groups)
        self.norm = PrivateBatchNorm2d(out_channels, resolutions)

    def forward(self, x: torch.Tensor, encoding: float, resolution: int) -> torch.Tensor:
        return self.norm(self.conv(x, encoding), resolution)


class SANBackbone(Backbone):
    """What SAN backbones share: the training resolutions, the inference mode and the mapping
    from an input batch to its resolution and scale encoding."""

    def __init__(self, resolutions: Sequence[int]):
        super().__init__()
        self.resolutions = check_resolutions(resolutions)
        self.inference_mode = "proxy"

    def set_inference_mode(self, mode: str) -> None:
        """How eval-mode forwards run at a resolution (layers.INFERENCE_MODES): "proxy" (default;
        nearest training resolution's encoding and BN), "ideal" (the resolution's own encoding,
        BN statistics from ``calibrate_batchnorm``) or "data_free" (own encoding, BN interpolated
        between the neighbouring training resolutions)."""
        self.inference_mode = check_inference_mode(mode)
        for module in self.modules():
            if isinstance(module, PrivateBatchNorm2d):
                module.set_inference_mode(mode)

    def resolution_and_encoding(self, x: torch.Tensor) -> Tuple[int, float]:
        """``min(H, W)`` of the batch and the scale encoding its generated convolutions use."""
        if x.dim() != 4:
            raise ValueError(f"expected an image batch (N, C, H, W), got shape {list(x.shape)}")
        resolution = int(min(x.shape[-2:]))
        if self.training and resolution not in self.resolutions:
            raise ValueError(
                f"training input of size {list(x.shape[-2:])} has resolution min(H, W)="
                f"{resolution}, not one of the training resolutions {self.resolutions}: resize "
                "training batches to one of them (or add it to resolutions)"
            )
        if self.inference_mode == "proxy":
            return resolution, scale_encoding(nearest_resolution(resolution, self.resolutions))
        return resolution, scale_encoding(resolution)


class _SANResidualBlock(nn.Module):
    """A residual block: ``relu(residual(x) + shortcut(x))``; the shortcut is a generated 1x1
    projection with private BN when the shape changes, the identity otherwise."""

    def __init__(self, in_channels: int, out_channels: int, stride: int,
                 resolutions: Sequence[int]):
        super().__init__()
        self.shortcut = None
        if stride != 1 or in_channels != out_channels:
            self.shortcut = MetaConvNorm(in_channels, out_channels, 1, resolutions, stride=stride)

    def residual(self, x: torch.Tensor, encoding: float, resolution: int) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor, encoding: float, resolution: int) -> torch.Tensor:
        shortcut = x if self.shortcut is None else self.shortcut(x, encoding, resolution)
        return F.relu(self.residual(x, encoding, resolution) + shortcut)


class SANBasicBlock(_SANResidualBlock):
    """ResNet-18/34 block: two generated 3x3 convolutions, the first with the block's stride."""

    def __init__(self, in_channels: int, out_channels: int, stride: int,
                 resolutions: Sequence[int]):
        super().__init__(in_channels, out_channels, stride, resolutions)
        self.conv1 = MetaConvNorm(in_channels, out_channels, 3, resolutions, stride=stride)
        self.conv2 = MetaConvNorm(out_channels, out_channels, 3, resolutions)

    def residual(self, x, encoding, resolution):
        return self.conv2(F.relu(self.conv1(x, encoding, resolution)), encoding, resolution)


class SANBottleneckBlock(_SANResidualBlock):
    """ResNet-50+ block: generated 1x1 -> 3x3 (the block's stride, as torchvision and the
    authors) -> 1x1 convolutions."""

    def __init__(self, in_channels: int, out_channels: int, stride: int,
                 resolutions: Sequence[int]):
        super().__init__(in_channels, out_channels, stride, resolutions)
        bottleneck_channels = out_channels // 4
        self.conv1 = MetaConvNorm(in_channels, bottleneck_channels, 1, resolutions)
        self.conv2 = MetaConvNorm(bottleneck_channels, bottleneck_channels, 3, resolutions,
                                  stride=stride)
        self.conv3 = MetaConvNorm(bottleneck_channels, out_channels, 1, resolutions)

    def residual(self, x, encoding, resolution):
        x = F.relu(self.conv1(x, encoding, resolution))
        x = F.relu(self.conv2(x, encoding, resolution))
        return self.conv3(x, encoding, resolution)


class SANResNet(SANBackbone):
    """Scale-adaptive ResNet: shared 7x7 stem conv (stride 2) with private BN and a 3x3 max
    pool, then res2..res5 of generated-convolution blocks (strides 4, 8, 16, 32).

    ``width`` multiplies every channel count (stem included) for cheap variants; ``out_features``
    are any of "stem", "res2".."res5". All stages are built and run whatever the outputs.
    """

    def __init__(self, depth: int = 18, resolutions: Sequence[int] = (224, 192, 160, 128, 96),
                 width: float = 1.0, out_features: Sequence[str] = ("res5",), in_channels: int = 3):
        super().__init__(resolutions)
        if depth not in RESNET_BLOCKS_PER_STAGE:
            raise ValueError(f"depth={depth} is not one of {sorted(RESNET_BLOCKS_PER_STAGE)}")
        if width <= 0:
            raise ValueError(f"width={width} must be positive")
        basic = depth < 50
        block_class = SANBasicBlock if basic else SANBottleneckBlock
        stage_channels = [64, 128, 256, 512] if basic else [256, 512, 1024, 2048]
        stem_channels = int(round(64 * width))

        self.stem_conv = nn.Conv2d(in_channels, stem_channels, 7, stride=2, padding=3, bias=False)
        c2_msra_fill(self.stem_conv)
        self.stem_norm = PrivateBatchNorm2d(stem_channels, self.resolutions)
        self._out_feature_channels = {"stem": stem_channels}
        self._out_feature_strides = {"stem": 4}

        self.stages = nn.ModuleDict()
        channels = stem_channels
        specs = zip(RESNET_BLOCKS_PER_STAGE[depth], stage_channels, [1, 2, 2, 2])
        for index, (num_blocks, out_channels, first_stride) in enumerate(specs):
            name, out_channels = f"res{index + 2}", int(round(out_channels * width))
            blocks = []
            for stride in [first_stride] + [1] * (num_blocks - 1):
                blocks.append(block_class(channels, out_channels, stride, self.resolutions))
                channels = out_channels
            self.stages[name] = nn.ModuleList(blocks)
            self._out_feature_channels[name] = out_channels
            self._out_feature_strides[name] = 4 * 2 ** index

        unknown = sorted(set(out_features) - set(self._out_feature_channels))
        if not out_features or unknown:
            raise ValueError(
                f"out_features={tuple(out_features)} must be a non-empty subset of "
                f"{tuple(self._out_feature_channels)}"
            )
        self._out_features = list(out_features)

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        resolution, encoding = self.resolution_and_encoding(x)
        x = F.relu(self.stem_norm(self.stem_conv(x), resolution))
        x = F.max_pool2d(x, kernel_size=3, stride=2, padding=1)
        outputs = {"stem": x}
        for name, blocks in self.stages.items():
            for block in blocks:
                x = block(x, encoding, resolution)
            outputs[name] = x
        return {name: outputs[name] for name in self._out_features}


def round_channels(channels: float, divisor: int = 8) -> int:
    """MobileNet channel rounding: the nearest multiple of ``divisor`` (at least ``divisor``),
    one step up if rounding lost more than 10%."""
    rounded = max(divisor, int(channels + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * channels else rounded


class SANInvertedResidual(nn.Module):
    """MobileNetV2 block with every convolution generated: 1x1 expansion (absent when the
    expansion ratio is 1) -> 3x3 depthwise (the block's stride) -> linear 1x1 projection, plus
    the input when stride is 1 and the channels match."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, expand_ratio: int,
                 resolutions: Sequence[int]):
        super().__init__()
        hidden = int(round(in_channels * expand_ratio))
        layers = [] if expand_ratio == 1 else [MetaConvNorm(in_channels, hidden, 1, resolutions)]
        layers.append(MetaConvNorm(hidden, hidden, 3, resolutions, stride=stride, groups=hidden))
        layers.append(MetaConvNorm(hidden, out_channels, 1, resolutions))
        self.layers = nn.ModuleList(layers)
        self.adds_input = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor, encoding: float, resolution: int) -> torch.Tensor:
        out = x
        for layer in self.layers[:-1]:
            out = F.relu6(layer(out, encoding, resolution))
        out = self.layers[-1](out, encoding, resolution)
        return x + out if self.adds_input else out


# MobileNetV2 (Sandler et al. 2018, Table 2): expansion t, channels c, repeats n, first stride s
MOBILENETV2_SETTINGS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                        (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]


class SANMobileNetV2(SANBackbone):
    """Scale-adaptive MobileNetV2: every convolution (stem, depthwise, pointwise, final 1x1)
    generated, each followed by private BN.

    Its one output, the final 1x1 conv's map (1280 channels for ``width_mult <= 1``, stride 32),
    is named "res5" like SANResNet's, so a config swaps backbones without changing the
    classifier's ``in_feature``.
    """

    def __init__(self, resolutions: Sequence[int] = (224, 192, 160, 128, 96),
                 width_mult: float = 1.0, in_channels: int = 3):
        super().__init__(resolutions)
        if width_mult <= 0:
            raise ValueError(f"width_mult={width_mult} must be positive")
        channels = round_channels(32 * width_mult)
        self.stem = MetaConvNorm(in_channels, channels, 3, self.resolutions, stride=2)
        blocks = []
        for expand_ratio, base_channels, repeats, first_stride in MOBILENETV2_SETTINGS:
            out_channels = round_channels(base_channels * width_mult)
            for stride in [first_stride] + [1] * (repeats - 1):
                blocks.append(SANInvertedResidual(channels, out_channels, stride, expand_ratio,
                                                  self.resolutions))
                channels = out_channels
        self.blocks = nn.ModuleList(blocks)
        last_channels = round_channels(1280 * width_mult) if width_mult > 1.0 else 1280
        self.head = MetaConvNorm(channels, last_channels, 1, self.resolutions)
        self._out_features = ["res5"]
        self._out_feature_channels = {"res5": last_channels}
        self._out_feature_strides = {"res5": 32}

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        resolution, encoding = self.resolution_and_encoding(x)
        x = F.relu6(self.stem(x, encoding, resolution))
        for block in self.blocks:
            x = block(x, encoding, resolution)
        return {"res5": F.relu6(self.head(x, encoding, resolution))}


@BACKBONE_REGISTRY.register()
def build_san_resnet_backbone(cfg: CfgNode, input_shape: ShapeSpec) -> SANResNet:
    """yacs builder of ``SANResNet``: MODEL.SAN.RESOLUTIONS (the training resolutions) and
    MODEL.RESNETS.{DEPTH, WIDTH, OUT_FEATURES} (the norm is always SAN's private BN)."""
    return SANResNet(
        depth=cfg.MODEL.RESNETS.DEPTH,
        resolutions=cfg.MODEL.SAN.RESOLUTIONS,
        width=cfg.MODEL.RESNETS.WIDTH,
        out_features=cfg.MODEL.RESNETS.OUT_FEATURES,
        in_channels=input_shape.channels,
    )


@BACKBONE_REGISTRY.register()
def build_san_mobilenetv2_backbone(cfg: CfgNode, input_shape: ShapeSpec) -> SANMobileNetV2:
    """yacs builder of ``SANMobileNetV2``: MODEL.SAN.RESOLUTIONS and MODEL.SAN.WIDTH_MULT."""
    return SANMobileNetV2(
        resolutions=cfg.MODEL.SAN.RESOLUTIONS,
        width_mult=cfg.MODEL.SAN.WIDTH_MULT,
        in_channels=input_shape.channels,
    )


def calibrate_batchnorm(backbone: SANBackbone, batches: Iterable[torch.Tensor],
                        resolution: int) -> None:
    """Re-estimate every private BN's statistics at ``resolution`` for "ideal" inference
    (supplement Alg. 2): run the backbone on ``batches`` (image tensors (N, C, H, W) at that
    resolution, preprocessed as the model feeds its backbone, e.g. training images) with the
    encoding of ``resolution``, normalising with batch statistics as the authors do, and store
    the average of the batch means and unbiased variances weighted by each batch's number of
    images (the authors' ``bn_update``; ``PrivateBatchNorm2d.begin_calibration`` has the
    formula), so uneven batches, e.g. a short last one, count by their images.
    How many batches to use is the caller's choice. The backbone's mode and training state are
    restored afterwards; call ``backbone.set_inference_mode("ideal")`` to use the statistics.
    """
    if not isinstance(backbone, SANBackbone):
        raise TypeError(
            f"calibrate_batchnorm needs a SAN backbone, got {type(backbone).__name__}: pass the "
            "classifier's backbone (model.backbone)"
        )
    norms = [module for module in backbone.modules() if isinstance(module, PrivateBatchNorm2d)]
    was_training, mode = backbone.training, backbone.inference_mode
    backbone.eval()
    backbone.set_inference_mode("ideal")
    for norm in norms:
        norm.begin_calibration(resolution)
    completed = False
    try:
        with torch.no_grad():
            num_batches = 0
            for images in batches:
                backbone(images)
                num_batches += 1
        if num_batches == 0:
            raise ValueError("calibrate_batchnorm got no batches: pass at least one image batch")
        completed = True
    finally:
        for norm in norms:
            norm.end_calibration(keep=completed)
        backbone.set_inference_mode(mode)
        backbone.train(was_training)
