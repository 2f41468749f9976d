"""ResNet-WS and DenseNet121-WS backbones (appendix Tables A1/A4), and conv5_x as the RoI head of
the plain-ResNet C4 baseline (Table A2).

The WS networks keep every block convolution at stride 1 and downsample with 2x2 max-pools, as in
the authors' code: a deep 3x3 stem (conv 3x3 stride 2 -> conv 3x3 -> conv 3x3, each norm + ReLU,
no bias) closed by a 2x2 max-pool of stride 2 (stride 4), then a 2x2 max-pool after the last block
of res2 and of res3. Both forms share every weight and differ only in ``output_stride``:

* 8, the WSOD form (Table A4): the pool after res3 has stride 1 (kernel 2, no padding, so it
  shrinks the map by one pixel: 224 -> res3/res4/res5 27x27), and the 3x3 convolutions of res4
  and res5 are dilated by 2 (padding 2).
* 16, the ImageNet classification form (Table A1): the pool after res3 has stride 2 and nothing
  is dilated (224 -> res4/res5 14x14; the classifier max-pools that to the neck's 7x7).

The ``res2`` / ``res3`` outputs are taken after their pools (strides 8 and 8 or 16): the pool is
the end of the stage, as in the authors' blocks. Parameter names follow detectron2's ResNet
(``stem.conv1.weight``, ``res2.0.conv1.norm.weight``, ``res3.0.shortcut.weight``, ...), with the
stem's three convolutions ``stem.conv1``..``stem.conv3``; the pools have no parameters.
"""
from typing import Dict, List, Sequence, Tuple

import torch
import torch.nn.functional as F
from fvcore.nn.weight_init import c2_msra_fill
from torch import nn

from detectron2.config import CfgNode, configurable
from detectron2.layers import CNNBlockBase, Conv2d, ShapeSpec, get_norm
from detectron2.modeling import BACKBONE_REGISTRY, Backbone
from detectron2.modeling.backbone.resnet import BasicBlock, BottleneckBlock, ResNet

from projects.common.modeling.backbone import RESNET_BLOCKS_PER_STAGE

__all__ = [
    "DeepStem",
    "DenseNetWS",
    "DilatedBasicBlock",
    "Res5BoxHead",
    "ResNetWS",
    "build_densenet_ws_backbone",
    "build_resnet_ws_backbone",
    "resnet_ws_stage_channels",
]

STAGE_NAMES = ("res2", "res3", "res4", "res5")
# output stride -> (stride of the 2x2 max-pool after res2 and res3, dilation of res4 and res5)
_FORMS = {8: ({"res2": 2, "res3": 1}, 2), 16: ({"res2": 2, "res3": 2}, 1)}


def _ws_form(output_stride: int) -> Tuple[Dict[str, int], Dict[str, int]]:
    """Pool strides after each stage (stages without a pool absent) and dilation per stage."""
    if output_stride not in _FORMS:
        raise ValueError(
            f"output_stride={output_stride} must be 8 (the WSOD form, Table A4) or 16 (the "
            "ImageNet classification form, Table A1)"
        )
    pool_strides, deep_dilation = _FORMS[output_stride]
    return dict(pool_strides), {"res2": 1, "res3": 1, "res4": deep_dilation, "res5": deep_dilation}


def resnet_ws_stage_channels(depth: int, width: float = 1.0) -> Dict[str, int]:
    """Output channels of res2..res5 of ResNet-``depth`` (-WS or plain) at ``width`` x the usual."""
    if depth not in RESNET_BLOCKS_PER_STAGE:
        raise ValueError(f"depth={depth} is not one of {sorted(RESNET_BLOCKS_PER_STAGE)}")
    if width <= 0:
        raise ValueError(f"width={width} must be positive")
    channels = [64, 128, 256, 512] if depth < 50 else [256, 512, 1024, 2048]
    return {name: int(round(c * width)) for name, c in zip(STAGE_NAMES, channels)}


