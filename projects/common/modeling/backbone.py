"""Backbone helpers shared by the projects' configs."""
from typing import Dict, List, Optional

from detectron2.modeling.backbone.resnet import BasicBlock, BottleneckBlock, ResNet

# blocks in res2..res5 of ResNet-{depth} (He et al. 2016; detectron2's make_default_stages)
RESNET_BLOCKS_PER_STAGE = {18: [2, 2, 2, 2], 34: [3, 4, 6, 3], 50: [3, 4, 6, 3], 101: [3, 4, 23, 3], 152: [3, 8, 36, 3]}


def scaled_resnet_stages(depth: int, width: float = 1.0, stem_channels: int = 64,
                         stage_overrides: Optional[Dict[str, dict]] = None, **block_kwargs) -> List[list]:
    """``ResNet.make_default_stages(depth)`` with every stage's channels multiplied by ``width``.

    ``width=1.0`` gives exactly detectron2's stages; smaller widths give the cheap backbones of
    the CPU configs (and slimmed ResNets). ``stem_channels`` must equal the stem's out_channels.
    ``block_kwargs`` (e.g. ``norm``, ``stride_in_1x1``) are passed to every block;
    ``stage_overrides`` maps a stage name ("res2".."res5") to extra block kwargs for that stage,
    ``block_class`` included (e.g. blocks with a context module in res3-res5 only).
    """
    if depth not in RESNET_BLOCKS_PER_STAGE:
        raise ValueError(f"depth={depth} is not one of {sorted(RESNET_BLOCKS_PER_STAGE)}")
    if width <= 0:
        raise ValueError(f"width={width} must be positive")
    basic = depth < 50
    out_channels = [int(round(c * width)) for c in ([64, 128, 256, 512] if basic else [256, 512, 1024, 2048])]
    in_channels = [stem_channels] + out_channels[:-1]
    overrides = dict(stage_overrides or {})
    unknown = sorted(set(overrides) - {"res2", "res3", "res4", "res5"})
    if unknown:
        raise ValueError(f"stage_overrides has unknown stages {unknown}: use res2..res5")
    stages = []
    stage_specs = zip(RESNET_BLOCKS_PER_STAGE[depth], [1, 2, 2, 2], in_channels, out_channels)
    for stage_index, (num_blocks, stride, in_c, out_c) in enumerate(stage_specs, start=2):
        kwargs = dict(block_kwargs)
        if not basic:
            kwargs["bottleneck_channels"] = out_c // 4
        kwargs.update(overrides.get(f"res{stage_index}", {}))
        block_class = kwargs.pop("block_class", BasicBlock if basic else BottleneckBlock)
        stages.append(
            ResNet.make_stage(
                block_class=block_class,
                num_blocks=num_blocks,
                stride_per_block=[stride] + [1] * (num_blocks - 1),
                in_channels=in_c,
                out_channels=out_c,
                **kwargs,
            )
        )
    return stages
