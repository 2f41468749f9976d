"""projects.common.checkpoint: torchvision ResNet -> ImageClassifier (same logits) and
ImageClassifier -> detection backbone conversions, the CLI's options and their errors (the other
formats: test_checkpoint_*.py)."""
import os

import pytest
import torch
import torchvision

from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import LazyCall as L
from detectron2.config import LazyConfig, instantiate

from projects.common import checkpoint
from projects.common.modeling import ImageClassifier
from tied_conv.resnet import build_tied_resnet

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ALL_STAGES = ("res2", "res3", "res4", "res5")
# A narrow TiedResNet50 (2 splits of 8 channels in res2) for tests that do not need the real size.
SMALL = dict(depth=50, splits=2, base_width=8)
IMAGENET_MEAN_RGB = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
IMAGENET_STD_RGB = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def random_torchvision_resnet(architecture: str) -> torch.nn.Module:
    """A randomly initialised torchvision ResNet whose BN statistics and affine parameters are
    random too (fresh ones are 0/1, which would hide a wrongly mapped BN)."""
    torch.manual_seed(0)
    model = getattr(torchvision.models, architecture)(weights=None)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.normal_(0, 0.1)
            module.running_var.uniform_(0.5, 1.5)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.normal_(0, 0.1)
    return model.eval()


def classifier_from_config(config: str) -> ImageClassifier:
    return instantiate(LazyConfig.load(os.path.join(REPO, config)).model).eval()


def classifier_logits(classifier: ImageClassifier, images_bgr) -> torch.Tensor:
    pooled = classifier.feature_map([{"image": image} for image in images_bgr]).mean(dim=(2, 3))
    return classifier.fc(pooled)


