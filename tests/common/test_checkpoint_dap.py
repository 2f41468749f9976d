"""--from maskrcnn-benchmark and --from dap-split: the DAP authors' ImageNet-22K classifiers, DAP
Faster R-CNN R50/R101-FPN (exactly maskrcnn-benchmark's keys and shapes, random values) and low-data
split files, into the DAP configs and k-shot datasets."""
import json

import pytest
import torch
import torchvision

from detectron2.data import DatasetCatalog
from detectron2.layers import FrozenBatchNorm2d

from dap import register_k_shot_dataset
from projects.common import checkpoint
from published_checkpoints import assert_keys_and_shapes, config_model, listed_shapes, random_state

PRETRAIN_R50 = "dap/pretrain_faster_rcnn_R50_FPN_in1m.py"


@pytest.fixture(scope="module")
def dap_in1k_r50():
    """The IN-1K DAP Faster R-CNN R50-FPN (1001 classes) as maskrcnn-benchmark saves it after
    distributed training, its backbone statistics those of the MSRA caffe start (0 / 1)."""
    state = random_state(listed_shapes("dap_in1k_faster_rcnn_r50fpn"), caffe_statistics=True)
    return {"module." + key: value for key, value in state.items()}


def run_cli(tmp_path, checkpoint_dict, *arguments):
    source_file, converted_file = str(tmp_path / "model_final.pth"), str(tmp_path / "converted.pth")
    torch.save(checkpoint_dict, source_file)
    checkpoint.main(["--from", "maskrcnn-benchmark", "--input", source_file, "--output", converted_file, *arguments])
    return torch.load(converted_file, weights_only=True)["model"]


def test_dap_detector_loads_strictly_with_detectron2_conventions(dap_in1k_r50, tmp_path):
    source = {key[len("module."):]: value for key, value in dap_in1k_r50.items()}
    converted = run_cli(tmp_path, {"model": dap_in1k_r50, "iteration": 40038}, "--config", PRETRAIN_R50)
    model = config_model(PRETRAIN_R50)
    assert checkpoint.check_loads(converted, model) == []

    # class order: maskrcnn-benchmark's background 0 goes last; its 4 box rows are dropped
    predictor = model.roi_heads.box_predictor
    assert torch.equal(predictor.cls_score.weight[0], source["roi_heads.box.predictor.cls_score.weight"][1])
    assert torch.equal(predictor.cls_score.bias[-1], source["roi_heads.box.predictor.cls_score.bias"][0])
    assert torch.equal(predictor.bbox_pred.weight, source["roi_heads.box.predictor.bbox_pred.weight"][4:])
    # FPN, RPN and box head names
    assert torch.equal(model.backbone.fpn_lateral2.weight, source["backbone.fpn.fpn_inner1.weight"])
    assert torch.equal(model.backbone.fpn_output5.bias, source["backbone.fpn.fpn_layer4.bias"])
    rpn = model.proposal_generator.rpn_head
    assert torch.equal(rpn.objectness_logits.weight, source["rpn.head.cls_logits.weight"])
    assert torch.equal(rpn.anchor_deltas.bias, source["rpn.head.bbox_pred.bias"])
    assert torch.equal(model.roi_heads.box_head.fc2.weight, source["roi_heads.box.feature_extractor.fc7.weight"])
    # a caffe start is BGR: the first conv is not flipped
    assert torch.equal(model.backbone.bottom_up.stem.conv1.weight, source["backbone.body.stem.conv1.weight"])


def test_frozen_bn_without_epsilon_is_reproduced(tmp_path):
    """maskrcnn-benchmark's FrozenBatchNorm2d computes x w / sqrt(var) + b - mean w / sqrt(var)."""
    source = {key: value for key, value in random_state(listed_shapes("dap_in1k_faster_rcnn_r50fpn"), seed=3).items()}
    source["backbone.body.layer2.1.bn2.running_var"] = torch.rand(128) * 1e-4 + 1e-6  # where the epsilon matters
    converted = checkpoint.convert_maskrcnn_benchmark(source).state
    norm = FrozenBatchNorm2d(128)
    norm.load_state_dict({name: converted[f"backbone.bottom_up.res3.1.conv2.norm.{name}"]
                          for name in ("weight", "bias", "running_mean", "running_var")})
    x = torch.randn(2, 128, 4, 4)
    weight, bias, mean, var = (source[f"backbone.body.layer2.1.bn2.{name}"].view(1, -1, 1, 1)
                               for name in ("weight", "bias", "running_mean", "running_var"))
    expected = x * weight / var.sqrt() + bias - mean * weight / var.sqrt()
    assert torch.allclose(norm(x), expected, rtol=1e-5, atol=1e-4)


