"""Backbone helpers shared by the projects' configs."""
from typing import List

from detectron2.modeling.backbone.resnet import BasicBlock, BottleneckBlock, ResNet

_BLOCKS_PER_STAGE = {18: [2, 2, 2, 2], 34: [3, 4, 6, 3], 50: [3, 4, 6, 3], 101: [3, 4, 23, 3], 152: [3, 8, 36, 3]}


def scaled_resnet_stages(depth: int, width: float = 1.0, stem_channels: int = 64, **block_kwargs) -> List[list]:
    """``ResNet.make_default_stages(depth)`` with every stage's channels multiplied by ``width``.

    ``width=1.0`` gives exactly detectron2's stages; smaller widths give the cheap backbones of
    the CPU configs (and slimmed ResNets). ``stem_channels`` must equal the stem's out_channels.
    ``block_kwargs`` (e.g. ``norm``, ``stride_in_1x1``) are passed to every block.
    """
    if depth not in _BLOCKS_PER_STAGE:
        raise ValueError(f"depth={depth} is not one of {sorted(_BLOCKS_PER_STAGE)}")
    if width <= 0:
        raise ValueError(f"width={width} must be positive")
    basic = depth < 50
    out_channels = [int(round(c * width)) for c in ([64, 128, 256, 512] if basic else [256, 512, 1024, 2048])]
    in_channels = [stem_channels] + out_channels[:-1]
    stages = []
    for num_blocks, stride, in_c, out_c in zip(_BLOCKS_PER_STAGE[depth], [1, 2, 2, 2], in_channels, out_channels):
        kwargs = dict(block_kwargs)
        if not basic:
            kwargs["bottleneck_channels"] = out_c // 4
        stages.append(
            ResNet.make_stage(
                block_class=BasicBlock if basic else BottleneckBlock,
                num_blocks=num_blocks,
                stride_per_block=[stride] + [1] * (num_blocks - 1),
                in_channels=in_c,
                out_channels=out_c,
                **kwargs,
            )
        )
    return stages
