"""SAN layers and backbones: scale encoding, generated kernels and their eval cache, private BN
with proxy / data-free / ideal inference (hand-computed values), SAN ResNet-18/50 and MobileNetV2
shapes, structure, training forward/backward and use inside ImageClassifier."""
import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.testing import assert_close

from projects.common.modeling import ImageClassifier
from projects.san import (
    MetaConv2d,
    PrivateBatchNorm2d,
    SANMobileNetV2,
    SANResNet,
    calibrate_batchnorm,
    scale_encoding,
)

TINY_RESOLUTIONS = (32, 64)


def count_meta_calls(layer: MetaConv2d) -> list:
    """A list that grows by one every time the layer generates a kernel."""
    calls = []
    layer.meta.register_forward_hook(lambda *args: calls.append(1))
    return calls


def hand_kernel(layer: MetaConv2d, encoding: float) -> torch.Tensor:
    """A * e + b reshaped, computed without the layer's code path."""
    weights, bias = layer.meta.weight.detach()[:, 0], layer.meta.bias.detach()
    return (weights * encoding + bias).reshape(layer.kernel_shape)


@pytest.mark.parametrize("resolution, encoding", [(224, 0.7), (192, 0.6), (96, 0.3), (320, 1.0),
                                                  (112, 0.35), (400, 1.25)])
def test_scale_encoding_is_resolution_over_320(resolution, encoding):
    assert scale_encoding(resolution) == pytest.approx(encoding)


def test_scale_encoding_rejects_non_positive_resolution():
    with pytest.raises(ValueError, match="positive"):
        scale_encoding(0)


def test_meta_conv_kernel_is_affine_in_the_encoding():
    torch.manual_seed(0)
    layer = MetaConv2d(4, 6, 3, padding=1, groups=2)
    assert layer.meta.in_features == 1 and layer.meta.out_features == 6 * 2 * 3 * 3
    with torch.no_grad():
        layer.meta.weight.normal_()
    w1, w2, w_mid = layer.kernel(0.3), layer.kernel(0.7), layer.kernel(0.5)
    assert w1.shape == (6, 2, 3, 3)
    assert_close(w1, hand_kernel(layer, 0.3))
    assert_close(w_mid, (w1 + w2) / 2)
    assert_close(w2 - w1, 0.4 * layer.meta.weight.detach().reshape(6, 2, 3, 3))
    x = torch.randn(2, 4, 5, 5)
    assert_close(layer(x, 0.3), F.conv2d(x, hand_kernel(layer, 0.3), padding=1, groups=2))


def test_meta_conv_init_is_a_kaiming_kernel_independent_of_the_encoding():
    torch.manual_seed(0)
    layer = MetaConv2d(16, 32, 3)
    assert torch.count_nonzero(layer.meta.weight) == 0
    assert torch.equal(layer.kernel(0.3), layer.kernel(0.7))
    fan_out_std = math.sqrt(2 / (32 * 3 * 3))
    assert layer.kernel(0.5).std().item() == pytest.approx(fan_out_std, rel=0.05)


def test_meta_conv_rejects_channels_not_divisible_by_groups():
    with pytest.raises(ValueError, match="divisible by groups=4"):
        MetaConv2d(6, 8, 3, groups=4)


def test_eval_mode_caches_one_kernel_per_encoding():
    layer = MetaConv2d(3, 4, 3).eval()
    calls = count_meta_calls(layer)
    first = layer.kernel(0.5)
    assert layer.kernel(0.5) is first and len(calls) == 1
    layer(torch.randn(1, 3, 6, 6), 0.5)
    assert len(calls) == 1
    assert_close(first, hand_kernel(layer, 0.5))
    assert not first.requires_grad
    other = layer.kernel(0.6)
    assert len(calls) == 2 and layer.kernel(0.5) is first
    assert_close(other, hand_kernel(layer, 0.6))


