"""--from san: d-li14/SAN meta ResNet-18/50 and MobileNetV2 checkpoints (exactly the authors' keys
and shapes, random values) and the single-resolution baselines, into the SAN configs."""
import pytest
import torch
import torch.nn.functional as F
import torchvision

from projects.common import checkpoint
from projects.san.layers import scale_encoding
from published_checkpoints import assert_keys_and_shapes, config_model, listed_shapes, random_state

RESOLUTIONS = (224, 192, 160, 128, 96)


@pytest.fixture(scope="module")
def meta_resnet18():
    """A SAN ResNet-18 checkpoint as imagenet.py saves it, converted by the CLI into san_R18_imagenet.py
    (which checks that it loads strictly), and that config's model with it loaded."""
    return random_state(listed_shapes("san_meta_resnet18"))


def convert_with_cli(tmp_path, source, config, *overrides, wrapper="state_dict"):
    source_file, converted_file = str(tmp_path / "source.pth.tar"), str(tmp_path / "converted.pth")
    torch.save({"epoch": 120, "arch": "meta", wrapper: source}, source_file)
    checkpoint.main(["--from", "san", "--input", source_file, "--output", converted_file, "--config", config, *overrides])
    return torch.load(converted_file, weights_only=True)["model"]


def test_meta_resnet18_loads_strictly_and_generates_the_authors_kernels(meta_resnet18, tmp_path):
    source = {key[len("module."):]: value for key, value in meta_resnet18.items()}
    converted = convert_with_cli(tmp_path, meta_resnet18, "san/san_R18_imagenet.py")
    model = config_model("san/san_R18_imagenet.py")
    assert checkpoint.check_loads(converted, model) == []

    # layer2.0.fc1 at size index 1 (192 px): the authors' kernel fc1(0.6).resize(128, 64, 3, 3), stride 2
    conv = model.backbone.stages["res3"][0].conv1.conv
    authors_kernel = (source["layer2.0.fc1.weight"][:, 0] * 0.6 + source["layer2.0.fc1.bias"]).view(128, 64, 3, 3)
    assert torch.allclose(conv.kernel(scale_encoding(192)), authors_kernel, atol=1e-6)
    x = torch.randn(2, 64, 24, 24)
    with torch.no_grad():
        assert torch.allclose(conv(x, scale_encoding(192)), F.conv2d(x, authors_kernel, stride=2, padding=1), atol=1e-4)
    # the generated shortcut is fc3 / bn3; bn_i is the private BN of the i-th size
    shortcut_kernel = (source["layer2.0.fc3.weight"][:, 0] * 0.3 + source["layer2.0.fc3.bias"]).view(128, 64, 1, 1)
    assert torch.allclose(model.backbone.stages["res3"][0].shortcut.conv.kernel(scale_encoding(96)), shortcut_kernel,
                          atol=1e-6)
    for index, resolution in enumerate(RESOLUTIONS):
        norm = model.backbone.stages["res3"][0].conv1.norm.norms[str(resolution)]
        for name in ("weight", "bias", "running_mean", "running_var"):
            assert torch.equal(getattr(norm, name), source[f"layer2.0.bn1.bn_{index}.{name}"])
    # the shared stem conv reads BGR: its input channels reversed; the classifier in the authors' order
    assert torch.equal(model.backbone.stem_conv.weight, source["conv1.module.weight"].flip(1))
    assert torch.equal(model.fc.weight, source["fc.module.weight"])
    assert torch.equal(model.fc.bias, source["fc.module.bias"])


def test_meta_resnet18_leaves_out_the_unused_downsample_layers(meta_resnet18):
    source = {key[len("module."):]: value for key, value in meta_resnet18.items()}
    conversion = checkpoint.convert_san(source)
    left_out = [key for keys in conversion.left_out.values() for key in keys]
    assert sorted(left_out) == sorted(key for key in source if "downsample" in key or key.endswith("num_batches_tracked"))
    assert len(conversion.state) + len(left_out) == len(source)
    rgb = checkpoint.convert_san(source, input_format="RGB")
    assert torch.equal(rgb.state["backbone.stem_conv.weight"], source["conv1.module.weight"])


