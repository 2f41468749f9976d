"""ResNeSt / TiedResNeSt backbones (tied_conv.resnest): shapes, where the B=2 tied convs are,
the benchmark's parameter counts, split attention, freezing, builders, config, training step."""
import os

import pytest
import torch
from torch import nn

from detectron2.config import LazyConfig, get_cfg, instantiate
from detectron2.layers import FrozenBatchNorm2d, ShapeSpec
from detectron2.modeling import build_backbone
from detectron2.modeling.backbone import BasicStem, ResNet
from fvcore.nn import parameter_count

from benchmarks.tied_resnet_complexity import RESNEST_ROWS, complexity, resnest_classification_model
from tied_conv.layers import TiedBlockConv2d
from tied_conv.resnest import (
    DeepStem,
    SplitAttention,
    SplitAttentionBottleneckBlock,
    add_tied_resnest_config,
    build_tied_resnest,
)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ALL_STAGES = ("res2", "res3", "res4", "res5")
# (parameters, GFLOPs) of the benchmark's classification models at 224x224, per RESNEST_ROWS name
PINNED_COUNTS = {
    "ResNeSt-50-fast (2s1x64d)": (27_483_240, 4.33),
    "TiedResNeSt50-S (B=2, avd after the 3x3)": (15_748_200, 3.46),
}
CLASSIFIER_FC_PARAMETERS = 2048 * 1000 + 1000


def blocks(backbone: ResNet) -> list:
    return [block for stage in backbone.stages for block in stage]


def test_outputs_match_detectron2_resnet():
    tied = build_tied_resnest(norm="BN", freeze_at=0, out_features=ALL_STAGES)
    plain = ResNet(BasicStem(norm="BN"), ResNet.make_default_stages(50), out_features=list(ALL_STAGES))
    assert tied.output_shape() == plain.output_shape()
    assert {name: spec.stride for name, spec in tied.output_shape().items()} == {
        "res2": 4, "res3": 8, "res4": 16, "res5": 32,
    }


