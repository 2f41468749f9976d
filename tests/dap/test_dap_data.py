"""DAP fine-tuning inputs: pseudo-box dataset registration, k-shot subsets and their split files
(dap.datasets), and the detector -> fine-tuning weight transfer (dap.transfer)."""
import json
import logging
import os
from collections import Counter

import pytest
import torch

from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import LazyConfig, instantiate
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data import get_detection_dataset_dicts as detectron2_get_detection_dataset_dicts

from projects.common.data import get_detection_dataset_dicts  # also registers synthetic_shapes_train
from dap import transfer
from dap.datasets import register_k_shot_dataset, register_pseudo_box_dataset, sample_k_shot

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def name(unique_dataset_name):
    return unique_dataset_name


def write_coco_json(path, categories=((1, "dog"), (2, "cat")), image_count=3):
    """A tiny COCO JSON: odd image ids have one box of the first category, even ids one of each."""
    images = [{"id": i + 1, "file_name": f"img{i}.jpg", "height": 40, "width": 60} for i in range(image_count)]
    annotations = []
    for image in images:
        for category_id, _ in categories[: 1 if image["id"] % 2 else None]:
            annotations.append({"id": len(annotations) + 1, "image_id": image["id"], "category_id": category_id,
                                "bbox": [1, 2, 10, 20], "area": 200, "iscrowd": 0})
    content = {"images": images, "annotations": annotations,
               "categories": [{"id": category_id, "name": n} for category_id, n in categories]}
    with open(path, "w") as f:
        json.dump(content, f)
    return str(path)


# ---------------------------------------------------------------------------------------------
# Pseudo-box datasets


def test_pseudo_box_dataset_registers_and_loads(tmp_path, name):
    json_file = write_coco_json(tmp_path / "boxes.json", categories=((2, "cat"), (1, "dog")))
    register_pseudo_box_dataset(name, json_file, str(tmp_path / "images"))
    metadata = MetadataCatalog.get(name)
    assert metadata.thing_classes == ["dog", "cat"], "in category id order, read at registration"
    assert (metadata.json_file, metadata.image_root, metadata.evaluator_type) == (
        json_file, str(tmp_path / "images"), "coco")
    records = DatasetCatalog.get(name)
    assert [record["image_id"] for record in records] == [1, 2, 3]
    assert records[0]["file_name"] == str(tmp_path / "images" / "img0.jpg")
    assert [annotation["category_id"] for annotation in records[1]["annotations"]] == [1, 0]  # cat, dog

    register_pseudo_box_dataset(name, json_file, str(tmp_path / "images"))  # same arguments: no-op
    with pytest.raises(ValueError, match="already registered"):
        register_pseudo_box_dataset(name, json_file, str(tmp_path / "other_images"))
    with pytest.raises(ValueError, match="already taken"):
        register_pseudo_box_dataset("synthetic_shapes_train", json_file, str(tmp_path))


def test_missing_pseudo_box_json_fails_at_load_naming_the_command(tmp_path, name):
    json_file = str(tmp_path / "not_yet.json")
    register_pseudo_box_dataset(name, json_file, str(tmp_path))
    assert MetadataCatalog.get(name).get("thing_classes") is None
    with pytest.raises(FileNotFoundError, match=r"not_yet\.json.*python -m dap\.generate_pseudo_boxes"):
        DatasetCatalog.get(name)
    with pytest.raises(FileNotFoundError, match=r"not_yet\.json.*python -m dap\.generate_pseudo_boxes"):
        get_detection_dataset_dicts(name)  # what configs call: checks availability first
    write_coco_json(json_file)
    assert len(DatasetCatalog.get(name)) == 3
    assert MetadataCatalog.get(name).thing_classes == ["dog", "cat"]


def test_given_thing_classes_must_match_the_json(tmp_path, name):
    json_file = write_coco_json(tmp_path / "boxes.json")
    register_pseudo_box_dataset(name, json_file, str(tmp_path), thing_classes=["dog", "cat"])
    assert len(DatasetCatalog.get(name)) == 3
    register_pseudo_box_dataset(name + "_wrong", json_file, str(tmp_path), thing_classes=["cat", "dog"])
    assert MetadataCatalog.get(name + "_wrong").thing_classes == ["cat", "dog"]
    with pytest.raises(ValueError, match="thing_classes=None"):
        DatasetCatalog.get(name + "_wrong")


# ---------------------------------------------------------------------------------------------
# k-shot sampling


def make_dicts():
    """40 images: class 0..2 alone in images 0-29 (10 each), 6 images with classes 0+1 (30-35),
    and class 3 in only two images (36, 37, together with class 2); images 38, 39 are empty."""
    records = []
    for index in range(40):
        if index < 30:
            classes = [index % 3]
        elif index < 36:
            classes = [0, 1, 1]
        elif index < 38:
            classes = [2, 3]
        else:
            classes = []
        records.append({"image_id": 1000 + index, "file_name": f"{index}.jpg", "height": 10, "width": 10,
                        "annotations": [{"category_id": c, "bbox": [0, 0, 1, 1], "bbox_mode": 1} for c in classes]})
    return records


