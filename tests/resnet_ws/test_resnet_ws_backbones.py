"""ResNet-WS / DenseNet121-WS backbones, the plain C4/C5 pieces, the classification form
(NeckClassifier) and its checkpoint loading into a WSOD-shaped model, and the project's configs.
Real-size networks are only built and counted; forwards run at small widths and sizes."""
import os
import runpy
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import LazyConfig, instantiate
from detectron2.layers import FrozenBatchNorm2d
from detectron2.modeling import BACKBONE_REGISTRY, META_ARCH_REGISTRY, build_backbone

from projects.common.config import get_cfg
from projects.resnet_ws.backbones import (
    DenseNetWS,
    DilatedBasicBlock,
    Res5BoxHead,
    ResNetWS,
    resnet_ws_stage_channels,
)
from projects.resnet_ws.classification import NeckClassifier
from projects.resnet_ws.neck import RedundantAdaptationNeck

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ALL_OUTPUTS = ("stem", "res2", "res3", "res4", "res5")
PARTS = ("stem", "res2", "res3", "res4", "res5")  # freeze_at k freezes PARTS[:k]


def load_config(name):
    return LazyConfig.load(os.path.join(REPO, "configs", "resnet_ws", name))


def config_models():
    """configs/resnet_ws/models.py's functions and constants (LazyConfig.load keeps only data)."""
    return SimpleNamespace(**runpy.run_path(os.path.join(REPO, "configs", "resnet_ws", "models.py")))


def count_parameters(module):
    return sum(p.numel() for p in module.parameters())


def basic_stage_parameters(in_channels, out_channels, num_blocks):
    """Conv + BN-affine parameters of a stage of basic blocks (1x1 projection when channels change)."""
    total = 0
    for _ in range(num_blocks):
        total += 9 * in_channels * out_channels + 9 * out_channels * out_channels + 4 * out_channels
        if in_channels != out_channels:
            total += in_channels * out_channels + 2 * out_channels
        in_channels = out_channels
    return total


# ---------------------------------------------------------------- ResNet-WS structure


@pytest.mark.parametrize("depth, millions", [(18, 11.24), (50, 23.57), (101, 42.57)])
def test_parameter_counts_match_the_notes(depth, millions):
    backbone = ResNetWS(depth, norm="BN", freeze_at=0)
    assert round(count_parameters(backbone) / 1e6, 2) == millions


def test_resnet18_ws_count_by_hand_and_with_frozen_bn():
    stem = 9 * 3 * 64 + 2 * 9 * 64 * 64 + 3 * 2 * 64
    stages = (basic_stage_parameters(64, 64, 2) + basic_stage_parameters(64, 128, 2)
              + basic_stage_parameters(128, 256, 2) + basic_stage_parameters(256, 512, 2))
    assert stem + stages == 11_242_816
    assert count_parameters(ResNetWS(18, norm="BN", freeze_at=0)) == stem + stages
    # FrozenBN keeps the affine terms as buffers: conv weights + their weight/bias give the same
    frozen = ResNetWS(18)
    norms = [m for m in frozen.modules() if isinstance(m, FrozenBatchNorm2d)]
    affine = sum(m.weight.numel() + m.bias.numel() for m in norms)
    assert count_parameters(frozen) + affine == stem + stages


@pytest.mark.parametrize("depth", [18, 50])
def test_output_channels_and_strides_of_both_forms(depth):
    channels = {"stem": 64, **resnet_ws_stage_channels(depth)}
    expected_strides = {8: [4, 8, 8, 8, 8], 16: [4, 8, 16, 16, 16]}
    for output_stride, strides in expected_strides.items():
        shapes = ResNetWS(depth, output_stride=output_stride, out_features=ALL_OUTPUTS).output_shape()
        assert {name: shape.channels for name, shape in shapes.items()} == channels
        assert [shapes[name].stride for name in ALL_OUTPUTS] == strides
    assert channels["res5"] == (512 if depth == 18 else 2048)