@pytest.mark.parametrize("fast", [True, False])
def test_small_instance_output_shapes(fast):
    backbone = build_tied_resnest(width=0.25, fast=fast, norm="BN", freeze_at=0,
                                  out_features=ALL_STAGES).eval()
    with torch.no_grad():
        outputs = backbone(torch.zeros(2, 3, 64, 96))
    for name, spec in backbone.output_shape().items():
        assert outputs[name].shape == (2, spec.channels, 64 // spec.stride, 96 // spec.stride)
    assert [spec.channels for spec in backbone.output_shape().values()] == [64, 128, 256, 512]


def test_tied_convs_are_the_entry_and_split_attention_3x3():
    tied = build_tied_resnest(B=2, norm="BN")
    plain = build_tied_resnest(B=1, norm="BN")
    for block in blocks(tied):
        assert isinstance(block.entry, TiedBlockConv2d) and block.entry.B == 2
        assert block.entry.kernel_size == (1, 1)
        conv = block.split_conv
        assert isinstance(conv, TiedBlockConv2d) and conv.B == 2 and conv.kernel_size == (3, 3)
        assert conv.groups == 2 and conv.out_channels == 2 * block.entry.out_channels
    tied_convs = [m for m in tied.modules() if isinstance(m, TiedBlockConv2d) and m.B == 2]
    assert len(tied_convs) == 2 * 16  # nothing else: exit, shortcut, attention FCs and stem
    assert not any(isinstance(m, TiedBlockConv2d) for m in tied.stem.modules())
    assert all(m.B == 1 for m in plain.modules() if isinstance(m, TiedBlockConv2d))
    # B=2 keeps 1/4 of the tied convs' parameters and every other parameter
    for tied_block, plain_block in zip(blocks(tied), blocks(plain)):
        for name in ("entry", "split_conv"):
            tied_size = getattr(tied_block, name).weight.numel()
            assert 4 * tied_size == getattr(plain_block, name).weight.numel()
        other = lambda block: sum(p.numel() for n, p in block.named_parameters()  # noqa: E731
                                  if not n.startswith(("entry.", "split_conv.")))
        assert other(tied_block) == other(plain_block)


@pytest.mark.parametrize("name,paper_params,paper_gflops,kwargs", RESNEST_ROWS)
def test_benchmark_counts_are_pinned(name, paper_params, paper_gflops, kwargs):
    params, gflops = PINNED_COUNTS[name]
    model = resnest_classification_model(**kwargs)
    assert parameter_count(model)[""] == params
    measured_params, measured_gflops = complexity(model)
    assert measured_params == params / 1e6 and round(measured_gflops, 2) == gflops


def test_split_attention_convex_combination_of_the_two_splits():
    torch.manual_seed(0)
    attention = SplitAttention(channels=6, radix=2, norm="BN").eval()
    first = torch.rand(3, 6, 5, 4) + 1.0   # hand-made splits, first > second everywhere
    second = -torch.rand(3, 6, 5, 4)
    out = attention(torch.cat([first, second], dim=1))
    # out = w * first + (1 - w) * second with one w in [0, 1] per sample and channel
    weight = (out - second) / (first - second)
    assert torch.allclose(weight, weight[:, :, :1, :1].expand_as(weight), atol=1e-5)
    assert (weight >= 0).all() and (weight <= 1).all()
    weights = attention.attention_weights(torch.cat([first, second], dim=1))
    assert weights.shape == (3, 2, 6, 1, 1)
    assert torch.allclose(weights.sum(dim=1), torch.ones(3, 6, 1, 1))
    assert torch.allclose(weights[:, 0], weight[:, :, :1, :1], atol=1e-5)
    # equal splits come out unchanged, whatever the weights
    assert torch.allclose(attention(torch.cat([first, first], dim=1)), first, atol=1e-6)


def test_split_attention_weights_follow_the_attention_logits():
    attention = SplitAttention(channels=4, radix=2, norm="BN").eval()
    splits = torch.cat([torch.full((1, 4, 3, 3), 2.0), torch.zeros(1, 4, 3, 3)], dim=1)
    with torch.no_grad():
        attention.expand.weight.zero_()
        attention.expand.bias.copy_(torch.tensor([0.0] * 4 + [50.0] * 4))
    assert torch.allclose(attention(splits), torch.zeros(1, 4, 3, 3))  # all weight on split 2
    with torch.no_grad():
        attention.expand.bias.zero_()
    assert torch.allclose(attention(splits), torch.ones(1, 4, 3, 3))  # softmax of equal logits


def test_radix_one_uses_a_sigmoid_gate():
    attention = SplitAttention(channels=4, radix=1, norm="BN").eval()
    with torch.no_grad():
        attention.expand.weight.zero_()
        attention.expand.bias.zero_()
    x = torch.rand(2, 4, 3, 3)
    assert torch.allclose(attention(x), 0.5 * x)


def test_downsampling_block_pools_and_keeps_avg_down_shortcut():
    block = SplitAttentionBottleneckBlock(64, 256, bottleneck_channels=32, stride=2, B=2,
                                          norm="BN").eval()
    assert block.shortcut.kernel_size == (1, 1) and block.shortcut.stride == (1, 1)
    assert block.split_conv.stride == (1, 1)  # the avd pool downsamples, not the conv
    assert block(torch.zeros(2, 64, 15, 16)).shape == (2, 256, 8, 8)
    assert SplitAttentionBottleneckBlock(256, 256, bottleneck_channels=64).shortcut is None


def test_deep_stem():
    stem = DeepStem(3, 32, norm="BN").eval()
    assert [conv.out_channels for conv in stem.convs] == [32, 32, 64]
    assert all(conv.kernel_size == (3, 3) for conv in stem.convs)
    assert stem.out_channels == 64 and stem.stride == 4
    assert stem(torch.zeros(1, 3, 64, 64)).shape == (1, 64, 16, 16)


@pytest.mark.parametrize("freeze_at", [0, 1, 2, 4])
def test_freeze_at_freezes_stem_and_first_stages(freeze_at):
    backbone = build_tied_resnest(width=0.25, norm="BN", freeze_at=freeze_at, out_features=ALL_STAGES)
    parts = [backbone.stem, *backbone.stages]  # freeze_at=k freezes the first k of them
    for index, part in enumerate(parts):
        frozen = index < freeze_at
        assert all(p.requires_grad != frozen for p in part.parameters())
        has_frozen_norm = any(isinstance(m, FrozenBatchNorm2d) for m in part.modules())
        has_bn = any(isinstance(m, nn.BatchNorm2d) for m in part.modules())
        assert has_frozen_norm == frozen and has_bn != frozen


def test_norm_options():
    group_norm = build_tied_resnest(norm="GN")
    assert group_norm(torch.zeros(1, 3, 32, 32))["res5"].shape == (1, 2048, 1, 1)
    assert all(block.attention.reduce.norm is None for block in blocks(group_norm))  # pooled vector
    frozen = build_tied_resnest(norm="FrozenBN", freeze_at=0)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in frozen.modules())
    assert any(isinstance(m, nn.SyncBatchNorm) for m in build_tied_resnest(width=0.25, norm="SyncBN").modules())