def images_per_class(records, image_ids):
    selected = set(image_ids)
    return Counter(c for r in records if r["image_id"] in selected for c in {a["category_id"] for a in r["annotations"]})


@pytest.mark.parametrize("k", [1, 5, 10, 20])
def test_k_shot_covers_every_class(k, caplog):
    records = make_dicts()
    available = images_per_class(records, [r["image_id"] for r in records])
    with caplog.at_level(logging.WARNING, logger="dap.datasets"):
        image_ids = sample_k_shot(records, k, seed=3)
    assert len(image_ids) == len(set(image_ids))
    counts = images_per_class(records, image_ids)
    for class_id, total in available.items():
        assert counts[class_id] >= min(k, total), (class_id, counts)
    assert len(image_ids) <= k * len(available), "each image is added for a class still short of k"
    assert ("class 3 is in only 2 images" in caplog.text) == (k > 2)
    assert not {1038, 1039} & set(image_ids), "images without annotations are never picked"


def test_k_shot_is_seeded():
    records = make_dicts()
    assert sample_k_shot(records, 5, seed=0) == sample_k_shot(records, 5, seed=0)
    assert len({tuple(sample_k_shot(records, 5, seed)) for seed in range(5)}) > 1


def test_k_shot_rejects_bad_input():
    with pytest.raises(ValueError, match="positive int"):
        sample_k_shot(make_dicts(), 0, seed=0)
    with pytest.raises(ValueError, match="positive int"):
        sample_k_shot(make_dicts(), True, seed=0)
    with pytest.raises(ValueError, match="non-negative"):
        sample_k_shot(make_dicts(), 5, seed=-1)
    with pytest.raises(ValueError, match="more than once"):
        sample_k_shot(make_dicts() + make_dicts()[:1], 5, seed=0)
    with pytest.raises(ValueError, match="none of the 2 images has annotations"):
        sample_k_shot(make_dicts()[38:], 5, seed=0)


# ---------------------------------------------------------------------------------------------
# k-shot datasets and split files


def register_base(name):
    DatasetCatalog.register(name, make_dicts)
    MetadataCatalog.get(name).set(thing_classes=["a", "b", "c", "d"], evaluator_type="coco",
                                  json_file="full_base.json", image_root="images")


def test_k_shot_dataset_saves_and_loads_its_split(tmp_path, name):
    register_base(name)
    k_shot_name = register_k_shot_dataset(name, 5, seed=1, split_dir=str(tmp_path / "splits"))
    assert k_shot_name == f"{name}_5shot_seed1"
    metadata = MetadataCatalog.get(k_shot_name)
    assert metadata.thing_classes == ["a", "b", "c", "d"] and metadata.evaluator_type == "coco"
    assert metadata.get("json_file") is None, "the base's annotations would make COCOEvaluator score the full set"

    records = DatasetCatalog.get(k_shot_name)
    with open(tmp_path / "splits" / f"{k_shot_name}.json") as f:
        split = json.load(f)
    assert (split["base"], split["k"], split["seed"]) == (name, 5, 1)
    assert split["image_ids"] == sample_k_shot(make_dicts(), 5, seed=1)
    assert sorted(record["image_id"] for record in records) == sorted(split["image_ids"])
    counts = images_per_class(records, split["image_ids"])
    assert split["images_per_class"] == {"a": counts[0], "b": counts[1], "c": counts[2], "d": counts[3]}
    base = {record["image_id"]: record for record in make_dicts()}
    for record in records:  # multi-class images keep every annotation
        assert record == base[record["image_id"]]
    assert any(len({a["category_id"] for a in record["annotations"]}) > 1 for record in records)

    assert register_k_shot_dataset(name, 5, seed=1, split_dir=str(tmp_path / "splits")) == k_shot_name
    with pytest.raises(ValueError, match="split_dir"):
        register_k_shot_dataset(name, 5, seed=1, split_dir=str(tmp_path / "elsewhere"))


def test_saved_split_is_reused_and_checked(tmp_path, name):
    register_base(name)
    split_file = tmp_path / f"{name}_10shot_seed0.json"
    hand_picked = [1000, 1031, 1037]
    split_file.write_text(json.dumps({"base": name, "k": 10, "seed": 0, "image_ids": hand_picked, "images_per_class": {}}))
    k_shot_name = register_k_shot_dataset(name, 10, seed=0, split_dir=str(tmp_path))
    assert [record["image_id"] for record in DatasetCatalog.get(k_shot_name)] == hand_picked

    split_file.write_text(json.dumps({"base": name, "k": 10, "seed": 0, "image_ids": [1000, 5]}))
    with pytest.raises(ValueError, match="does not have.*delete the file"):
        DatasetCatalog.get(k_shot_name)

    mismatched = register_k_shot_dataset(name, 20, seed=0, split_dir=str(tmp_path))
    (tmp_path / f"{mismatched}.json").write_text(json.dumps({"base": name, "k": 5, "seed": 0, "image_ids": [1000]}))
    with pytest.raises(ValueError, match="made for.*'k': 5.*delete it"):
        DatasetCatalog.get(mismatched)