def test_meta_resnet50_keys_and_shapes():
    source = random_state(listed_shapes("san_meta_resnet50"), device="meta")
    converted = checkpoint.convert_san({key[len("module."):]: value for key, value in source.items()}).state
    assert_keys_and_shapes(converted, config_model("san/san_R50_imagenet.py", device="meta"))
    # bottlenecks: fc1..fc3 are the convs, fc4 / bn4 the shortcut
    assert converted["backbone.stages.res2.0.shortcut.conv.meta.weight"].shape == source["module.layer1.0.fc4.weight"].shape
    assert converted["backbone.stages.res2.0.conv3.norm.norms.96.running_var"].shape == (256,)


def test_meta_mobilenetv2_loads_strictly_with_the_stem_flipped(tmp_path):
    listing = random_state(listed_shapes("san_meta_mobilenetv2"), seed=1)
    source = {key[len("module."):]: value for key, value in listing.items()}
    converted = convert_with_cli(tmp_path, listing, "san/san_MobileNetV2_imagenet.py")
    model = config_model("san/san_MobileNetV2_imagenet.py")
    assert checkpoint.check_loads(converted, model) == []
    encoding = scale_encoding(160)  # branch 2: the authors' 0.5
    authors_stem = (source["features.0.fc.weight"][:, 0] * 0.5 + source["features.0.fc.bias"]).view(32, 3, 3, 3)
    assert torch.allclose(model.backbone.stem.conv.kernel(encoding), authors_stem.flip(1), atol=1e-6)
    # a block with expansion: fc1 expands, fc2 is depthwise, fc3 projects; block 1 of features is blocks.0
    depthwise = (source["features.2.fc2.weight"][:, 0] * 0.5 + source["features.2.fc2.bias"]).view(96, 1, 3, 3)
    assert torch.allclose(model.backbone.blocks[1].layers[1].conv.kernel(encoding), depthwise, atol=1e-6)
    assert torch.equal(model.backbone.blocks[1].layers[1].norm.norms["160"].running_var,
                       source["features.2.bn2.bn_2.running_var"])
    assert torch.equal(model.backbone.head.norm.norms["96"].bias, source["conv.bn.bn_4.bias"])
    assert torch.equal(model.fc.weight, source["classifier.module.weight"])


def test_baseline_is_a_torchvision_resnet(tmp_path):
    torch.manual_seed(0)
    baseline = {"module." + key: value for key, value in torchvision.models.resnet18(weights=None).state_dict().items()}
    converted = convert_with_cli(tmp_path, baseline, "san/baseline_R18_imagenet_224.py")
    assert torch.equal(converted["backbone.stem.conv1.weight"], baseline["module.conv1.weight"].flip(1))
    assert torch.equal(converted["fc.weight"], baseline["module.fc.weight"])


def test_errors_name_what_was_expected(meta_resnet18, tmp_path):
    with pytest.raises(ValueError, match="not a d-li14/SAN checkpoint"):
        checkpoint.convert_san({"features.0.0.weight": torch.ones(1)})  # a slimmable ResNet
    source = {key[len("module."):]: value for key, value in meta_resnet18.items()}
    with pytest.raises(ValueError, match=r"not SAN meta ResNet names.*layer1\.0\.se\.weight"):
        checkpoint.convert_san({**source, "layer1.0.se.weight": torch.ones(1)})
    with pytest.raises(ValueError, match="bn_0..bn_"):
        checkpoint.convert_san({**source, "bn1.bn_7.weight": torch.ones(64)})
    with pytest.raises(ValueError, match=r"does not load into the config's ScaleAdaptiveClassifier.*depth"):
        convert_with_cli(tmp_path, meta_resnet18, "san/san_R50_imagenet.py")