@pytest.mark.parametrize(
    "architecture, config",
    [("resnet18", "configs/common/models/classifier_cpu.py"), ("resnet50", "configs/common/models/classifier.py")],
)
def test_torchvision_resnet_gives_the_same_logits(architecture, config):
    torchvision_model = random_torchvision_resnet(architecture)
    classifier = classifier_from_config(config)
    converted = checkpoint.torchvision_resnet_to_classifier_state_dict(torchvision_model.state_dict())
    classifier.load_state_dict(converted, strict=True)

    images_rgb = torch.randint(0, 256, (2, 3, 64, 80), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = torchvision_model((images_rgb.float() / 255 - IMAGENET_MEAN_RGB) / IMAGENET_STD_RGB)
        # the config normalises BGR 0..255 images with torchvision's statistics x 255
        logits = classifier_logits(classifier, images_rgb.flip(1).float())
    assert torch.allclose(logits, expected, rtol=1e-4, atol=1e-4 * expected.abs().max().item())


def test_torchvision_key_names_and_input_format():
    state = random_torchvision_resnet("resnet18").state_dict()
    bgr = checkpoint.torchvision_resnet_to_classifier_state_dict(state)
    rgb = checkpoint.torchvision_resnet_to_classifier_state_dict(state, input_format="RGB")
    assert torch.equal(bgr["backbone.stem.conv1.weight"], state["conv1.weight"].flip(1))
    assert torch.equal(rgb["backbone.stem.conv1.weight"], state["conv1.weight"])
    assert torch.equal(bgr["backbone.res3.0.shortcut.norm.running_var"], state["layer2.0.downsample.1.running_var"])
    assert torch.equal(bgr["backbone.res5.1.conv2.norm.bias"], state["layer4.1.bn2.bias"])
    assert torch.equal(bgr["fc.weight"], state["fc.weight"])
    assert len(bgr) == len(state)
    with pytest.raises(ValueError, match="input_format"):
        checkpoint.torchvision_resnet_to_classifier_state_dict(state, input_format="YUV")


def test_torchvision_unexpected_keys_are_named():
    state = random_torchvision_resnet("resnet18").state_dict()
    with pytest.raises(ValueError, match=r"layer1\.0\.se\.weight.*torchvision\.models\.resnet"):
        checkpoint.torchvision_resnet_to_classifier_state_dict({**state, "layer1.0.se.weight": torch.ones(1)})
    with pytest.raises(ValueError, match="module"):
        checkpoint.torchvision_resnet_to_classifier_state_dict({"module." + key: v for key, v in state.items()})


def test_cli_from_torchvision_then_to_fpn_detector(tmp_path):
    torchvision_model = random_torchvision_resnet("resnet50")
    torchvision_file, classifier_file, detector_file = (str(tmp_path / name) for name in ("tv.pth", "cls.pth", "det.pth"))
    torch.save(torchvision_model.state_dict(), torchvision_file)
    checkpoint.main(["--from-torchvision", "--input", torchvision_file, "--output", classifier_file])
    saved = torch.load(classifier_file, weights_only=True)
    assert set(saved) == {"model"}
    classifier = classifier_from_config("configs/common/models/classifier.py")
    classifier.load_state_dict(saved["model"], strict=True)

    checkpoint.main(["--input", classifier_file, "--output", detector_file, "--fpn"])
    cfg = LazyConfig.load(os.path.join(REPO, "configs/common/models/faster_rcnn_fpn.py"))
    cfg.model.backbone.bottom_up.stages.stride_in_1x1 = False  # torchvision's layout
    detector = instantiate(cfg.model)
    DetectionCheckpointer(detector).load(detector_file)
    source = classifier.backbone.state_dict()
    for key, value in detector.backbone.bottom_up.state_dict().items():
        assert torch.equal(value, source[key]), key


def test_cli_torchvision_to_fpn_detector_in_one_step(tmp_path):
    torchvision_model = random_torchvision_resnet("resnet50")
    torchvision_file, detector_file = str(tmp_path / "tv.pth"), str(tmp_path / "det.pth")
    torch.save(torchvision_model.state_dict(), torchvision_file)
    checkpoint.main(["--from", "torchvision", "--input", torchvision_file, "--output", detector_file,
                     "--config", "common/models/faster_rcnn_fpn.py", "model.backbone.bottom_up.stages.stride_in_1x1=False"])
    saved = torch.load(detector_file, weights_only=True)["model"]
    assert torch.equal(saved["backbone.bottom_up.stem.conv1.weight"], torchvision_model.conv1.weight.flip(1))
    assert not any(key.startswith("fc.") for key in saved)
    checkpoint.main(["--from-torchvision", "--fpn", "--input", torchvision_file, "--output", detector_file])
    assert set(torch.load(detector_file, weights_only=True)["model"]) == set(saved)


@pytest.mark.parametrize("arguments, message", [
    (["--input-format", "RGB"], "--input-format only applies to formats whose first conv"),
    (["--from", "msad", "--input-format", "RGB"], "--input-format only applies"),
    (["--width", "0.5"], "--width only applies with --from slimmable"),
    (["--from", "san", "--source-channel-order", "RGB"], "only applies with --from maskrcnn-benchmark"),
    (["--from", "san", "model.num_classes=10"], "need --config"),
    (["--fpn", "--backbone-prefix", "x."], "not allowed with argument"),
    (["--from-torchvision", "--from", "san"], "contradicts --from san"),
    (["--from", "dap-split"], "--from dap-split needs --base --k --seed"),
    (["--k", "5"], "only apply with --from dap-split"),
])
def test_cli_rejects_flag_combinations(arguments, message, capsys):
    with pytest.raises(SystemExit):
        checkpoint.main([*arguments, "--input", "a.pth", "--output", "b.pth"])
    assert message in capsys.readouterr().err


def test_cli_names_the_backbone_it_cannot_place(tmp_path):
    torchvision_file = str(tmp_path / "tv.pth")
    torch.save(random_torchvision_resnet("resnet18").state_dict(), torchvision_file)
    with pytest.raises(ValueError, match="none: convert for a config whose backbone has the checkpoint's architecture"):
        checkpoint.main(["--from", "torchvision", "--input", torchvision_file, "--output", str(tmp_path / "x.pth"),
                         "--config", "common/models/faster_rcnn_fpn.py"])  # a ResNet-18 for a ResNet-50 FPN


def test_classifier_checkpoint_loads_into_faster_rcnn_fpn(tmp_path):
    torch.manual_seed(0)
    classifier = ImageClassifier(
        backbone=build_tied_resnet(**SMALL, norm="BN", freeze_at=0),
        in_feature="res5", num_classes=5, pixel_mean=[0.0] * 3, pixel_std=[1.0] * 3,
    )
    classifier([{"image": torch.rand(3, 64, 64) * 255, "class_id": i} for i in range(2)])  # moves BN stats
    DetectionCheckpointer(classifier, save_dir=str(tmp_path)).save("classifier")
    converted_path = str(tmp_path / "detector_init.pth")
    checkpoint.main(["--input", str(tmp_path / "classifier.pth"), "--output", converted_path, "--fpn"])

    cfg = LazyConfig.load(os.path.join(REPO, "configs/common/models/faster_rcnn_fpn.py"))
    cfg.model.backbone.bottom_up = L(build_tied_resnet)(**SMALL, norm="FrozenBN", out_features=ALL_STAGES)
    detector = instantiate(cfg.model)
    DetectionCheckpointer(detector).load(converted_path)

    source = classifier.backbone.state_dict()
    loaded = detector.backbone.bottom_up.state_dict()
    assert set(loaded) <= set(source), "every bottom-up weight comes from the classifier"
    for key, value in loaded.items():
        assert torch.equal(value, source[key]), key
    saved = torch.load(converted_path, weights_only=False)["model"]
    assert not any(key.startswith("fc.") for key in saved)
    assert all(key.startswith("backbone.bottom_up.") for key in saved)


def test_conversion_without_fpn_and_bad_input():
    state = {"backbone.stem.conv1.weight": torch.ones(1), "fc.weight": torch.ones(1), "fc.bias": torch.ones(1)}
    converted = checkpoint.classifier_to_detection_state_dict(state, fpn=False)
    assert set(converted) == {"backbone.stem.conv1.weight"}
    with pytest.raises(ValueError, match="ImageClassifier checkpoint"):
        checkpoint.classifier_to_detection_state_dict({"fc.weight": torch.ones(1)}, fpn=True)


def test_load_and_save_model_state_dict(tmp_path):
    path = str(tmp_path / "nested" / "weights.pth")
    checkpoint.save_model_state_dict({"a": torch.arange(3)}, path)
    assert os.listdir(tmp_path / "nested") == ["weights.pth"], "no temporary file is left behind"
    assert torch.equal(checkpoint.load_model_state_dict(path)["a"], torch.arange(3))
    torch.save({"b": torch.ones(2)}, tmp_path / "plain.pth")  # torchvision's files are plain state dicts
    assert set(checkpoint.load_model_state_dict(str(tmp_path / "plain.pth"))) == {"b"}
    torch.save([1, 2], tmp_path / "list.pth")
    with pytest.raises(ValueError, match="does not hold a state dict"):
        checkpoint.load_model_state_dict(str(tmp_path / "list.pth"))