def test_kernels_are_cached_in_the_memory_format_of_their_input():
    """With the model in channels_last the convolutions run channels_last end to end: the kernel
    of an encoding is cached once per layout, the outputs equal the default layout's."""
    torch.manual_seed(0)
    backbone = SANResNet(depth=18, width=0.125, resolutions=(64, 32)).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        default = backbone(x)["res5"]
        channels_last = backbone.to(memory_format=torch.channels_last)(x)["res5"]
    assert channels_last.is_contiguous(memory_format=torch.channels_last)
    assert_close(channels_last, default, rtol=1e-4, atol=1e-5)
    layer = backbone.stages["res3"][0].conv1.conv
    kernels = {key[1]: kernel for key, kernel in layer._cached_kernels.items()}
    assert set(kernels) == {torch.contiguous_format, torch.channels_last}
    assert kernels[torch.channels_last].is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(kernels[torch.channels_last], kernels[torch.contiguous_format])


def test_training_mode_never_caches_and_train_clears_the_cache():
    layer = MetaConv2d(3, 4, 3)
    calls = count_meta_calls(layer)
    first, second = layer.kernel(0.5), layer.kernel(0.5)
    assert len(calls) == 2 and first is not second and first.requires_grad
    layer.eval().kernel(0.5)
    layer.train()
    layer.eval().kernel(0.5)
    assert len(calls) == 4


def test_cached_kernel_is_fresh_after_an_optimizer_step():
    torch.manual_seed(0)
    layer = MetaConv2d(3, 4, 3)
    before = layer.eval().kernel(0.5)
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.1)
    layer.train()
    layer(torch.randn(2, 3, 6, 6), 0.5).square().sum().backward()
    optimizer.step()
    after = layer.eval().kernel(0.5)
    assert not torch.allclose(after, before)
    assert_close(after, hand_kernel(layer, 0.5))


def test_cached_kernel_is_fresh_after_in_place_updates_in_eval_mode():
    """Optimizer steps or load_state_dict while in eval mode change parameters in place."""
    layer = MetaConv2d(3, 4, 3).eval()
    layer.kernel(0.5)
    with torch.no_grad():
        layer.meta.bias.add_(1.0)
    assert_close(layer.kernel(0.5), hand_kernel(layer, 0.5))
    other = MetaConv2d(3, 4, 3)
    layer.load_state_dict(other.state_dict())
    assert_close(layer.kernel(0.5), hand_kernel(other, 0.5))


def hand_set_norms(norm: PrivateBatchNorm2d) -> PrivateBatchNorm2d:
    """BN at 96: mean 1, var 4, weight 1, bias 0; BN at 128: mean 3, var 9, weight 2, bias 1;
    eps negligible (1e-12; batch_norm refuses 0 in training) so outputs match hand values."""
    for resolution, (mean, var, weight, bias) in {96: (1, 4, 1, 0), 128: (3, 9, 2, 1)}.items():
        bn = norm.norms[str(resolution)]
        bn.eps = 1e-12
        with torch.no_grad():
            for tensor, value in ((bn.running_mean, mean), (bn.running_var, var),
                                  (bn.weight, weight), (bn.bias, bias)):
                tensor.fill_(value)
    return norm


def normalise_five(norm: PrivateBatchNorm2d, resolution: int) -> float:
    """Output for a one-channel input filled with 5."""
    return norm(torch.full((1, 1, 2, 2), 5.0), resolution)[0, 0, 0, 0].item()


def test_training_uses_and_updates_only_the_resolutions_own_norm():
    norm = PrivateBatchNorm2d(2, (128, 96))
    assert norm.resolutions == (96, 128)
    x = torch.arange(16.0).reshape(2, 2, 2, 2)
    out = norm(x, 96)
    assert_close(out, F.batch_norm(x, None, None, training=True))
    assert norm.norms["96"].num_batches_tracked == 1
    assert norm.norms["128"].num_batches_tracked == 0
    assert torch.equal(norm.norms["128"].running_mean, torch.zeros(2))
    assert not torch.equal(norm.norms["96"].running_mean, torch.zeros(2))
    with pytest.raises(ValueError, match="not a training resolution"):
        norm(x, 112)


@pytest.mark.parametrize("resolution, expected", [
    (96, 2.0),             # (5 - 1) / 2
    (100, 2.0),            # nearest 96
    (120, 2 * 2 / 3 + 1),  # nearest 128: (5 - 3) / 3 * 2 + 1
    (112, 2 * 2 / 3 + 1),  # tie goes to the larger resolution
    (48, 2.0),             # below the range: 96
    (300, 2 * 2 / 3 + 1),  # above the range: 128
])
def test_proxy_uses_the_nearest_training_resolutions_norm(resolution, expected):
    norm = hand_set_norms(PrivateBatchNorm2d(1, (96, 128))).eval()
    assert normalise_five(norm, resolution) == pytest.approx(expected)


