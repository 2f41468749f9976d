"""TiedResNet backbones (tied_conv.resnet): shapes, parameter counts, freezing, options, errors,
builders. The classifier -> detector conversion is tested in test_common_checkpoint.py."""
import pytest
import torch

from detectron2.config import get_cfg
from detectron2.layers import FrozenBatchNorm2d, ShapeSpec
from detectron2.modeling import build_backbone
from detectron2.modeling.backbone import BasicStem, ResNet
from fvcore.nn import parameter_count

from benchmarks.tied_resnet_complexity import classification_model, complexity
from tied_conv.attention import TiedGCB, TiedSE
from tied_conv.resnet import (
    TiedBottleneckBlock,
    add_tied_resnet_config,
    build_tied_resnet,
    default_split_blocks,
)

ALL_STAGES = ("res2", "res3", "res4", "res5")
# A narrow TiedResNet50 (2 splits of 8 channels in res2) for tests that do not need the real size.
SMALL = dict(depth=50, splits=2, base_width=8)


def test_outputs_match_detectron2_resnet():
    tied = build_tied_resnet(norm="BN", freeze_at=0, out_features=ALL_STAGES).eval()
    plain = ResNet(BasicStem(norm="BN"), ResNet.make_default_stages(50), out_features=list(ALL_STAGES))
    assert tied.output_shape() == plain.output_shape()
    with torch.no_grad():
        outputs = tied(torch.zeros(1, 3, 64, 96))
    for name, spec in tied.output_shape().items():
        assert outputs[name].shape == (1, spec.channels, 64 // spec.stride, 96 // spec.stride)


def test_block_shapes_and_default_layout():
    block = TiedBottleneckBlock(64, 256, split_width=32, stride=2, norm="BN").eval()
    assert [conv.B for conv in block.split_convs] == [1, 2, 4, 8]
    assert block.entry.B == 2 and block.entry.out_channels == 128
    assert block.mixer.in_channels == 32 and block.mixer.out_channels == 128
    assert block.exit.in_channels == 128 and block.shortcut is not None
    assert block(torch.zeros(2, 64, 16, 16)).shape == (2, 256, 8, 8)
    assert TiedBottleneckBlock(256, 256, split_width=32).shortcut is None


def test_se_attention_before_the_addition():
    block = TiedBottleneckBlock(64, 256, split_width=32, attention="se", attention_B=2, norm="BN").eval()
    assert block.attention.reduce.B == 2 and block.attention.reduce.in_features == 256
    assert block(torch.zeros(2, 64, 8, 8)).shape == (2, 256, 8, 8)
    plain = TiedBottleneckBlock(64, 256, split_width=32)
    assert plain.attention is None
    added = sum(p.numel() for p in block.parameters()) - sum(p.numel() for p in plain.parameters())
    assert added == sum(p.numel() for p in block.attention.parameters())


def test_gcb_attention_starts_as_the_plain_block():
    torch.manual_seed(0)
    plain = TiedBottleneckBlock(64, 256, split_width=32, norm="BN").eval()
    with_gcb = TiedBottleneckBlock(64, 256, split_width=32, attention="gcb", attention_B=2, norm="BN").eval()
    assert isinstance(with_gcb.attention, TiedGCB) and with_gcb.attention.B == 2
    missing, unexpected = with_gcb.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and missing and all(key.startswith("attention.") for key in missing)
    added = sum(p.numel() for p in with_gcb.parameters()) - sum(p.numel() for p in plain.parameters())
    assert added == sum(p.numel() for p in with_gcb.attention.parameters())
    x = torch.randn(2, 64, 8, 8)
    with torch.no_grad():
        # a fresh GCB ends in a zero-initialised conv: the block starts as the one without it
        assert torch.allclose(with_gcb(x), plain(x), atol=1e-6)
        torch.nn.init.normal_(with_gcb.attention.transform[-1].weight)
        assert not torch.allclose(with_gcb(x), plain(x), atol=1e-3)
    backbone = build_tied_resnet(**SMALL, attention="gcb", norm="BN", freeze_at=0).eval()
    assert all(isinstance(block.attention, TiedGCB) for block in backbone.res5)
    with torch.no_grad():
        assert backbone(torch.zeros(1, 3, 64, 64))["res5"].shape == (1, 2048, 2, 2)


def test_split_groups_make_tgc_splits():
    block = TiedBottleneckBlock(64, 256, split_width=64, split_groups=8, stride=2, norm="BN").eval()
    assert [(conv.B, conv.groups) for conv in block.split_convs] == [(1, 8), (2, 8), (4, 8), (8, 8)]
    assert block.split_convs[3].weight.shape == (8, 1, 3, 3)  # 64/8 channels, 8 groups of 1
    assert block(torch.zeros(2, 64, 16, 16)).shape == (2, 256, 8, 8)
    narrow = TiedBottleneckBlock(64, 256, split_width=32, split_groups=8)  # 32 / 8 allows B <= 4
    assert [conv.B for conv in narrow.split_convs] == [1, 2, 4, 4]


@pytest.mark.parametrize(
    "splits, width, expected",
    [(4, 32, [1, 2, 4, 8]), (4, 18, [1, 2, 2, 2]), (4, 36, [1, 2, 4, 4]), (2, 48, [1, 2]),
     (6, 24, [1, 2, 4, 8, 1, 2]), (8, 18, [1, 2, 2, 2, 1, 2, 2, 2])],
)
def test_default_split_blocks(splits, width, expected):
    assert default_split_blocks(splits, width) == expected


# The "ours" column of benchmarks/tied_resnet_complexity.py (classification form, BN affine counted).
EXPECTED_PARAMS_M = [
    (dict(depth=50, tied=False), 25.56),
    (dict(depth=50, variant="S"), 13.36),
    (dict(depth=50), 22.15),
    (dict(depth=101, variant="S"), 21.10),
    (dict(depth=101), 37.82),
    (dict(depth=50, splits=2, base_width=48), 23.44),
    (dict(depth=50, splits=6, base_width=24), 23.83),
    (dict(depth=50, splits=8, base_width=18), 21.85),
    (dict(depth=50, mixer="concat"), 25.92),
    (dict(depth=101, variant="S", attention="se", attention_B=2), 22.30),
    (dict(depth=101, attention="se", attention_B=2), 39.02),
    (dict(depth=101, base_width=64, split_groups=8), 64.86),
]


@pytest.mark.parametrize("kwargs, expected", EXPECTED_PARAMS_M)
def test_parameter_counts(kwargs, expected):
    params = parameter_count(classification_model(**kwargs))[""] / 1e6
    assert params == pytest.approx(expected, abs=0.05)


def test_flops_of_tied_resnet50():
    params, gflops = complexity(classification_model(depth=50))
    assert params == pytest.approx(22.15, abs=0.05)
    assert gflops == pytest.approx(4.13, abs=0.01)


def test_freeze_at_freezes_stem_and_res2_only():
    backbone = build_tied_resnet(**SMALL, norm="BN", freeze_at=2, out_features=ALL_STAGES)
    for module in (backbone.stem, backbone.res2):
        assert not any(p.requires_grad for p in module.parameters())
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in module.modules())
    assert isinstance(backbone.res2[0].entry_norm, FrozenBatchNorm2d)
    for module in (backbone.res3, backbone.res4, backbone.res5):
        assert all(p.requires_grad for p in module.parameters())
    unfrozen = build_tied_resnet(**SMALL, norm="BN", freeze_at=0)
    assert all(p.requires_grad for p in unfrozen.parameters())