def test_forward_backward_tiny_instance():
    torch.manual_seed(0)
    backbone = build_tied_resnest(width=0.25, norm="BN", freeze_at=0, out_features=ALL_STAGES)
    outputs = backbone(torch.randn(2, 3, 64, 64))
    sum(output.square().mean() for output in outputs.values()).backward()
    for name, param in backbone.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all(), name
    assert any(param.grad.abs().sum() > 0 for param in backbone.stem.parameters())


def test_invalid_arguments_name_the_fix():
    with pytest.raises(ValueError, match="divisible by B \\* radix"):
        SplitAttentionBottleneckBlock(64, 256, bottleneck_channels=18, B=2)
    with pytest.raises(ValueError, match="depth=34"):
        build_tied_resnest(depth=34)
    with pytest.raises(ValueError, match="freeze_at"):
        build_tied_resnest(freeze_at=6)
    with pytest.raises(ValueError, match="expected splits of shape"):
        SplitAttention(channels=4, radix=2)(torch.zeros(1, 4, 2, 2))


def yacs_config(backbone_name: str):
    cfg = get_cfg()
    add_tied_resnest_config(cfg)
    cfg.MODEL.BACKBONE.NAME = backbone_name
    cfg.MODEL.RESNETS.NORM = "BN"
    cfg.MODEL.RESNETS.OUT_FEATURES = list(ALL_STAGES)
    cfg.MODEL.FPN.IN_FEATURES = list(ALL_STAGES)
    return cfg


def test_yacs_backbone_builder_reads_the_config():
    cfg = yacs_config("build_tied_resnest_backbone")
    cfg.MODEL.TIED_RESNEST.B = 1
    cfg.MODEL.TIED_RESNEST.FAST = True
    cfg.MODEL.BACKBONE.FREEZE_AT = 0  # frozen norms hold buffers, not parameters
    backbone = build_backbone(cfg, ShapeSpec(channels=3))
    assert all(block.entry.B == 1 and block.fast for block in blocks(backbone))
    resnest50_fast_params = PINNED_COUNTS["ResNeSt-50-fast (2s1x64d)"][0]
    assert sum(p.numel() for p in backbone.parameters()) == resnest50_fast_params - CLASSIFIER_FC_PARAMETERS
    assert all(p.requires_grad for p in backbone.parameters())
    cfg.MODEL.RESNETS.NUM_GROUPS = 32
    with pytest.raises(ValueError, match="TIED_RESNEST.RADIX"):
        build_backbone(cfg, ShapeSpec(channels=3))
    cfg = get_cfg()
    cfg.MODEL.BACKBONE.NAME = "build_tied_resnest_backbone"
    with pytest.raises(KeyError, match="add_tied_resnest_config"):
        build_backbone(cfg, ShapeSpec(channels=3))


def test_fpn_builder_builds():
    backbone = build_backbone(yacs_config("build_tied_resnest_fpn_backbone"), ShapeSpec(channels=3)).eval()
    assert isinstance(backbone.bottom_up.stem, DeepStem)
    frozen = [backbone.bottom_up.stem, backbone.bottom_up.res2]  # detectron2's FREEZE_AT=2
    assert not any(p.requires_grad for part in frozen for p in part.parameters())
    assert all(block.entry.B == 2 and not block.fast for block in blocks(backbone.bottom_up))
    with torch.no_grad():
        outputs = backbone(torch.zeros(1, 3, 64, 64))
    assert {name: tuple(out.shape) for name, out in outputs.items()} == {
        "p2": (1, 256, 16, 16), "p3": (1, 256, 8, 8), "p4": (1, 256, 4, 4),
        "p5": (1, 256, 2, 2), "p6": (1, 256, 1, 1),
    }


def test_imagenet_config_builds_tied_resnest50_s():
    cfg = LazyConfig.load(os.path.join(REPO, "configs/tied_conv/imagenet_cls_tied_resnest50.py"))
    assert cfg.optimizer.lr == 0.1 and cfg.dataloader.train.total_batch_size == 256
    model = instantiate(cfg.model)
    assert isinstance(model.backbone.stem, DeepStem)
    # the classifier's fc is the benchmark's: the same count as the TiedResNeSt50-S row
    assert sum(p.numel() for p in model.parameters()) == PINNED_COUNTS["TiedResNeSt50-S (B=2, avd after the 3x3)"][0]