@pytest.mark.parametrize("resolution, ceil_weight", [(112, 0.5), (104, 0.25), (120, 0.75),
                                                     (96, 0.0), (128, 1.0)])
def test_data_free_interpolates_weight_bias_mean_and_var(resolution, ceil_weight):
    norm = hand_set_norms(PrivateBatchNorm2d(1, (96, 128))).eval()
    norm.set_inference_mode("data_free")

    def lerp(low, high):
        return (1 - ceil_weight) * low + ceil_weight * high

    mean, var, weight, bias = lerp(1, 3), lerp(4, 9), lerp(1, 2), lerp(0, 1)
    expected = (5 - mean) / math.sqrt(var) * weight + bias
    assert normalise_five(norm, resolution) == pytest.approx(expected)


def test_data_free_halfway_and_quarter_values_by_hand():
    norm = hand_set_norms(PrivateBatchNorm2d(1, (96, 128))).eval()
    norm.set_inference_mode("data_free")
    assert norm.interpolation_weights(112) == (96, 128, 0.5)
    assert norm.interpolation_weights(104) == (96, 128, 0.25)
    # 112: mean 2, var 6.5, weight 1.5, bias 0.5; 104: mean 1.5, var 5.25, weight 1.25, bias 0.25
    assert normalise_five(norm, 112) == pytest.approx(3 / math.sqrt(6.5) * 1.5 + 0.5)
    assert normalise_five(norm, 104) == pytest.approx(3.5 / math.sqrt(5.25) * 1.25 + 0.25)


@pytest.mark.parametrize("resolution, expected", [(64, 2.0), (95, 2.0), (129, 2 * 2 / 3 + 1),
                                                  (256, 2 * 2 / 3 + 1)])
def test_data_free_clamps_outside_the_trained_range(resolution, expected):
    norm = hand_set_norms(PrivateBatchNorm2d(1, (96, 128))).eval()
    norm.set_inference_mode("data_free")
    assert normalise_five(norm, resolution) == pytest.approx(expected)


def test_ideal_uses_calibrated_statistics_with_the_nearest_norms_affine():
    norm = hand_set_norms(PrivateBatchNorm2d(1, (96, 128))).eval()
    norm.set_inference_mode("ideal")
    ones = torch.ones(2, 1, 4, 4)
    twos_and_fours = torch.cat([torch.full((1, 1, 4, 4), 2.0), torch.full((1, 1, 4, 4), 4.0)])
    norm.begin_calibration(112)
    calibrating_output = norm(twos_and_fours, 112)
    norm(ones, 112)
    norm.end_calibration(keep=True)
    # during calibration: batch statistics (mean 3, biased var 1), affine of 128 (weight 2, bias 1)
    assert_close(calibrating_output[:, 0, 0, 0], torch.tensor([-1.0, 3.0]))
    # cumulative average: mean (3 + 1) / 2; unbiased var (32 / 31 + 0) / 2
    mean, var = norm.calibrated_statistics[112]
    assert_close(mean, torch.tensor([2.0]))
    assert_close(var, torch.tensor([16 / 31]))
    assert normalise_five(norm, 112) == pytest.approx(3 / math.sqrt(16 / 31) * 2 + 1)
    assert norm.norms["128"].running_mean.item() == 3 and norm.norms["96"].running_mean.item() == 1
    assert normalise_five(norm, 96) == pytest.approx(2.0)  # uncalibrated training resolution
    with pytest.raises(RuntimeError, match=r"calibrate_batchnorm\(backbone, batches, 120\)"):
        normalise_five(norm, 120)


UNEVEN_BATCH_SIZES = (6, 2, 1)


def uneven_batches(channels: int, size: int) -> list:
    """float64 batches of 6, 2 and 1 images with clearly different means and spreads."""
    generator = torch.Generator().manual_seed(0)
    scales_and_shifts = ((1.0, 0.0), (3.0, 2.0), (0.5, -4.0))
    return [torch.randn(n, channels, size, size, generator=generator, dtype=torch.float64) * scale
            + shift for n, (scale, shift) in zip(UNEVEN_BATCH_SIZES, scales_and_shifts)]