@pytest.mark.parametrize(
    "depth, size, wsod_sizes, classification_sizes",
    [
        # 224: stem conv s2 -> 112, pool -> 56; res2 pool s2 -> 28; res3 pool k2 s1 -> 27 (WSOD)
        # or s2 -> 14 (classification); res4 / res5 keep it
        (18, 224, [56, 28, 27, 27, 27], [56, 28, 14, 14, 14]),
        (50, 64, [16, 8, 7, 7, 7], [16, 8, 4, 4, 4]),
    ],
)
def test_feature_map_sizes(depth, size, wsod_sizes, classification_sizes):
    for output_stride, sizes in ((8, wsod_sizes), (16, classification_sizes)):
        backbone = ResNetWS(depth, output_stride=output_stride, out_features=ALL_OUTPUTS, width=0.125).eval()
        with torch.no_grad():
            outputs = backbone(torch.zeros(1, 3, size, size))
        shapes = backbone.output_shape()
        for name, expected in zip(ALL_OUTPUTS, sizes):
            assert tuple(outputs[name].shape) == (1, shapes[name].channels, expected, expected), name


def three_by_three_convs(stage):
    return [m for m in stage.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]


@pytest.mark.parametrize("depth", [18, 50])
def test_dilation_in_res4_res5_of_the_wsod_form_only(depth):
    for output_stride, deep_dilation in ((8, 2), (16, 1)):
        backbone = ResNetWS(depth, output_stride=output_stride, width=0.125)
        for name, dilation in zip(PARTS[1:], [1, 1, deep_dilation, deep_dilation]):
            convs = three_by_three_convs(getattr(backbone, name))
            assert convs and {(c.dilation, c.padding) for c in convs} == {((dilation,) * 2, (dilation,) * 2)}
        # every conv of every block has stride 1 (downsampling is by max-pools); stem conv1 has 2
        strides = {n: m.stride for n, m in backbone.named_modules() if isinstance(m, nn.Conv2d)}
        assert strides.pop("stem.conv1") == (2, 2)
        assert set(strides.values()) == {(1, 1)}


def test_dilated_basic_block_computes_dilated_convolutions():
    torch.manual_seed(0)
    block = DilatedBasicBlock(4, 6, norm="", dilation=2)
    x = torch.randn(2, 4, 9, 9)
    hidden = F.relu(F.conv2d(x, block.conv1.weight, padding=2, dilation=2))
    residual = F.conv2d(hidden, block.conv2.weight, padding=2, dilation=2)
    expected = F.relu(residual + F.conv2d(x, block.shortcut.weight))
    assert torch.allclose(block(x), expected, atol=1e-5)


def test_weight_names_are_detectron2_style_and_shared_by_both_forms():
    wsod = ResNetWS(50, width=0.125, norm="BN", freeze_at=0)
    classification = ResNetWS(50, output_stride=16, width=0.125, norm="BN", freeze_at=0)
    names = list(wsod.state_dict())
    assert names == list(classification.state_dict())
    for name in ["stem.conv1.weight", "stem.conv2.norm.weight", "stem.conv3.norm.running_var",
                 "res2.0.shortcut.weight", "res2.2.conv3.norm.bias", "res3.0.conv1.weight",
                 "res4.5.conv2.weight", "res5.2.conv3.norm.running_mean"]:
        assert name in names
    assert not any(name.startswith(("res2.3.", "res5.3.", "pool")) for name in names)
    wsod.load_state_dict(classification.state_dict())  # strict: the same weights serve both forms


@pytest.mark.parametrize("freeze_at", range(6))
def test_freeze_levels(freeze_at):
    backbone = ResNetWS(18, norm="BN", freeze_at=freeze_at, width=0.125)
    for index, name in enumerate(PARTS):
        part = getattr(backbone, name)
        frozen = index < freeze_at
        assert all(p.requires_grad != frozen for p in part.parameters()), name
        norms = [type(m) for m in part.modules() if isinstance(m, (nn.BatchNorm2d, FrozenBatchNorm2d))]
        assert norms and all((t is FrozenBatchNorm2d) == frozen for t in norms), name
    trainable = [name for name, p in backbone.named_parameters() if p.requires_grad]
    assert (trainable == []) == (freeze_at == 5)


def test_out_features_prune_later_stages_and_bad_options_raise():
    backbone = ResNetWS(18, out_features=["res3"], width=0.125)
    assert not hasattr(backbone, "res4") and not hasattr(backbone, "res5")
    assert list(backbone.output_shape()) == ["res3"]
    with pytest.raises(ValueError, match="non-empty subset"):
        ResNetWS(18, out_features=["res6"])
    with pytest.raises(ValueError, match="0..5"):
        ResNetWS(18, freeze_at=6)
    with pytest.raises(ValueError, match="8 .*or 16"):
        ResNetWS(18, output_stride=32)
    with pytest.raises(ValueError, match="depth=20"):
        ResNetWS(20)