def test_torchvision_style_start_is_read_as_rgb(tmp_path):
    source = random_state(listed_shapes("dap_in1k_faster_rcnn_r50fpn"), seed=4)  # learnt statistics
    conversion = checkpoint.convert_maskrcnn_benchmark(source)
    stem = source["backbone.body.stem.conv1.weight"]
    assert torch.equal(conversion.state["backbone.bottom_up.stem.conv1.weight"], stem.flip(1))
    assert conversion.input.pixel_std == (57.375, 57.120, 58.395)
    told = checkpoint.convert_maskrcnn_benchmark(source, source_channel_order="BGR")
    assert torch.equal(told.state["backbone.bottom_up.stem.conv1.weight"], stem)


def test_dap_in22k_r101_keys_and_shapes():
    """21,841 ImageNet-22K classes, ResNet-101 and (this config of the authors only) class-agnostic
    box regression; built without memory (its class scores alone have 22M parameters)."""
    source = random_state(listed_shapes("dap_in22k_faster_rcnn_r101fpn"), device="meta")
    conversion = checkpoint.convert_maskrcnn_benchmark(source, source_channel_order="RGB")
    assert any("cls_agnostic_bbox_reg=True" in note for note in conversion.notes)
    model = config_model("dap/pretrain_faster_rcnn_R50_FPN_in14m.py", "model.backbone.bottom_up.stages.depth=101",
                         "model.roi_heads.box_predictor.cls_agnostic_bbox_reg=True", device="meta")
    assert_keys_and_shapes(conversion.state, model)


def test_imagenet22k_classifier_is_a_torchvision_resnet(tmp_path):
    """compute_box_imagenet22k.py reads checkpoint["model"] of a DataParallel torchvision ResNet."""
    torch.manual_seed(0)
    classifier = {"module." + key: value for key, value in torchvision.models.resnet50(weights=None).state_dict().items()}
    converted = run_cli(tmp_path, {"model": classifier}, "--config", "dap/imagenet_classifier_R50.py")
    assert torch.equal(converted["backbone.stem.conv1.weight"], classifier["module.conv1.weight"].flip(1))
    assert torch.equal(converted["fc.bias"], classifier["module.fc.bias"])


def test_errors(dap_in1k_r50, tmp_path):
    with pytest.raises(ValueError, match="not a DAP / maskrcnn-benchmark checkpoint"):
        checkpoint.convert_maskrcnn_benchmark({"T_backbone.fpn_lateral2.weight": torch.ones(1)})
    with pytest.raises(ValueError, match=r"not maskrcnn-benchmark Faster R-CNN FPN names.*roi_heads\.mask"):
        source = {key[len("module."):]: value for key, value in dap_in1k_r50.items()}
        checkpoint.convert_maskrcnn_benchmark({**source, "roi_heads.mask.predictor.weight": torch.ones(1)})
    with pytest.raises(ValueError, match=r"does not load.*shapes differ.*box_predictor"):
        run_cli(tmp_path, {"model": dap_in1k_r50}, "--config", "dap/finetune_voc07_faster_rcnn_R50_FPN.py")


def test_dap_split_becomes_our_k_shot_split(tmp_path):
    base = "synthetic_shapes_train"
    records = DatasetCatalog.get(base)[:3]
    annotations = [{"id": i, "image_id": record["image_id"], "category_id": annotation["category_id"] + 1,
                    "bbox": annotation["bbox"]} for record in records for i, annotation in enumerate(record["annotations"])]
    authors_split = {"images": [{"id": record["image_id"], "file_name": record["file_name"]} for record in records],
                     "annotations": annotations,
                     "categories": [{"id": i + 1, "name": f"class{i}"} for i in range(8)]}
    with open(tmp_path / "coco_5shot_split0.json", "w") as f:
        json.dump(authors_split, f)
    split_dir = tmp_path / "dap_splits"
    checkpoint.main(["--from", "dap-split", "--input", str(tmp_path / "coco_5shot_split0.json"),
                     "--output", str(split_dir), "--base", base, "--k", "5", "--seed", "7"])
    name = register_k_shot_dataset(base, 5, 7, str(split_dir))
    subset = DatasetCatalog.get(name)
    assert [record["image_id"] for record in subset] == [record["image_id"] for record in records]
    assert [len(record["annotations"]) for record in subset] == [len(record["annotations"]) for record in records]

    voc = {"images": [{"id": 1, "file_name": "VOC2007/JPEGImages/000005.jpg"}, {"id": 2, "file_name": "2008_000002.jpg"}]}
    with open(tmp_path / "voc.json", "w") as f:
        json.dump(voc, f)
    path = checkpoint.convert_dap_split(str(tmp_path / "voc.json"), str(split_dir), "voc_0712_trainval", 10, 0)
    with open(path) as f:
        assert json.load(f)["image_ids"] == ["000005", "2008_000002"]  # detectron2's VOC image ids
