"""SAN frozen at one resolution (projects.san.export): plain convolutions with the generated kernels
and the private BNs folded in compute what the SAN computes at that resolution, in every inference
mode, for ResNet and MobileNetV2; the original model is untouched."""
import pytest
import torch
from torch import nn
from torch.testing import assert_close

from projects.common.modeling import ImageClassifier
from projects.san import MetaConv2d, PrivateBatchNorm2d, SANMobileNetV2, SANResNet, calibrate_batchnorm
from projects.san.export import FrozenAffine, FrozenConv2d, freeze_at_resolution, frozen_resolution

RESOLUTIONS = (32, 48)


def randomised(backbone):
    """An eval-mode classifier on ``backbone`` whose meta layers depend on the encoding and whose
    private BNs differ per resolution, so that a wrong kernel or BN shows."""
    torch.manual_seed(0)
    for module in backbone.modules():
        if isinstance(module, MetaConv2d):
            nn.init.normal_(module.meta.weight, std=0.05)
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            nn.init.uniform_(module.weight, 0.5, 1.5)
            nn.init.uniform_(module.bias, -0.2, 0.2)
    return ImageClassifier(backbone=backbone, in_feature="res5", num_classes=5, pixel_mean=[120.0] * 3,
                           pixel_std=[60.0] * 3).eval()


def images(resolution, count=2):
    return [{"image": torch.rand(3, resolution, resolution) * 255} for _ in range(count)]


@pytest.mark.parametrize("backbone", [lambda: SANResNet(18, RESOLUTIONS, width=0.25),
                                      lambda: SANMobileNetV2(RESOLUTIONS, width_mult=0.25)],
                         ids=["resnet18", "mobilenetv2"])
@pytest.mark.parametrize("mode", ["proxy", "data_free", "ideal"])
@pytest.mark.parametrize("resolution", [48, 40])  # a training resolution, and one between two
def test_frozen_san_computes_what_the_san_computes(backbone, mode, resolution):
    model = randomised(backbone())
    model.backbone.set_inference_mode(mode)
    if mode == "ideal":
        calibrate_batchnorm(model.backbone, [model.preprocess_image(images(resolution, 4)).tensor], resolution)
    frozen = freeze_at_resolution(model, resolution)

    inputs = images(resolution)
    with torch.no_grad():
        assert_close(frozen.logits(inputs), model.logits(inputs), rtol=1e-4, atol=2e-5)
    assert frozen_resolution(frozen) == resolution and frozen_resolution(model) is None
    kinds = {type(m) for m in frozen.modules()}
    assert not kinds & {MetaConv2d, PrivateBatchNorm2d} and FrozenConv2d in kinds
    assert any(isinstance(m, MetaConv2d) for m in model.modules())  # the original is unchanged
    if isinstance(model.backbone, SANResNet):
        assert isinstance(frozen.backbone.stem_norm, FrozenAffine)


def test_freezing_needs_a_san_and_calibrated_statistics_for_ideal_inference():
    with pytest.raises(TypeError, match="needs a SAN backbone.*got Linear"):
        freeze_at_resolution(nn.Linear(2, 2), 32)
    model = randomised(SANResNet(18, RESOLUTIONS, width=0.25))
    with pytest.raises(ValueError, match="resolution=0 must be a positive"):
        freeze_at_resolution(model, 0)
    model.backbone.set_inference_mode("ideal")
    with pytest.raises(RuntimeError, match="ideal inference at resolution 40 needs BN statistics calibrated"):
        freeze_at_resolution(model, 40)
