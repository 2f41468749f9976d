"""Dataset registration (synthetic presets, ImageNet folders) and the availability checks' errors."""

import json
import os

import cv2
import numpy as np
import pytest

from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data.datasets import register_coco_instances, register_pascal_voc

from projects.common.data import (
    SHAPE_CLASSES,
    SyntheticSpec,
    check_dataset_available,
    dataset_metadata,
    dataset_thing_classes,
    datasets_root,
    get_classification_dataset_dicts,
    get_detection_dataset_dicts,
    register_dataset_union,
    register_imagenet_folder,
    register_synthetic_dataset,
    synthetic_dataset_dir,
)

TINY_SPEC = SyntheticSpec(
    num_train_images=4,
    num_val_images=2,
    image_height=64,
    image_width=80,
    object_size_range=(8, 40),
    class_names=("circle", "ring", "star"),
    classification_image_size=24,
    classification_train_per_class=2,
    classification_val_per_class=1,
    seed=5,
)


@pytest.fixture
def prefix(unique_dataset_name):
    return unique_dataset_name


def write_image(path, height, width):
    ok, encoded = cv2.imencode(
        ".png" if path.endswith(".png") else ".jpg", np.full((height, width, 3), 90, np.uint8)
    )
    assert ok
    with open(path, "wb") as f:
        f.write(encoded.tobytes())


def test_import_registers_stable_names():
    registered = DatasetCatalog.list()
    for kind, evaluator_type in (("", "coco"), ("_voc", "pascal_voc"), ("_cls", "classification")):
        for split in ("train", "val"):
            name = f"synthetic_shapes{kind}_{split}"
            assert name in registered
            metadata = MetadataCatalog.get(name)
            assert metadata.evaluator_type == evaluator_type
            assert metadata.thing_classes == list(SHAPE_CLASSES)
    assert "synthetic_shapes_occluded_train" in registered
    expected_dir = synthetic_dataset_dir(datasets_root(), "synthetic_shapes")
    assert MetadataCatalog.get("synthetic_shapes_train").json_file == os.path.join(
        expected_dir, "annotations", "instances_train.json"
    )
    assert MetadataCatalog.get("synthetic_shapes_voc_val").dirname == expected_dir
    assert MetadataCatalog.get("synthetic_shapes_voc_val").year == 2007
    for split in ("train", "val"):
        assert MetadataCatalog.get(f"imagenet_{split}").image_root == os.path.join(
            datasets_root(), "imagenet", split
        )
    assert "coco_2017_train" in registered and "voc_2007_trainval" in registered  # detectron2's own


def test_synthetic_datasets_are_generated_on_first_use(tmp_path, prefix):
    names = register_synthetic_dataset(prefix, TINY_SPEC, root=str(tmp_path))
    assert names == [f"{prefix}{kind}_{split}" for kind in ("", "_voc", "_cls") for split in ("train", "val")]
    assert os.listdir(tmp_path) == []  # nothing generated yet

    coco = DatasetCatalog.get(f"{prefix}_train")
    assert len(coco) == 4 and os.path.isdir(synthetic_dataset_dir(str(tmp_path), prefix))
    assert all(0.0 <= record["occlusion_ratio"] for record in coco)
    for record in coco:
        assert record["annotations"] and all(
            0 <= a["category_id"] < 3 and a["segmentation"] for a in record["annotations"]
        )

    voc = DatasetCatalog.get(f"{prefix}_voc_val")
    assert [record["image_id"] for record in voc] == ["val_000000", "val_000001"]
    assert MetadataCatalog.get(f"{prefix}_voc_val").thing_classes == ["circle", "ring", "star"]

    classification = get_classification_dataset_dicts([f"{prefix}_cls_train", f"{prefix}_cls_val"])
    assert len(classification) == 3 * (2 + 1)
    assert set(classification[0]) == {"file_name", "image_id", "class_id", "height", "width", "annotations"}
    assert [record["class_id"] for record in classification[:6]] == [0, 0, 1, 1, 2, 2]
    for record in classification:  # the real boxes: the labelled shape, whole, plus visible distractors
        labelled = [a for a in record["annotations"] if a["category_id"] == record["class_id"]]
        assert len(labelled) == 1
        x, y, w, h = labelled[0]["bbox"]
        assert 0 <= x and 0 <= y and x + w <= 24 and y + h <= 24 and w * h > 0
    assert classification[2]["image_id"] == "ring/ring_00000"
    assert all(record["height"] == record["width"] == 24 for record in classification)