def weighted_batch_statistics(batches, weights):
    """Reference for ideal calibration (the authors' bn_update), written out: per channel,
    mean = sum_i w_i m_i / sum_i w_i and var = sum_i w_i s_i / sum_i w_i, where over the
    count = N_i * H * W values v of batch i, m_i = sum v / count and
    s_i = sum (v - m_i)^2 / (count - 1) (unbiased, as BN's running_var)."""
    means, variances = [], []
    for x in batches:
        values = x.detach().transpose(0, 1).reshape(x.shape[1], -1)
        count = values.shape[1]
        m = values.sum(dim=1) / count
        means.append(m)
        variances.append((values - m[:, None]).square().sum(dim=1) / (count - 1))
    total = sum(weights)
    return (sum(w * m for w, m in zip(weights, means)) / total,
            sum(w * s for w, s in zip(weights, variances)) / total)


def test_calibration_weights_each_batch_by_its_images():
    norm = PrivateBatchNorm2d(3, (32, 64)).double().eval()
    batches = uneven_batches(3, 5)
    norm.begin_calibration(40)
    for x in batches:
        norm(x, 40)
    norm.end_calibration(keep=True)
    mean, var = norm.calibrated_statistics[40]
    expected_mean, expected_var = weighted_batch_statistics(batches, UNEVEN_BATCH_SIZES)
    assert_close(mean, expected_mean)
    assert_close(var, expected_var)
    # each batch weighing the same would give another answer: means about (0 + 2 - 4) / 3 instead
    # of (6 * 0 + 2 * 2 - 4) / 9, variances about (1 + 9 + 0.25) / 3 instead of / 9 weighted
    equal_mean, equal_var = weighted_batch_statistics(batches, (1, 1, 1))
    assert ((mean - equal_mean).abs() > 0.5).all() and ((equal_var - var).abs() > 0.5).all()


def test_unknown_inference_mode_is_rejected():
    with pytest.raises(ValueError, match="proxy"):
        PrivateBatchNorm2d(1, (96,)).set_inference_mode("nearest")


def count_modules(module: nn.Module, kind) -> int:
    return sum(isinstance(m, kind) for m in module.modules())


def test_resnet18_shapes_and_structure():
    backbone = SANResNet(18, TINY_RESOLUTIONS, width=0.25,
                         out_features=("stem", "res2", "res3", "res4", "res5"))
    shapes = backbone.output_shape()
    assert {k: (v.channels, v.stride) for k, v in shapes.items()} == {
        "stem": (16, 4), "res2": (16, 4), "res3": (32, 8), "res4": (64, 16), "res5": (128, 32)}
    assert backbone.size_divisibility == 0
    outputs = backbone(torch.randn(2, 3, 64, 64))
    assert {k: tuple(v.shape) for k, v in outputs.items()} == {
        "stem": (2, 16, 16, 16), "res2": (2, 16, 16, 16), "res3": (2, 32, 8, 8),
        "res4": (2, 64, 4, 4), "res5": (2, 128, 2, 2)}
    # shared stem: the only plain conv; 8 blocks x 2 generated convs + 3 projection shortcuts
    assert count_modules(backbone, nn.Conv2d) == 1 and isinstance(backbone.stem_conv, nn.Conv2d)
    assert count_modules(backbone, MetaConv2d) == 8 * 2 + 3
    assert backbone.stages["res2"][0].shortcut is None
    assert isinstance(backbone.stages["res3"][0].shortcut.conv, MetaConv2d)
    assert isinstance(backbone.stages["res3"][0].conv1.conv, MetaConv2d)
    # private BN at every BN position (stem included), one BatchNorm2d per training resolution
    assert count_modules(backbone, PrivateBatchNorm2d) == 1 + 19
    assert count_modules(backbone, nn.BatchNorm2d) == 2 * 20


def test_resnet50_shapes_and_structure():
    backbone = SANResNet(50, TINY_RESOLUTIONS, width=0.25, out_features=("res4", "res5"))
    shapes = backbone.output_shape()
    assert {k: (v.channels, v.stride) for k, v in shapes.items()} == {
        "res4": (256, 16), "res5": (512, 32)}
    outputs = backbone(torch.randn(2, 3, 32, 32))
    assert tuple(outputs["res4"].shape) == (2, 256, 2, 2)
    assert tuple(outputs["res5"].shape) == (2, 512, 1, 1)
    # 16 bottlenecks x 3 generated convs + 4 projection shortcuts (res2 widens 16 -> 64)
    assert count_modules(backbone, MetaConv2d) == 16 * 3 + 4
    assert count_modules(backbone, nn.Conv2d) == 1
    block = backbone.stages["res3"][0]
    assert block.conv2.conv.stride == 2 and block.conv1.conv.stride == 1