def test_yacs_builders_give_the_wsod_form():
    assert {"build_resnet_ws_backbone", "build_densenet_ws_backbone"} <= set(BACKBONE_REGISTRY._obj_map)
    cfg = get_cfg()  # the collection's: with MODEL.RESNET_WS and MODEL.RESNETS.WIDTH
    cfg.MODEL.BACKBONE.NAME = "build_resnet_ws_backbone"
    cfg.MODEL.RESNETS.DEPTH = 18
    cfg.MODEL.RESNETS.NORM = "FrozenBN"
    cfg.MODEL.RESNETS.OUT_FEATURES = ["res4", "res5"]
    cfg.MODEL.BACKBONE.FREEZE_AT = 5
    backbone = build_backbone(cfg)
    assert isinstance(backbone, ResNetWS) and backbone.output_stride == 8
    shapes = {n: (s.channels, s.stride) for n, s in backbone.output_shape().items()}
    assert shapes == {"res4": (256, 8), "res5": (512, 8)}
    assert not any(p.requires_grad for p in backbone.parameters())
    cfg.MODEL.BACKBONE.NAME = "build_densenet_ws_backbone"
    cfg.MODEL.RESNETS.OUT_FEATURES = ["res5"]
    cfg.MODEL.BACKBONE.FREEZE_AT = 2
    densenet = build_backbone(cfg)
    assert isinstance(densenet, DenseNetWS) and densenet.output_shape()["res5"].stride == 8
    assert not any(p.requires_grad for p in densenet.res2.parameters())
    assert all(p.requires_grad for p in densenet.res3.parameters())


# ---------------------------------------------------------------- DenseNet121-WS