class DeepStem(CNNBlockBase):
    """conv3x3 stride 2 -> conv3x3 -> conv3x3 (each norm + ReLU, no bias) -> 2x2 max-pool
    stride 2: output stride 4, like detectron2's BasicStem but with the 7x7 conv replaced."""

    def __init__(self, in_channels: int = 3, out_channels: int = 64, norm: str = "FrozenBN"):
        super().__init__(in_channels, out_channels, 4)
        for index, conv_in in enumerate([in_channels, out_channels, out_channels], start=1):
            conv = Conv2d(conv_in, out_channels, kernel_size=3, stride=2 if index == 1 else 1,
                          padding=1, bias=False, norm=get_norm(norm, out_channels))
            c2_msra_fill(conv)
            self.add_module(f"conv{index}", conv)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in (self.conv1, self.conv2, self.conv3):
            x = F.relu_(conv(x))
        return F.max_pool2d(x, kernel_size=2, stride=2)


class DilatedBasicBlock(BasicBlock):
    """detectron2's BasicBlock with both 3x3 convolutions dilated by ``dilation`` (padding =
    dilation, so the size is kept): v0.6's BasicBlock has no dilation argument. Same parameters,
    names, initialisation and forward as BasicBlock."""

    def __init__(self, in_channels: int, out_channels: int, *, stride: int = 1, norm: str = "BN",
                 dilation: int = 1):
        super().__init__(in_channels, out_channels, stride=stride, norm=norm)
        for conv in (self.conv1, self.conv2):
            conv.dilation = (dilation, dilation)
            conv.padding = (dilation, dilation)


class PooledStagesBackbone(Backbone):
    """What ResNet-WS and DenseNet-WS share: a stem, then the stages res2..res5 whose blocks all
    have stride 1, a 2x2 max-pool closing the stages in ``pool_strides``, output selection
    (detectron2's convention: stages after the last requested output are dropped, so that
    no parameter goes unused) and detectron2's ResNet freezing."""

    def __init__(self, stem: CNNBlockBase, stages: Sequence[Sequence[CNNBlockBase]],
                 pool_strides: Dict[str, int], out_features: Sequence[str], freeze_at: int):
        super().__init__()
        names = ("stem",) + STAGE_NAMES
        unknown = sorted(set(out_features) - set(names))
        if not out_features or unknown:
            raise ValueError(f"out_features={tuple(out_features)} must be a non-empty subset of {names}")
        if not 0 <= freeze_at <= 5:
            raise ValueError(
                f"freeze_at={freeze_at} must be in 0..5: 0 trains everything, 1 freezes the stem, "
                "k freezes the stem and res2..res{k}, 5 freezes the whole backbone (the paper's F5)"
            )
        self.stem = stem
        self.pool_strides = dict(pool_strides)
        self._out_features = list(out_features)
        stride = stem.stride
        self._out_feature_strides = {"stem": stride}
        self._out_feature_channels = {"stem": stem.out_channels}
        self.stage_names = STAGE_NAMES[: max(names.index(name) for name in out_features)]
        for name, blocks in zip(self.stage_names, stages):
            self.add_module(name, nn.Sequential(*blocks))
            stride *= self.pool_strides.get(name, 1)
            self._out_feature_strides[name] = stride
            self._out_feature_channels[name] = blocks[-1].out_channels
        self.freeze(freeze_at)

    def freeze(self, freeze_at: int) -> "PooledStagesBackbone":
        """detectron2's ResNet semantics: ``freeze_at >= 1`` freezes the stem, ``>= k`` (k = 2..5)
        also res{k}; frozen blocks have ``requires_grad=False`` and FrozenBatchNorm2d."""
        if freeze_at >= 1:
            self.stem.freeze()
        for index, name in enumerate(self.stage_names, start=2):
            if freeze_at >= index:
                for block in getattr(self, name):
                    block.freeze()
        return self

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        if x.dim() != 4:
            raise ValueError(f"expected an image batch (N, C, H, W), got shape {list(x.shape)}")
        x = self.stem(x)
        outputs = {"stem": x}
        for name in self.stage_names:
            x = getattr(self, name)(x)
            if name in self.pool_strides:
                x = F.max_pool2d(x, kernel_size=2, stride=self.pool_strides[name])
            outputs[name] = x
        return {name: outputs[name] for name in self._out_features}

    def output_shape(self) -> Dict[str, ShapeSpec]:
        return {
            name: ShapeSpec(channels=self._out_feature_channels[name], stride=self._out_feature_strides[name])
            for name in self._out_features
        }