def test_mobilenetv2_shapes_and_structure():
    backbone = SANMobileNetV2(TINY_RESOLUTIONS, width_mult=0.25)
    shape = backbone.output_shape()["res5"]
    assert (shape.channels, shape.stride) == (1280, 32) and backbone.size_divisibility == 0
    assert tuple(backbone(torch.randn(2, 3, 64, 64))["res5"].shape) == (2, 1280, 2, 2)
    # every conv generated: stem + first block (2) + 16 blocks x 3 + final 1x1; none plain
    assert count_modules(backbone, nn.Conv2d) == 0
    metas = [m for m in backbone.modules() if isinstance(m, MetaConv2d)]
    assert len(metas) == 1 + 2 + 16 * 3 + 1
    depthwise = [m for m in metas if m.groups > 1]
    assert len(depthwise) == 17 and all(m.groups == m.in_channels == m.out_channels
                                        for m in depthwise)
    assert backbone.stem.conv.in_channels == 3 and backbone.stem.conv.out_channels == 8


@pytest.mark.parametrize("make_backbone", [
    lambda resolutions: SANResNet(18, resolutions, width=0.25),
    lambda resolutions: SANMobileNetV2(resolutions, width_mult=0.25),
], ids=["resnet18", "mobilenetv2"])
def test_forward_backward_at_two_training_resolutions(make_backbone):
    torch.manual_seed(0)
    backbone = make_backbone((16, 32))
    loss = sum(backbone(torch.randn(2, 3, s, s))["res5"].square().mean() for s in (16, 32))
    loss.backward()
    metas = [m for m in backbone.modules() if isinstance(m, MetaConv2d)]
    assert all(m.meta.weight.grad.abs().sum() > 0 and m.meta.bias.grad.abs().sum() > 0
               for m in metas)
    norm = next(m for m in backbone.modules() if isinstance(m, PrivateBatchNorm2d))
    assert all(bn.weight.grad.abs().sum() > 0 for bn in norm.norms.values())
    with pytest.raises(ValueError, match=r"not one of the training resolutions \(16, 32\)"):
        backbone(torch.randn(2, 3, 24, 24))


def test_resolution_is_min_side_and_encoding_follows_the_mode():
    backbone = SANResNet(18, TINY_RESOLUTIONS, width=0.25).eval()
    assert backbone.resolution_and_encoding(torch.zeros(1, 3, 40, 50)) == (40, 0.1)  # nearest 32
    backbone.set_inference_mode("data_free")
    assert backbone.resolution_and_encoding(torch.zeros(1, 3, 40, 50)) == (40, 40 / 320)
    assert backbone.stem_norm.inference_mode == "data_free"


def test_calibrate_batchnorm_on_constant_images_gives_their_statistics():
    backbone = SANResNet(18, TINY_RESOLUTIONS, width=0.25)
    with torch.no_grad():  # every stem channel copies input channel 0 at the kernel centre
        backbone.stem_conv.weight.zero_()
        backbone.stem_conv.weight[:, 0, 3, 3] = 1.0
    ones = torch.ones(2, 3, 48, 48)
    twos_and_fours = torch.cat([torch.full((1, 3, 48, 48), 2.0), torch.full((1, 3, 48, 48), 4.0)])
    calibrate_batchnorm(backbone, [ones, twos_and_fours], 48)
    assert backbone.training and backbone.inference_mode == "proxy"  # restored
    mean, var = backbone.stem_norm.calibrated_statistics[48]
    count = 2 * 24 * 24  # values per channel of the stride-2 stem output
    assert_close(mean, torch.full((16,), 2.0))
    assert_close(var, torch.full((16,), (count / (count - 1)) / 2))
    norms = [m for m in backbone.modules() if isinstance(m, PrivateBatchNorm2d)]
    assert all(48 in m.calibrated_statistics for m in norms)
    backbone.eval().set_inference_mode("ideal")
    assert backbone(torch.randn(1, 3, 48, 48))["res5"].shape == (1, 128, 2, 2)
    with pytest.raises(RuntimeError, match="calibrate_batchnorm"):
        backbone(torch.randn(1, 3, 40, 40))


