"""--from drn-wsod and --from detectron: Caffe2 .pkl ImageNet models (DRN-WSOD's ResNet-WS, Detectron's
MSRA ResNets) with the authors' blob names, into the ResNet-WS classifiers and detectors and the
MSRA-initialised detectors; and WSOD detectors of the DRN-WSOD detectron2 fork (its keys, listed
from its code), into our WSDDN / OICR / OICR+REG configs."""
import pytest
import torch
import torch.nn.functional as F

from projects.common import checkpoint
from published_checkpoints import (
    assert_keys_and_shapes,
    config_model,
    listed_shapes,
    msra_resnet_blob_shapes,
    random_state,
    resnet_ws_blob_shapes,
    save_caffe2_pickle,
)

CPU_CLASSIFIER = "resnet_ws/synthetic_classifier_R18_WS_cpu.py"
# the CPU configs' ResNet18-WS: quarter width, (256, 256) neck on 2x2 pooled maps, 8 classes
CPU_BLOBS = dict(depth=18, width=0.25, neck=(256, 256), pooled=2, num_classes=8)


def convert_pickle(tmp_path, blobs, *arguments):
    source_file, converted_file = str(tmp_path / "resnet_ws_model_120.pkl"), str(tmp_path / "converted.pth")
    save_caffe2_pickle(blobs, source_file)
    checkpoint.main(["--input", source_file, "--output", converted_file, *arguments])
    return torch.load(converted_file, weights_only=True)["model"]


def test_drn_wsod_classifier_loads_strictly_and_keeps_the_affine_channels(tmp_path):
    blobs = random_state(resnet_ws_blob_shapes(**CPU_BLOBS))
    blobs.update({"res3_0_branch2a_w_momentum": torch.ones(1), "res2_0_branch2a_bn_rm": torch.ones(16)})
    converted = convert_pickle(tmp_path, blobs, "--from", "drn-wsod", "--config", CPU_CLASSIFIER)
    model = config_model(CPU_CLASSIFIER)
    assert checkpoint.check_loads(converted, model) == []

    # an affine channel s x + b is exactly the converted BN (eval mode) of the classification form
    norm = model.backbone.res4[1].conv2.norm
    x = torch.randn(2, norm.num_features, 3, 3)
    scale, shift = blobs["res4_1_branch2b_bn_s"].view(1, -1, 1, 1), blobs["res4_1_branch2b_bn_b"].view(1, -1, 1, 1)
    with torch.no_grad():
        assert torch.allclose(norm(x), scale * x + shift, atol=1e-5)
    # the deep stem, the projection, the neck and the classifier; Caffe2 is BGR: nothing flipped
    assert torch.equal(model.backbone.stem.conv2.weight, blobs["conv1_2_w"])
    assert torch.equal(model.backbone.res3[0].shortcut.weight, blobs["res3_0_branch1_w"])
    assert torch.equal(model.neck.layers[3].bias, blobs["fc7_b"])
    assert torch.equal(model.fc.weight, blobs["fc8_w"])
    assert torch.equal(model.backbone.stem.conv1.weight, blobs["conv1_1_w"])


def test_drn_wsod_initialises_the_wsod_detector(tmp_path):
    blobs = random_state(resnet_ws_blob_shapes(**CPU_BLOBS), seed=1)
    converted = convert_pickle(tmp_path, blobs, "--from", "drn-wsod", "--config", "resnet_ws/synthetic_oicr_R18_WS_cpu.py")
    assert not any(key.startswith("fc.") for key in converted), "the ImageNet classifier has no place in a detector"
    assert torch.equal(converted["neck.layers.0.weight"], blobs["fc6_w"])
    assert torch.equal(converted["backbone.res5.1.conv1.norm.weight"], blobs["res5_1_branch2a_bn_s"])


@pytest.mark.parametrize("depth", [18, 50, 101])
def test_drn_wsod_full_size_keys_and_shapes(depth):
    neck = (4096, 4096) if depth == 18 else (2048, 4096)
    blobs = random_state(resnet_ws_blob_shapes(depth, neck=neck), device="meta")
    converted = checkpoint.convert_drn_wsod(blobs).state
    assert_keys_and_shapes(converted, config_model(f"resnet_ws/imagenet_classifier_R{depth}_WS.py", device="meta"))


def test_detectron_msra_r50_initialises_an_msra_detector(tmp_path):
    blobs = random_state(msra_resnet_blob_shapes(50), seed=2)
    converted = convert_pickle(tmp_path, blobs, "--from", "detectron", "--config", "msad/coco_fcos_R50_teacher_1x.py")
    model = config_model("msad/coco_fcos_R50_teacher_1x.py")
    prefix = "detector.backbone.bottom_up."
    not_set = checkpoint.check_loads(converted, model, initialised_prefix=prefix)
    assert not any(key.startswith(prefix) for key in not_set)

    # the stem: conv1_w with its bias folded into the affine channel, s (conv(x) + b) + t exactly
    stem = model.detector.backbone.bottom_up.stem.conv1
    x = torch.randn(1, 3, 32, 32)
    expected = F.conv2d(x, blobs["conv1_w"], blobs["conv1_b"], stride=2, padding=3)
    expected = expected * blobs["res_conv1_bn_s"].view(1, -1, 1, 1) + blobs["res_conv1_bn_b"].view(1, -1, 1, 1)
    with torch.no_grad():
        assert torch.allclose(stem(x), expected, atol=1e-4)
    assert torch.equal(converted[prefix + "res4.5.conv3.weight"], blobs["res4_5_branch2c_w"])