class ResNetWS(PooledStagesBackbone):
    """
    ResNet-WS (appendix Table A4 / A1): a deep 3x3 stem, detectron2's residual blocks all at
    stride 1 (projection shortcuts 1x1 stride 1), 2x2 max-pools after res2 and res3, and in the
    WSOD form (``output_stride=8``) dilation 2 in res4/res5. ``output_stride=16`` is the
    ImageNet classification form with the same weights (see the module docstring).

    R18 uses basic blocks [2, 2, 2, 2], R50/R101 bottlenecks [3, 4, 6, 3] / [3, 4, 23, 3].
    Conv + norm-affine parameters at width 1: R18 11.24M, R50 23.57M, R101 42.57M.
    """

    def __init__(self, depth: int = 50, *, output_stride: int = 8, norm: str = "FrozenBN",
                 freeze_at: int = 5, out_features: Sequence[str] = ("res5",), width: float = 1.0,
                 in_channels: int = 3):
        """
        Args:
            depth: 18, 50 or 101 (any depth of detectron2's ResNet builds).
            output_stride: 8 (WSOD form) or 16 (classification form).
            norm: "FrozenBN" (WSOD fine-tuning), "BN" / "SyncBN" (ImageNet pre-training), or any
                norm of ``detectron2.layers.get_norm``.
            freeze_at: 0..5 as detectron2's ResNet; the default 5 is the paper's F5 (only the
                neck and heads train).
            out_features: any of "stem", "res2".."res5".
            width: multiplies every channel count (stem included); 1.0 is the paper's network,
                smaller widths are for the CPU configs.
            in_channels: image channels.
        """
        pool_strides, dilations = _ws_form(output_stride)
        stage_channels = resnet_ws_stage_channels(depth, width)
        stem_channels = int(round(64 * width))
        stem = DeepStem(in_channels, stem_channels, norm)
        stages, channels = [], stem_channels
        for name, num_blocks in zip(STAGE_NAMES, RESNET_BLOCKS_PER_STAGE[depth]):
            out_channels = stage_channels[name]
            if depth < 50:
                block_options = dict(block_class=DilatedBasicBlock)
            else:
                block_options = dict(block_class=BottleneckBlock, bottleneck_channels=out_channels // 4)
            stages.append(ResNet.make_stage(num_blocks=num_blocks, in_channels=channels,
                                            out_channels=out_channels, norm=norm,
                                            dilation=dilations[name], **block_options))
            channels = out_channels
        super().__init__(stem, stages, pool_strides, out_features, freeze_at)
        self.depth = depth
        self.output_stride = output_stride


class DenseLayer(nn.Module):
    """DenseNet bottleneck layer: BN-ReLU-conv1x1 (bottleneck_width x growth) -> BN-ReLU-conv3x3
    (growth, dilated) and the input concatenated with the ``growth_rate`` new channels."""

    def __init__(self, in_channels: int, growth_rate: int, bottleneck_width: int, norm: str,
                 dilation: int):
        super().__init__()
        hidden = bottleneck_width * growth_rate
        self.norm1 = get_norm(norm, in_channels)
        self.conv1 = Conv2d(in_channels, hidden, kernel_size=1, bias=False)
        self.norm2 = get_norm(norm, hidden)
        self.conv2 = Conv2d(hidden, growth_rate, kernel_size=3, padding=dilation,
                            dilation=dilation, bias=False)
        for conv in (self.conv1, self.conv2):
            c2_msra_fill(conv)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        new = self.conv1(F.relu(self.norm1(x)))
        new = self.conv2(F.relu_(self.norm2(new)))
        return torch.cat([x, new], dim=1)


class DenseBlock(CNNBlockBase):
    """``num_layers`` DenseLayers: in_channels + num_layers * growth_rate output channels."""

    def __init__(self, in_channels: int, num_layers: int, *, growth_rate: int,
                 bottleneck_width: int, norm: str, dilation: int):
        super().__init__(in_channels, in_channels + num_layers * growth_rate, 1)
        self.layers = nn.Sequential(*[
            DenseLayer(in_channels + index * growth_rate, growth_rate, bottleneck_width, norm, dilation)
            for index in range(num_layers)
        ])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class Transition(CNNBlockBase):
    """DenseNet transition without its pooling (the backbone's max-pools downsample):
    BN-ReLU-conv1x1 to ``out_channels``."""

    def __init__(self, in_channels: int, out_channels: int, *, norm: str):
        super().__init__(in_channels, out_channels, 1)
        self.norm = get_norm(norm, in_channels)
        self.conv = Conv2d(in_channels, out_channels, kernel_size=1, bias=False)
        c2_msra_fill(self.conv)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.relu(self.norm(x)))