def test_get_detection_dataset_dicts_delegates_to_detectron2(tmp_path, prefix):
    register_synthetic_dataset(prefix, TINY_SPEC, root=str(tmp_path))
    dataset_dicts = get_detection_dataset_dicts([f"{prefix}_train", f"{prefix}_val"], filter_empty=False)
    assert [record["image_id"] for record in dataset_dicts] == [1, 2, 3, 4, 5, 6]


def test_check_dataset_available_generates_synthetic_data(tmp_path, prefix):
    register_synthetic_dataset(prefix, TINY_SPEC, root=str(tmp_path))
    check_dataset_available(f"{prefix}_val")
    assert os.path.isfile(MetadataCatalog.get(f"{prefix}_val").json_file)  # evaluators can read it now


def test_registering_a_prefix_twice(tmp_path, prefix):
    names = register_synthetic_dataset(prefix, TINY_SPEC, root=str(tmp_path))
    assert register_synthetic_dataset(prefix, TINY_SPEC, root=str(tmp_path)) == names
    with pytest.raises(ValueError, match=f"{prefix}.*another prefix"):
        register_synthetic_dataset(prefix, SyntheticSpec(seed=9), root=str(tmp_path))


def test_unknown_name_lists_close_matches_and_synthetic_names():
    with pytest.raises(KeyError) as error:
        check_dataset_available("synthetic_shapes_trian")
    message = str(error.value)
    assert "'synthetic_shapes_trian' is not registered" in message
    assert "Close matches: ['synthetic_shapes_train'" in message
    assert "synthetic_shapes_cls_val" in message
    with pytest.raises(KeyError, match="coco_2017_train"):
        get_detection_dataset_dicts("coco_2017_trian")


def test_missing_dataset_names_the_path(tmp_path, prefix):
    json_file = str(tmp_path / "annotations" / "instances.json")
    register_coco_instances(prefix, {}, json_file, str(tmp_path / "images"))
    with pytest.raises(FileNotFoundError) as error:
        get_detection_dataset_dicts(prefix)
    message = str(error.value)
    assert f"json_file {json_file!r}" in message and "DETECTRON2_DATASETS" in message
    assert "synthetic_shapes_train" in message

    voc_dir = str(tmp_path / "VOC2007")
    register_pascal_voc(f"voc_{prefix}", voc_dir, "test", 2007)
    with pytest.raises(FileNotFoundError, match=f"dirname '{voc_dir}'.*PASCAL VOC"):
        check_dataset_available(f"voc_{prefix}")

    imagenet_dir = str(tmp_path / "imagenet" / "train")
    register_imagenet_folder(f"imagenet_{prefix}", imagenet_dir)
    with pytest.raises(FileNotFoundError, match=f"image_root '{imagenet_dir}'.*ImageNet"):
        get_classification_dataset_dicts(f"imagenet_{prefix}")


def test_missing_builtin_coco_says_where_to_put_it():
    json_file = MetadataCatalog.get("coco_2017_val").json_file
    if os.path.exists(json_file):
        pytest.skip("COCO is installed here")
    with pytest.raises(FileNotFoundError) as error:
        check_dataset_available("coco_2017_val")
    message = str(error.value)
    assert json_file in message and "Download COCO" in message and "DETECTRON2_DATASETS" in message