def test_densenet121_ws_parameter_count_by_hand():
    expected, channels = 9 * 3 * 64 + 2 * 9 * 64 * 64 + 3 * 2 * 64, 64
    for block, num_layers in enumerate((6, 12, 24, 16)):
        for _ in range(num_layers):  # BN(c) conv1x1(c->128) BN(128) conv3x3(128->32)
            expected += 2 * channels + channels * 128 + 2 * 128 + 9 * 128 * 32
            channels += 32
        if block < 3:  # transition BN(c) conv1x1(c->c/2)
            expected += 2 * channels + channels * (channels // 2)
            channels //= 2
        else:  # final BN
            expected += 2 * channels
    assert expected == 7_020_160 and channels == 1024
    assert count_parameters(DenseNetWS(norm="BN", freeze_at=0)) == expected


def test_densenet121_ws_shapes_dilation_and_freezing():
    backbone = DenseNetWS(out_features=ALL_OUTPUTS, freeze_at=0, norm="BN").eval()
    shapes = backbone.output_shape()
    assert [(shapes[n].channels, shapes[n].stride) for n in ALL_OUTPUTS] == [
        (64, 4), (128, 8), (256, 8), (512, 8), (1024, 8)]
    with torch.no_grad():
        outputs = backbone(torch.zeros(1, 3, 32, 32))
    assert [outputs[n].shape[-1] for n in ALL_OUTPUTS] == [8, 4, 3, 3, 3]
    for name, dilation in zip(PARTS[1:], [1, 1, 2, 2]):
        assert {c.dilation for c in three_by_three_convs(getattr(backbone, name))} == {(dilation, dilation)}
    classification = DenseNetWS(output_stride=16, out_features=ALL_OUTPUTS)
    assert [classification.output_shape()[n].stride for n in ALL_OUTPUTS] == [4, 8, 16, 16, 16]
    assert {c.dilation for c in three_by_three_convs(classification.res5)} == {(1, 1)}
    frozen = DenseNetWS(norm="BN")  # default freeze_at=5: F5
    assert not any(p.requires_grad for p in frozen.parameters())
    assert not any(isinstance(m, nn.BatchNorm2d) for m in frozen.modules())


# ---------------------------------------------------------------- plain C4 / C5


def test_res5_box_head_is_conv5_on_pooled_rois():
    head = Res5BoxHead(18, norm="BN").eval()
    assert (head.in_channels, head.output_size) == (256, 512)
    assert [b.stride for b in head.res5] == [2, 1]
    pooled = torch.randn(3, 256, 7, 7)
    with torch.no_grad():
        conv5 = head.res5(pooled)
        vector = head(pooled)
    assert conv5.shape == (3, 512, 4, 4)
    assert torch.allclose(vector, conv5.mean(dim=(2, 3)))
    bottleneck = Res5BoxHead(50, freeze=True)
    assert (bottleneck.in_channels, bottleneck.output_size) == (1024, 2048)
    assert "res5.0.shortcut.weight" in bottleneck.state_dict()
    assert not any(p.requires_grad for p in bottleneck.parameters())
    assert bottleneck.res5[0].conv2.stride == (2, 2)  # torchvision-style: stride in the 3x3


def test_plain_c4_and_c5_config_pieces():
    models = config_models()
    c5 = instantiate(models.plain_resnet_backbone(18, "C5", norm="BN"))
    assert {n: (s.channels, s.stride) for n, s in c5.output_shape().items()} == {"res5": (512, 32)}
    c4 = instantiate(models.plain_resnet_backbone(18, "C4", norm="BN")).eval()
    assert {n: (s.channels, s.stride) for n, s in c4.output_shape().items()} == {"res4": (256, 16)}
    assert not hasattr(c4, "res5")
    frozen = list(c4.stem.parameters()) + list(c4.res2.parameters())
    assert not any(p.requires_grad for p in frozen)  # F2 by default
    assert all(p.requires_grad for p in c4.res3.parameters())
    head = instantiate(models.res5_box_head(18, norm="BN"))
    with torch.no_grad():
        res4 = c4(torch.zeros(1, 3, 112, 112))["res4"]
        assert res4.shape == (1, 256, 7, 7)
        assert head(res4).shape == (1, head.output_size)
    with pytest.raises(ValueError, match="C4"):
        models.plain_resnet_backbone(50, "C3")


# ---------------------------------------------------------------- the classification form


def tiny_classifier(dropout=0.0):
    torch.manual_seed(0)
    backbone = ResNetWS(18, output_stride=16, norm="BN", freeze_at=0, width=0.125)
    neck = RedundantAdaptationNeck(64, pooled_size=2, hidden_dims=(16, 12), dropout=dropout)
    return NeckClassifier(backbone=backbone, in_feature="res5", neck=neck, num_classes=3,
                          pixel_mean=[100.0, 110.0, 120.0], pixel_std=[50.0, 55.0, 60.0])


def image_batch(size=64, count=2):
    generator = torch.Generator().manual_seed(1)
    return [{"image": torch.randint(0, 256, (3, size, size), generator=generator, dtype=torch.uint8),
             "class_id": index % 3} for index in range(count)]


def reference_logits(model, batch):
    """Table A1's head computed step by step outside NeckClassifier."""
    images = torch.stack([(x["image"].float() - model.pixel_mean) / model.pixel_std for x in batch])
    res5 = model.backbone(images)["res5"]
    pooled = F.max_pool2d(res5, 2, 2)
    assert res5.shape[-2:] == (4, 4) and pooled.shape[-2:] == (2, 2)
    return model.fc(model.neck(pooled))


def test_neck_classifier_structure_and_registration():
    model = tiny_classifier()
    assert META_ARCH_REGISTRY.get("NeckClassifier") is NeckClassifier
    assert model.input_size == 64  # 2 x stride 16 x pooled 2
    assert {name.split(".")[0] for name, _ in model.named_parameters()} == {"backbone", "neck", "fc"}
    assert (model.fc.in_features, model.fc.out_features) == (12, 3)
    with pytest.raises(ValueError, match="in_channels=64"):
        NeckClassifier(backbone=model.backbone, in_feature="res5", neck=RedundantAdaptationNeck(32, 2, (8,)),
                       num_classes=3, pixel_mean=[0.0] * 3, pixel_std=[1.0] * 3)


def test_neck_classifier_loss_and_inference_match_hand_computation():
    model = tiny_classifier()
    batch = image_batch()
    targets = torch.tensor([x["class_id"] for x in batch])
    model.train()
    loss = model(batch)["loss_cls"]
    with torch.no_grad():  # BN in training mode: the same batch statistics
        expected_loss = F.cross_entropy(reference_logits(model, batch), targets)
    assert loss.item() == pytest.approx(expected_loss.item(), rel=1e-5)
    loss.backward()
    assert model.neck.layers[0].weight.grad.abs().sum() > 0
    assert model.backbone.stem.conv1.weight.grad.abs().sum() > 0

    model.eval()
    with torch.no_grad():
        outputs = model([{"image": x["image"]} for x in batch])
        expected = reference_logits(model, batch).softmax(dim=1)
    assert len(outputs) == 2 and set(outputs[0]) == {"scores"}
    for output, probabilities in zip(outputs, expected):
        assert output["scores"].shape == (3,)
        assert torch.allclose(output["scores"], probabilities, atol=1e-6)
        assert output["scores"].sum().item() == pytest.approx(1.0, abs=1e-5)


def test_neck_classifier_rejects_other_sizes_naming_the_expected_one():
    model = tiny_classifier().eval()
    with pytest.raises(ValueError, match="needs 64x64 images.*input 1 is \\(64, 80\\)"):
        model([{"image": torch.zeros(3, 64, 64)}, {"image": torch.zeros(3, 64, 80)}])


def test_classification_checkpoint_loads_into_a_wsod_model(tmp_path):
    classifier = tiny_classifier()
    classifier.train()
    classifier(image_batch(count=4))  # non-trivial BN running statistics
    classifier.eval()
    DetectionCheckpointer(classifier, save_dir=str(tmp_path)).save("classifier")

    class WSODModel(nn.Module):  # the attributes the WSOD detector has
        def __init__(self):
            super().__init__()
            self.backbone = ResNetWS(18, width=0.125)  # WSOD form, FrozenBN, F5
            self.neck = RedundantAdaptationNeck(64, pooled_size=2, hidden_dims=(16, 12))

    detector = WSODModel()
    classifier_state, detector_state = classifier.state_dict(), detector.state_dict()
    unused = {k for k in set(classifier_state) - set(detector_state) if not k.endswith("num_batches_tracked")}
    assert unused == {"fc.weight", "fc.bias"}
    assert set(detector_state) <= set(classifier_state)
    DetectionCheckpointer(detector).load(str(tmp_path / "classifier.pth"))
    for name, value in detector.state_dict().items():
        assert torch.equal(value, classifier_state[name]), name
    # res2 is computed identically by both forms: the frozen detector reproduces the classifier
    image = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        detector_res2 = detector.backbone.res2(detector.backbone.stem(image))
        classifier_res2 = classifier.backbone.res2(classifier.backbone.stem(image))
    assert torch.allclose(detector_res2, classifier_res2, atol=1e-5)


# ---------------------------------------------------------------- configs


@pytest.mark.parametrize("depth, neck_dims, channels", [(18, [4096, 4096], 512), (50, [2048, 4096], 2048),
                                                        (101, [2048, 4096], 2048)])
def test_imagenet_configs_follow_the_paper(depth, neck_dims, channels):
    cfg = load_config(f"imagenet_classifier_R{depth}_WS.py")
    backbone = cfg.model.backbone
    assert (backbone.depth, backbone.output_stride, backbone.norm, backbone.freeze_at) == (depth, 16, "BN", 0)
    assert (cfg.model.neck.in_channels, list(cfg.model.neck.hidden_dims), cfg.model.neck.pooled_size) == (
        channels, neck_dims, 7)
    assert cfg.model.num_classes == 1000
    assert cfg.dataloader.train.total_batch_size == 128 and cfg.optimizer.lr == 0.05
    iters_per_epoch = 1281167 // 128
    assert cfg.train.max_iter == 120 * iters_per_epoch
    assert cfg.lr_multiplier.scheduler.milestones == [epoch * iters_per_epoch for epoch in (30, 60, 90)]
    assert cfg.dataloader.train.mapper.augmentations[0].size == 224
    assert cfg.dataloader.test.mapper.augmentations[1].size == 224
    assert cfg.train.output_dir.endswith(f"imagenet_classifier_R{depth}_WS")


def test_cpu_config_builds_a_model_for_its_crops():
    cfg = load_config("synthetic_classifier_R18_WS_cpu.py")
    model = instantiate(cfg.model)
    assert isinstance(model, NeckClassifier) and model.num_classes == 8
    assert model.input_size == cfg.dataloader.train.mapper.augmentations[0].size == 64
    assert cfg.dataloader.test.mapper.augmentations[1].size == 64
    models = config_models()
    detector_backbone = instantiate(models.resnet_ws_backbone(18, width=models.CPU_WIDTH))
    detector_neck = instantiate(models.resnet_ws_neck(
        18, width=models.CPU_WIDTH, hidden_dims=models.CPU_NECK_HIDDEN_DIMS, pooled_size=models.CPU_POOLED_SIZE))
    assert detector_backbone.output_shape()["res5"].stride == 8
    assert not any(p.requires_grad for p in detector_backbone.parameters())
    for prefix, module in (("backbone.", detector_backbone), ("neck.", detector_neck)):
        state = model.state_dict()
        classifier_part = {k[len(prefix):]: v.shape for k, v in state.items() if k.startswith(prefix)}
        assert {k: v.shape for k, v in module.state_dict().items()}.items() <= classifier_part.items()