def test_k_shot_registration_errors(tmp_path):
    with pytest.raises(KeyError, match="not registered"):
        register_k_shot_dataset("test_dap_no_such_base", 5, seed=0, split_dir=str(tmp_path))
    with pytest.raises(ValueError, match="positive int"):
        register_k_shot_dataset("synthetic_shapes_train", -5, seed=0, split_dir=str(tmp_path))


def test_synthetic_5_shot_loads_through_detectron2(tmp_path):
    k_shot_name = register_k_shot_dataset("synthetic_shapes_train", 5, seed=2024, split_dir=str(tmp_path))
    records = detectron2_get_detection_dataset_dicts([k_shot_name])
    thing_classes = MetadataCatalog.get(k_shot_name).thing_classes
    assert thing_classes == MetadataCatalog.get("synthetic_shapes_train").thing_classes and len(thing_classes) == 8
    counts = images_per_class(records, [record["image_id"] for record in records])
    assert all(counts[class_id] >= 5 for class_id in range(8)), counts
    assert len(records) <= 40
    with open(tmp_path / f"{k_shot_name}.json") as f:
        assert json.load(f)["images_per_class"] == {thing_classes[c]: counts[c] for c in range(8)}


# ---------------------------------------------------------------------------------------------
# Weight transfer


@pytest.mark.parametrize(
    "config, num_classes_key, expected_dropped",
    [
        ("faster_rcnn_fpn_cpu.py", "roi_heads.num_classes",
         {f"roi_heads.box_predictor.{layer}.{p}" for layer in ("cls_score", "bbox_pred") for p in ("weight", "bias")}),
        ("retinanet_cpu.py", "num_classes", {"head.cls_score.weight", "head.cls_score.bias"}),
    ],
)
def test_transfer_keeps_all_but_the_class_dependent_layers(tmp_path, caplog, config, num_classes_key, expected_dropped):
    cfg = LazyConfig.load(os.path.join(REPO, "configs/common/models", config))
    LazyConfig.apply_overrides(cfg, [f"model.{num_classes_key}=8"])
    torch.manual_seed(0)
    pretrained = instantiate(cfg.model)
    with torch.no_grad():  # every tensor away from any fresh initialisation (BN stats included)
        for tensor in pretrained.state_dict().values():
            if tensor.is_floating_point():
                tensor.add_(torch.rand_like(tensor) + 0.1)
    optimizer = torch.optim.SGD(pretrained.parameters(), lr=0.1)
    DetectionCheckpointer(pretrained, str(tmp_path), optimizer=optimizer).save("model_final", iteration=99)

    init_file = str(tmp_path / "init.pth")
    with caplog.at_level(logging.INFO, logger="dap.transfer"):
        transfer.main(["--input", str(tmp_path / "model_final.pth"), "--output", init_file])
    saved = torch.load(init_file, weights_only=True)
    assert set(saved) == {"model"}, "no iteration/optimizer/scheduler: fine-tuning starts fresh"
    source = pretrained.state_dict()
    assert set(source) - set(saved["model"]) == expected_dropped
    assert all(key in caplog.text for key in expected_dropped)

    torch.manual_seed(1)
    fresh = instantiate(cfg.model)
    fresh_init = {key: value.clone() for key, value in fresh.state_dict().items()}
    DetectionCheckpointer(fresh).load(init_file)
    for key, value in fresh.state_dict().items():
        assert torch.equal(value, fresh_init[key] if key in expected_dropped else source[key]), key


def test_transfer_finds_mask_and_cascade_predictors():
    mask_rcnn = instantiate(LazyConfig.load(os.path.join(REPO, "configs/common/models/mask_rcnn_fpn_cpu.py")).model)
    kept, dropped = transfer.detector_init_state_dict(mask_rcnn.state_dict())
    assert {"roi_heads.mask_head.predictor.weight", "roi_heads.mask_head.predictor.bias"} <= set(dropped)
    assert len(dropped) == 6 and "roi_heads.mask_head.mask_fcn1.weight" in kept
    # the names of detectron2's CascadeROIHeads (a ModuleList of one predictor per stage)
    cascade = {f"roi_heads.box_predictor.{stage}.{layer}.{p}": torch.ones(1)
               for stage in range(3) for layer in ("cls_score", "bbox_pred") for p in ("weight", "bias")}
    cascade["roi_heads.box_head.0.fc1.weight"] = torch.ones(1)
    kept, dropped = transfer.detector_init_state_dict(cascade)
    assert list(kept) == ["roi_heads.box_head.0.fc1.weight"] and len(dropped) == 12


def test_transfer_rejects_a_classifier():
    with pytest.raises(ValueError, match="Faster/Mask/Cascade R-CNN or RetinaNet checkpoint"):
        transfer.detector_init_state_dict({"backbone.stem.conv1.weight": torch.ones(1), "fc.weight": torch.ones(1)})