class NormReLU(CNNBlockBase):
    """The BN-ReLU that closes a pre-activation network (DenseNet's norm5)."""

    def __init__(self, channels: int, *, norm: str):
        super().__init__(channels, channels, 1)
        self.norm = get_norm(norm, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.norm(x))


class DenseNetWS(PooledStagesBackbone):
    """
    DenseNet121-WS: DenseNet-121 (growth 32, bottleneck width 4, dense blocks 6/12/24/16,
    compression 0.5, pre-activation BN-ReLU-conv) reshaped like ResNet-WS. The appendix reports
    its top-1 error (25.7%) but gives no table, so the layout is OURS, mapped one-to-one onto
    ResNet-WS with dense block k + its transition as stage res{k+1}:

    * stem: ResNet-WS's DeepStem (3x3 convs, 64 channels, 2x2 max-pool) instead of conv7x7 +
      3x3 max-pool;
    * transitions keep their BN-ReLU-conv1x1 but lose their 2x2 average pool; downsampling is
      ResNet-WS's: a 2x2 max-pool after res2 (stride 2) and res3 (stride 1 in the WSOD form,
      2 in the classification form), none after res4 (the last transition);
    * the 3x3 convs of dense blocks 3 and 4 (res4, res5) are dilated by 2 in the WSOD form;
    * res5 is dense block 4 followed by the final BN-ReLU (1024 channels).

    Output strides, ``output_stride``, ``norm``, ``freeze_at`` and ``out_features`` are exactly
    those of ResNetWS. Conv + norm-affine parameters: 7,020,160 (torchvision's DenseNet-121
    features: 6,953,856; the difference is the stem).
    """

    BLOCK_LAYERS = (6, 12, 24, 16)

    def __init__(self, *, output_stride: int = 8, norm: str = "FrozenBN", freeze_at: int = 5,
                 out_features: Sequence[str] = ("res5",), growth_rate: int = 32,
                 bottleneck_width: int = 4, stem_channels: int = 64, in_channels: int = 3):
        pool_strides, dilations = _ws_form(output_stride)
        stem = DeepStem(in_channels, stem_channels, norm)
        stages: List[List[CNNBlockBase]] = []
        channels = stem_channels
        for name, num_layers in zip(STAGE_NAMES, self.BLOCK_LAYERS):
            block = DenseBlock(channels, num_layers, growth_rate=growth_rate,
                               bottleneck_width=bottleneck_width, norm=norm, dilation=dilations[name])
            if name == STAGE_NAMES[-1]:
                closing = NormReLU(block.out_channels, norm=norm)
            else:
                closing = Transition(block.out_channels, block.out_channels // 2, norm=norm)
            stages.append([block, closing])
            channels = closing.out_channels
        super().__init__(stem, stages, pool_strides, out_features, freeze_at)
        self.output_stride = output_stride


class Res5BoxHead(nn.Module):
    """
    conv5_x of a plain detectron2 ResNet applied per RoI: the C4 arrangement of Table A2 (plain
    ResNet up to res4, stride 16, 7x7 RoIPool, then conv5_x). Like detectron2's Res5ROIHeads
    (its ``_build_res5_block``): the first block has stride 2, so a (R, in_channels, 7, 7) input
    becomes (R, output_size, 4, 4), which is averaged to the returned (R, output_size) vector,
    the per-RoI feature the WSOD heads take (the role RedundantAdaptationNeck plays for
    ResNet-WS; both expose ``in_channels`` and ``output_size``).

    in_channels / output_size: 1024 / 2048 for R50/R101, 256 / 512 for R18 (x ``width``).
    Parameters are ``res5.<block>.*`` as in detectron2's ResNet and Res5ROIHeads.
    """

    @configurable
    def __init__(self, depth: int = 50, *, norm: str = "FrozenBN", freeze: bool = False,
                 stride_in_1x1: bool = False, width: float = 1.0):
        """
        Args:
            depth: ResNet depth (18, 50, 101, ...).
            norm: norm of the blocks (see ``detectron2.layers.get_norm``).
            freeze: freeze the blocks (``requires_grad=False``, FrozenBatchNorm2d): conv5_x is
                part of "F5".
            stride_in_1x1: bottleneck only: stride in the first 1x1 conv (MSRA / Caffe2
                weights) instead of the 3x3 (torchvision weights, the collection's default).
            width: channel multiplier, as ``projects.common.modeling.scaled_resnet_stages``.
        """
        super().__init__()
        channels = resnet_ws_stage_channels(depth, width)
        self.in_channels, self.output_size = channels["res4"], channels["res5"]
        num_blocks = RESNET_BLOCKS_PER_STAGE[depth][3]
        if depth < 50:
            if stride_in_1x1:
                raise ValueError("stride_in_1x1 applies to bottleneck blocks (depth >= 50) only")
            block_options = dict(block_class=BasicBlock)
        else:
            block_options = dict(block_class=BottleneckBlock, bottleneck_channels=self.output_size // 4,
                                 stride_in_1x1=stride_in_1x1)
        blocks = ResNet.make_stage(num_blocks=num_blocks, stride_per_block=[2] + [1] * (num_blocks - 1),
                                   in_channels=self.in_channels, out_channels=self.output_size,
                                   norm=norm, **block_options)
        if freeze:
            blocks = [block.freeze() for block in blocks]
        self.res5 = nn.Sequential(*blocks)

    @classmethod
    def from_config(cls, cfg: CfgNode, input_shape: ShapeSpec) -> dict:
        """The plain ResNet's MODEL.RESNETS.{DEPTH, NORM, STRIDE_IN_1X1, WIDTH}; frozen with the
        backbone's F5 (MODEL.BACKBONE.FREEZE_AT = 5)."""
        resnets = cfg.MODEL.RESNETS
        options = {"stride_in_1x1": resnets.STRIDE_IN_1X1} if resnets.DEPTH >= 50 else {}
        return {"depth": resnets.DEPTH, "norm": resnets.NORM, "freeze": cfg.MODEL.BACKBONE.FREEZE_AT >= 5,
                "width": resnets.WIDTH, **options}

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.res5(pooled).mean(dim=(2, 3))


@BACKBONE_REGISTRY.register()
def build_resnet_ws_backbone(cfg: CfgNode, input_shape: ShapeSpec) -> ResNetWS:
    """ResNet-WS from a yacs config: MODEL.RESNET_WS.OUTPUT_STRIDE (8: the WSOD form, 16: the
    classification form), MODEL.RESNETS.DEPTH, NORM, OUT_FEATURES, WIDTH and
    MODEL.BACKBONE.FREEZE_AT; the other RESNETS keys describe options of detectron2's ResNet
    that ResNet-WS does not have."""
    return ResNetWS(
        cfg.MODEL.RESNETS.DEPTH,
        output_stride=cfg.MODEL.RESNET_WS.OUTPUT_STRIDE,
        norm=cfg.MODEL.RESNETS.NORM,
        freeze_at=cfg.MODEL.BACKBONE.FREEZE_AT,
        out_features=cfg.MODEL.RESNETS.OUT_FEATURES,
        width=cfg.MODEL.RESNETS.WIDTH,
        in_channels=input_shape.channels,
    )


@BACKBONE_REGISTRY.register()
def build_densenet_ws_backbone(cfg: CfgNode, input_shape: ShapeSpec) -> DenseNetWS:
    """DenseNet121-WS from a yacs config. detectron2's config has no DenseNet node, so it reads
    MODEL.RESNET_WS.OUTPUT_STRIDE, MODEL.RESNETS.NORM, OUT_FEATURES and MODEL.BACKBONE.FREEZE_AT
    (the depth is always 121: MODEL.RESNETS.DEPTH and WIDTH are not read)."""
    return DenseNetWS(
        output_stride=cfg.MODEL.RESNET_WS.OUTPUT_STRIDE,
        norm=cfg.MODEL.RESNETS.NORM,
        freeze_at=cfg.MODEL.BACKBONE.FREEZE_AT,
        out_features=cfg.MODEL.RESNETS.OUT_FEATURES,
        in_channels=input_shape.channels,
    )