def test_detectron_msra_r101_keys_and_shapes():
    converted = checkpoint.convert_detectron(random_state(msra_resnet_blob_shapes(101), device="meta")).state
    model = config_model("common/models/classifier.py", "model.backbone.stages.depth=101", device="meta")
    assert_keys_and_shapes(converted, model)


def test_errors(tmp_path):
    msra = random_state(msra_resnet_blob_shapes(50), device="meta")
    with pytest.raises(ValueError, match="not a DRN-WSOD checkpoint"):
        checkpoint.convert_drn_wsod(msra)
    with pytest.raises(ValueError, match=r"not Detectron MSRA ResNet names.*fpn_inner"):
        checkpoint.convert_detectron({**msra, "fpn_inner_res5_2_sum_w": torch.ones(1)})
    blobs = random_state(resnet_ws_blob_shapes(**CPU_BLOBS), seed=3)
    with pytest.raises(ValueError, match=r"does not load.*shapes differ"):  # a ResNet18-WS for a ResNet50-WS
        convert_pickle(tmp_path, blobs, "--from", "drn-wsod", "--config", "resnet_ws/imagenet_classifier_R50_WS.py")


@pytest.mark.parametrize("listing, config", [
    ("drn_wsod_reg_oicr_WSR_18_DC5_1x", "resnet_ws/voc07_oicr_reg_R18_WS.py"),
    ("drn_wsod_oicr_WSR_50_DC5_1x", "resnet_ws/voc07_oicr_R50_WS.py"),
    ("drn_wsod_wsddn_WSR_18_DC5_1x", "resnet_ws/voc07_wsddn_R18_WS.py"),
])
def test_drn_wsod_detector_keys_and_shapes(listing, config):
    converted = checkpoint.convert_drn_wsod(random_state(listed_shapes(listing), device="meta")).state
    assert_keys_and_shapes(converted, config_model(config, device="meta"))


def authors_oicr_reg_detector(model):
    """An OICR+REG detector in the authors' names with the CPU config's shapes: the inverse of the
    conversion written out, plus the three bbox_pred the non-regressing branches build."""
    ours = model.state_dict()
    names = {"neck.layers.0": "roi_heads.box_head.fc1", "neck.layers.3": "roi_heads.box_head.fc2",
             "head.mil.classification_stream": "roi_heads.box_predictor.cls",
             "head.mil.detection_stream": "roi_heads.box_predictor.det",
             "head.box_deltas": "roi_heads.box_refinery_3.bbox_pred",
             **{f"head.refinements.{k}": f"roi_heads.box_refinery_{k}.cls_score" for k in range(4)}}
    shapes = {key: tuple(value.shape) for key, value in ours.items() if key.startswith("backbone.")}
    for name, authors in names.items():
        shapes.update({f"{authors}.{p}": tuple(ours[f"{name}.{p}"].shape) for p in ("weight", "bias")})
    for k in range(3):
        shapes.update({f"roi_heads.box_refinery_{k}.bbox_pred.{p}": shapes[f"roi_heads.box_refinery_3.bbox_pred.{p}"]
                       for p in ("weight", "bias")})
    shapes.update({"pixel_mean": (3, 1, 1), "pixel_std": (3, 1, 1)})
    return random_state(shapes, seed=5)


def test_drn_wsod_oicr_reg_detector_loads_strictly(tmp_path):
    config = "resnet_ws/synthetic_oicr_reg_R18_WS_cpu.py"
    model = config_model(config)
    source = authors_oicr_reg_detector(model)
    assert set(source) == set(listed_shapes("drn_wsod_reg_oicr_WSR_18_DC5_1x")), "the authors' keys exactly"
    source_file, converted_file = str(tmp_path / "model_final.pth"), str(tmp_path / "converted.pth")
    torch.save({"model": source, "iteration": 49999}, source_file)
    checkpoint.main(["--from", "drn-wsod", "--input", source_file, "--output", converted_file, "--config", config])
    converted = torch.load(converted_file, weights_only=True)["model"]
    assert checkpoint.check_loads(converted, model) == []
    assert torch.equal(model.head.box_deltas.weight, source["roi_heads.box_refinery_3.bbox_pred.weight"])
    assert torch.equal(model.head.refinements[2].bias, source["roi_heads.box_refinery_2.cls_score.bias"])
    assert torch.equal(model.head.mil.detection_stream.weight, source["roi_heads.box_predictor.det.weight"])
    assert torch.equal(model.neck.layers[3].weight, source["roi_heads.box_head.fc2.weight"])
    assert torch.equal(model.backbone.res4[0].shortcut.norm.running_var, source["backbone.res4.0.shortcut.norm.running_var"])
    assert "roi_heads.box_refinery_0.bbox_pred.weight" not in converted and "pixel_mean" not in converted