def test_truncated_json_names_the_file(tmp_path, prefix):
    coco = {
        "images": [{"id": 1, "file_name": "a.jpg", "height": 8, "width": 8}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 4, 4], "area": 16, "iscrowd": 0}
        ],
        "categories": [{"id": 1, "name": "thing"}],
    }
    text = json.dumps(coco)
    json_file = tmp_path / "instances.json"
    json_file.write_text(text[: len(text) // 2])  # an interrupted download
    (tmp_path / "images").mkdir()
    register_coco_instances(prefix, {}, str(json_file), str(tmp_path / "images"))
    with pytest.raises(ValueError) as error:
        get_detection_dataset_dicts(prefix)
    assert f"{json_file} is not valid JSON" in str(error.value) and "truncated" in str(error.value)
    assert isinstance(error.value.__cause__, json.JSONDecodeError)


def test_metadata_of_a_coco_registration_has_its_class_names_before_loading(tmp_path, prefix):
    """register_coco_instances sets thing_classes only when the dataset is loaded: readers of the
    metadata (demo labels, evaluators) must get the names, in category-id order, not "0", "1"."""
    coco = {
        "images": [{"id": 1, "file_name": "a.jpg", "height": 8, "width": 8}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 7, "bbox": [0, 0, 4, 4], "area": 16, "iscrowd": 0}
        ],
        "categories": [{"id": 7, "name": "zebra"}, {"id": 2, "name": "person"}],
    }
    json_file = tmp_path / "instances.json"
    json_file.write_text(json.dumps(coco))
    (tmp_path / "images").mkdir()
    register_coco_instances(prefix, {}, str(json_file), str(tmp_path / "images"))
    assert MetadataCatalog.get(prefix).get("thing_classes") is None  # detectron2's behaviour
    assert dataset_metadata(prefix).thing_classes == ["person", "zebra"]
    assert dataset_thing_classes(prefix) == ["person", "zebra"]


def test_dataset_without_class_names_says_how_to_set_them(prefix):
    DatasetCatalog.register(prefix, lambda: [{"file_name": "x.jpg", "image_id": 0}])
    with pytest.raises(ValueError, match=rf"MetadataCatalog.get\('{prefix}'\).set\(thing_classes"):
        dataset_thing_classes(prefix)


def test_imagenet_folder_loader(tmp_path, prefix):
    root = tmp_path / "imagenet" / "train"
    (root / "n02_dog").mkdir(parents=True)
    (root / "n01_cat").mkdir()
    write_image(str(root / "n02_dog" / "dog_1.JPEG"), 30, 40)
    write_image(str(root / "n01_cat" / "cat_2.png"), 20, 10)
    write_image(str(root / "n01_cat" / "cat_1.jpg"), 16, 12)
    (root / "n01_cat" / "labels.txt").write_text("not an image")
    register_imagenet_folder(prefix, str(root))

    dataset_dicts = get_classification_dataset_dicts(prefix)
    assert [(r["image_id"], r["class_id"]) for r in dataset_dicts] == [
        ("n01_cat/cat_1", 0),
        ("n01_cat/cat_2", 0),
        ("n02_dog/dog_1", 1),
    ]
    assert "height" not in dataset_dicts[0]  # image sizes are read by the mapper, not the loader
    assert dataset_dicts[2]["file_name"] == str(root / "n02_dog" / "dog_1.JPEG")
    assert MetadataCatalog.get(prefix).thing_classes == ["n01_cat", "n02_dog"]
    assert MetadataCatalog.get(prefix).evaluator_type == "classification"


def test_classification_dicts_refuse_detection_datasets(tmp_path, prefix):
    register_synthetic_dataset(prefix, TINY_SPEC, root=str(tmp_path))
    with pytest.raises(ValueError, match=f"'{prefix}_train' is not a classification dataset"):
        get_classification_dataset_dicts(f"{prefix}_train")


def test_dataset_union_concatenates_and_keeps_metadata(tmp_path, prefix):
    register_synthetic_dataset(prefix, TINY_SPEC, root=str(tmp_path))
    union = register_dataset_union(f"{prefix}_trainval", [f"{prefix}_train", f"{prefix}_val"])
    assert register_dataset_union(union, [f"{prefix}_train", f"{prefix}_val"]) == union  # same union: no-op
    dicts = DatasetCatalog.get(union)
    assert len(dicts) == len(DatasetCatalog.get(f"{prefix}_train")) + len(DatasetCatalog.get(f"{prefix}_val"))
    assert MetadataCatalog.get(union).thing_classes == ["circle", "ring", "star"]
    assert MetadataCatalog.get(union).evaluator_type == "coco"
    with pytest.raises(ValueError, match="already the union"):
        register_dataset_union(union, [f"{prefix}_train"])
    assert "voc_0712_trainval" in DatasetCatalog.list()  # VOC07+12 trainval, for k-shot sampling