@pytest.mark.parametrize(
    "norm, norm_class",
    [("FrozenBN", FrozenBatchNorm2d), ("BN", torch.nn.BatchNorm2d),
     ("SyncBN", torch.nn.SyncBatchNorm), ("GN", torch.nn.GroupNorm)],
)
def test_norm_options(norm, norm_class):
    backbone = build_tied_resnet(depth=50, norm=norm, stem_norm="BN", freeze_at=0).eval()
    block = backbone.res3[0]
    for layer in (block.entry_norm, block.split_norm, block.mixer.norm, block.exit.norm):
        assert isinstance(layer, norm_class)
    assert isinstance(backbone.stem.conv1.norm, torch.nn.BatchNorm2d)
    with torch.no_grad():
        assert backbone(torch.zeros(1, 3, 32, 32))["res5"].shape == (1, 2048, 1, 1)


def test_mixer_options():
    by_mixer = {
        mixer: build_tied_resnet(**SMALL, mixer=mixer, norm="BN", freeze_at=0).eval()
        for mixer in ("sum", "concat")
    }
    assert by_mixer["sum"].res2[0].mixer.in_channels == 8
    assert by_mixer["concat"].res2[0].mixer.in_channels == 16
    with torch.no_grad():
        for backbone in by_mixer.values():
            assert backbone(torch.zeros(1, 3, 64, 64))["res5"].shape == (1, 2048, 2, 2)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: TiedBottleneckBlock(64, 256, split_width=18, split_blocks=[1, 2, 4, 8]),
         "does not divide its 18"),
        (lambda: TiedBottleneckBlock(64, 256, split_width=32, split_blocks=[1, 2]), "one B per split"),
        (lambda: TiedBottleneckBlock(64, 256, split_width=32, mixer="max"), "mixer='max'"),
        (lambda: TiedBottleneckBlock(64, 256, split_width=3, splits=1), "even"),
        (lambda: TiedBottleneckBlock(64, 256, split_width=0), "must be positive"),
        (lambda: TiedBottleneckBlock(64, 256, split_width=36, split_groups=8), "split_groups=8"),
        (lambda: TiedBottleneckBlock(64, 256, split_width=32, split_groups=8, split_blocks=[1, 2, 4, 8]),
         "8 groups per split"),
        (lambda: TiedBottleneckBlock(64, 256, split_width=32, attention="cbam"),
         r"attention 'cbam' is unknown: use one of \['gcb', 'se'\]"),
        (lambda: build_tied_resnet(attention="se", attention_B=3), "B=3"),
        (lambda: build_tied_resnet(depth=34), "depth=34"),
        (lambda: build_tied_resnet(variant="XL"), "variant='XL'"),
        (lambda: build_tied_resnet(freeze_at=6), "freeze_at=6"),
    ],
)
def test_bad_arguments_fail_clearly(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def tied_cfg(backbone_name, out_features=ALL_STAGES, **tied_keys):
    cfg = get_cfg()
    add_tied_resnet_config(cfg)
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.BACKBONE.NAME = backbone_name
    cfg.MODEL.RESNETS.OUT_FEATURES = list(out_features)
    cfg.MODEL.TIED_RESNET.SPLITS, cfg.MODEL.TIED_RESNET.BASE_WIDTH = SMALL["splits"], SMALL["base_width"]
    for key, value in tied_keys.items():
        cfg.MODEL.TIED_RESNET[key] = value
    return cfg


@pytest.mark.parametrize(
    "name, out_features, expected_strides",
    [
        ("build_tied_resnet_backbone", ["res4"], {"res4": 16}),
        ("build_tied_resnet_fpn_backbone", ALL_STAGES, {"p2": 4, "p3": 8, "p4": 16, "p5": 32, "p6": 64}),
        ("build_retinanet_tied_resnet_fpn_backbone", ["res3", "res4", "res5"],
         {"p3": 8, "p4": 16, "p5": 32, "p6": 64, "p7": 128}),
    ],
)
def test_registry_builders(name, out_features, expected_strides):
    cfg = tied_cfg(name, out_features, MIXER="concat")
    if name != "build_tied_resnet_backbone":
        cfg.MODEL.FPN.IN_FEATURES = list(out_features)
    backbone = build_backbone(cfg, ShapeSpec(channels=3)).eval()
    assert {k: v.stride for k, v in backbone.output_shape().items()} == expected_strides
    bottom_up = getattr(backbone, "bottom_up", backbone)
    assert bottom_up.res3[0].mixer.in_channels == 32  # concat of 2 splits of 16
    assert not any(p.requires_grad for p in bottom_up.res2.parameters())  # FREEZE_AT = 2
    with torch.no_grad():
        outputs = backbone(torch.zeros(1, 3, 128, 128))
    for key, stride in expected_strides.items():
        assert outputs[key].shape[-1] == 128 // stride


def test_registry_builder_errors():
    cfg = get_cfg()
    cfg.MODEL.BACKBONE.NAME = "build_tied_resnet_backbone"
    with pytest.raises(KeyError, match="add_tied_resnet_config"):
        build_backbone(cfg)
    cfg = tied_cfg("build_tied_resnet_backbone")
    cfg.MODEL.RESNETS.NUM_GROUPS = 32
    with pytest.raises(ValueError, match="NUM_GROUPS=32.*TIED_RESNET.SPLIT_GROUPS"):
        build_backbone(cfg)
    cfg = tied_cfg("build_tied_resnet_backbone", ATTENTION="cbam")
    with pytest.raises(ValueError, match=r"'cbam' is unknown: use one of \['gcb', 'se'\]"):
        build_backbone(cfg)


@pytest.mark.parametrize("attention, attention_class", [("se", TiedSE), ("gcb", TiedGCB)])
def test_registry_builder_matches_build_tied_resnet(attention, attention_class):
    """Every tied-block option of build_tied_resnet reaches the yacs builder: with the same seed it
    builds the same backbone (weights, hence outputs) as the direct call."""
    cfg = tied_cfg("build_tied_resnet_backbone", SPLIT_GROUPS=2, ATTENTION=attention, ATTENTION_B=2)
    torch.manual_seed(0)
    from_cfg = build_backbone(cfg, ShapeSpec(channels=3)).eval()
    torch.manual_seed(0)
    direct = build_tied_resnet(**SMALL, split_groups=2, attention=attention, attention_B=2,
                               norm="FrozenBN", freeze_at=2, out_features=ALL_STAGES).eval()
    block = from_cfg.res3[0]
    assert [conv.groups for conv in block.split_convs] == [2, 2]
    assert isinstance(block.attention, attention_class)
    assert parameter_count(from_cfg)[""] == parameter_count(direct)[""]
    assert from_cfg.output_shape() == direct.output_shape()
    with torch.no_grad():
        x = torch.randn(1, 3, 64, 64)
        from_cfg_out, direct_out = from_cfg(x), direct(x)
    for name in ALL_STAGES:
        assert torch.equal(from_cfg_out[name], direct_out[name])