def test_calibrate_batchnorm_rejects_wrong_resolution_and_keeps_nothing():
    backbone = SANResNet(18, TINY_RESOLUTIONS, width=0.25)
    with pytest.raises(ValueError, match="feed batches resized to 48"):
        calibrate_batchnorm(backbone, [torch.ones(1, 3, 40, 40)], 48)
    assert backbone.stem_norm.calibrated_statistics == {}
    with pytest.raises(ValueError, match="no batches"):
        calibrate_batchnorm(backbone, [], 48)
    with pytest.raises(TypeError, match="model.backbone"):
        calibrate_batchnorm(nn.Conv2d(3, 3, 1), [], 48)


def test_calibrate_batchnorm_weights_each_batch_by_its_images_in_every_norm():
    torch.manual_seed(0)
    backbone = SANResNet(18, TINY_RESOLUTIONS, width=0.25).double()
    norms = {name: m for name, m in backbone.named_modules() if isinstance(m, PrivateBatchNorm2d)}
    seen = {name: [] for name in norms}  # what each private BN receives during calibration
    for name, norm in norms.items():
        norm.register_forward_pre_hook(lambda module, args, name=name: seen[name].append(args[0]))
    calibrate_batchnorm(backbone, uneven_batches(3, 48), 48)
    for name, norm in norms.items():
        assert [len(x) for x in seen[name]] == list(UNEVEN_BATCH_SIZES)
        mean, var = norm.calibrated_statistics[48]
        expected_mean, expected_var = weighted_batch_statistics(seen[name], UNEVEN_BATCH_SIZES)
        assert_close(mean, expected_mean, msg=name)
        assert_close(var, expected_var, msg=name)
    # the network's outputs with these statistics and with per-batch equal weighting differ
    backbone.eval().set_inference_mode("ideal")
    images = uneven_batches(3, 48)[0]
    by_images = backbone(images)["res5"]
    for name, norm in norms.items():
        norm.calibrated_statistics[48] = weighted_batch_statistics(seen[name], (1, 1, 1))
    by_batches = backbone(images)["res5"]
    assert (by_images - by_batches).abs().max() > 0.1 * by_images.abs().max()


@pytest.mark.parametrize("mode", ["proxy", "data_free"])
def test_image_classifier_on_san_resnet_scores_an_unseen_resolution(mode):
    torch.manual_seed(0)
    model = ImageClassifier(backbone=SANResNet(18, TINY_RESOLUTIONS, width=0.25),
                            in_feature="res5", num_classes=5, pixel_mean=[128.0] * 3,
                            pixel_std=[64.0] * 3)
    # the shared classifier is the plain fc; no generated or private layers outside the backbone
    assert isinstance(model.fc, nn.Linear) and model.fc.in_features == 128
    outside = [m for name, m in model.named_modules() if not name.startswith("backbone")]
    assert not any(isinstance(m, (MetaConv2d, PrivateBatchNorm2d)) for m in outside)
    model.train()
    inputs = [{"image": torch.randint(0, 256, (3, 64, 64), dtype=torch.uint8), "class_id": 1}]
    assert model(inputs)["loss_cls"].item() > 0
    model.eval()
    model.backbone.set_inference_mode(mode)
    with torch.no_grad():
        outputs = model([{"image": torch.randint(0, 256, (3, 48, 48), dtype=torch.uint8)}])
    scores = outputs[0]["scores"]
    assert scores.shape == (5,) and scores.sum().item() == pytest.approx(1.0)


def test_all_modes_agree_at_a_training_resolution():
    """At a training resolution every mode reduces to that resolution's own network."""
    torch.manual_seed(0)
    backbone = SANResNet(18, TINY_RESOLUTIONS, width=0.25)
    backbone(torch.randn(2, 3, 32, 32))  # non-trivial running statistics at 32
    backbone.eval()
    x = torch.randn(1, 3, 32, 32)
    outputs = []
    for mode in ("proxy", "data_free", "ideal"):
        backbone.set_inference_mode(mode)
        outputs.append(backbone(x)["res5"])
    assert_close(outputs[1], outputs[0])
    assert_close(outputs[2], outputs[0])
