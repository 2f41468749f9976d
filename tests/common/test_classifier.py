"""ImageClassifier: output formats, training signal, errors and the feature-map accessor."""

import pytest
import torch

from detectron2.modeling import META_ARCH_REGISTRY
from detectron2.modeling.backbone.resnet import BasicStem, ResNet

from projects.common.modeling import ImageClassifier

NUM_CLASSES = 4


def make_classifier(**overrides) -> ImageClassifier:
    """A ResNet-18 classifier small enough for CPU tests on 64x64 images."""
    backbone = ResNet(
        stem=BasicStem(in_channels=3, out_channels=64, norm="BN"),
        stages=ResNet.make_default_stages(depth=18, norm="BN"),
        out_features=["res5"],
    )
    kwargs = dict(
        backbone=backbone,
        in_feature="res5",
        num_classes=NUM_CLASSES,
        pixel_mean=[103.5, 116.3, 123.7],
        pixel_std=[57.4, 57.1, 58.4],
    )
    kwargs.update(overrides)
    return ImageClassifier(**kwargs)


def make_inputs(count: int, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    return [
        {
            "image": torch.randint(0, 256, (3, 64, 64), dtype=torch.uint8, generator=generator),
            "class_id": index % NUM_CLASSES,
        }
        for index in range(count)
    ]


def test_registered_in_meta_arch_registry():
    assert META_ARCH_REGISTRY.get("ImageClassifier") is ImageClassifier


def test_training_returns_scalar_cross_entropy():
    torch.manual_seed(0)
    model = make_classifier().train()
    losses = model(make_inputs(4))
    assert set(losses) == {"loss_cls"}
    assert losses["loss_cls"].shape == ()
    # An untrained head is close to uniform: cross-entropy near log(num_classes).
    assert 0.5 < losses["loss_cls"].item() < 5.0


def test_eval_returns_probabilities_per_input():
    torch.manual_seed(0)
    model = make_classifier().eval()
    inputs = make_inputs(3)
    for x in inputs:
        del x["class_id"]  # labels are not needed at inference
    with torch.no_grad():
        outputs = model(inputs)
    assert len(outputs) == 3
    for output in outputs:
        assert set(output) == {"scores"}
        assert output["scores"].shape == (NUM_CLASSES,)
        assert (output["scores"] >= 0).all()
        assert output["scores"].sum().item() == pytest.approx(1.0, abs=1e-5)


def test_loss_decreases_when_overfitting_tiny_set():
    torch.manual_seed(0)
    model = make_classifier().train()
    inputs = make_inputs(8)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(30):
        loss = model(inputs)["loss_cls"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.25 * losses[0]


def test_missing_class_id_in_training_names_the_input_and_fix():
    model = make_classifier().train()
    inputs = make_inputs(2)
    del inputs[1]["class_id"]
    with pytest.raises(KeyError, match="input 1 .*class_id"):
        model(inputs)


def test_out_of_range_class_id_is_rejected():
    model = make_classifier().train()
    inputs = make_inputs(1)
    inputs[0]["class_id"] = NUM_CLASSES
    with pytest.raises(ValueError, match="num_classes"):
        model(inputs)


def test_unknown_in_feature_lists_backbone_outputs():
    with pytest.raises(ValueError, match="res5"):
        make_classifier(in_feature="res4")


def test_feature_map_shape_and_class_activation_map_identity():
    """res5 has stride 32 and 512 channels; the mean of a class's CAM plus bias is its logit."""
    torch.manual_seed(0)
    model = make_classifier().eval()
    inputs = make_inputs(2)
    with torch.no_grad():
        features = model.feature_map(inputs)
        scores = torch.stack([output["scores"] for output in model(inputs)])
        cams = torch.einsum("kc,nchw->nkhw", model.fc.weight, features)
    assert features.shape == (2, 512, 2, 2)
    logits = cams.mean(dim=(2, 3)) + model.fc.bias
    torch.testing.assert_close(logits.softmax(dim=1), scores)


def test_device_follows_the_module():
    assert make_classifier().device == torch.device("cpu")
