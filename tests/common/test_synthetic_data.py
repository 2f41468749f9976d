"""Synthetic shapes generator: determinism, COCO/VOC/folder layouts readable by detectron2,
atomic and locked generation, spec mismatch, overlap control and small objects."""

import dataclasses
import json
import multiprocessing
import os

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils

from detectron2.data.datasets import load_coco_json
from detectron2.data.datasets.pascal_voc import load_voc_instances
from detectron2.evaluation.pascal_voc_evaluation import parse_rec
from detectron2.structures import BoxMode

from projects.common.data import synthetic
from projects.common.data.synthetic import (
    GENERATOR_VERSION,
    SpecMismatchError,
    SyntheticSpec,
    coco_json_path,
    ensure_generated,
    mask_to_polygons,
    render_detection_image,
    synthetic_dataset_dir,
)

SMALL_SPEC = SyntheticSpec(
    num_train_images=10,
    num_val_images=4,
    image_height=96,
    image_width=128,
    object_size_range=(10, 60),
    instances_per_image_range=(2, 5),
    classification_image_size=32,
    classification_train_per_class=2,
    classification_val_per_class=1,
    seed=3,
)
TINY_SPEC = dataclasses.replace(
    SMALL_SPEC, num_train_images=2, num_val_images=1, classification_train_per_class=1
)


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    return ensure_generated(SMALL_SPEC, synthetic_dataset_dir(str(tmp_path_factory.mktemp("root")), "shapes"))


def read_tree(root):
    """{relative path: bytes} of every file below root."""
    files = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            with open(path, "rb") as f:
                files[os.path.relpath(path, root)] = f.read()
    return files


def decode_polygons(segmentation, height, width):
    rles = mask_utils.frPyObjects(segmentation, height, width)
    return mask_utils.decode(mask_utils.merge(rles)).astype(bool)


def test_same_spec_gives_identical_files(dataset_dir, tmp_path):
    again = ensure_generated(SMALL_SPEC, str(tmp_path / "again"))
    first, second = read_tree(dataset_dir), read_tree(again)
    assert sorted(first) == sorted(second)
    assert first == second  # JSON, XML and JPEG bytes alike
    other_seed = render_detection_image(dataclasses.replace(SMALL_SPEC, seed=4), "train", 0)
    assert not np.array_equal(other_seed.image, render_detection_image(SMALL_SPEC, "train", 0).image)


def test_layout_and_version_stamp(dataset_dir):
    assert os.path.basename(dataset_dir) == f"shapes_v{GENERATOR_VERSION}"
    with open(os.path.join(dataset_dir, "VERSION.json")) as f:
        stamp = json.load(f)
    assert stamp["generator_version"] == GENERATOR_VERSION
    assert SyntheticSpec.from_dict(stamp["spec"]) == SMALL_SPEC
    with open(os.path.join(dataset_dir, "ImageSets", "Main", "val.txt")) as f:
        assert f.read().split() == [f"val_{i:06d}" for i in range(4)]
    assert len(os.listdir(os.path.join(dataset_dir, "JPEGImages"))) == 14
    assert len(os.listdir(os.path.join(dataset_dir, "Annotations"))) == 14


def test_coco_json_loads_with_detectron2_and_masks_decode(dataset_dir):
    json_file = coco_json_path(dataset_dir, "train")
    dataset_dicts = load_coco_json(json_file, os.path.join(dataset_dir, "JPEGImages"))
    assert [d["image_id"] for d in dataset_dicts] == list(range(1, 11))
    with open(json_file) as f:
        coco = json.load(f)
    assert all(0.0 <= image["occlusion_ratio"] for image in coco["images"])
    areas = {}  # per image, in annotation order: load_coco_json drops "area"
    for annotation in coco["annotations"]:
        areas.setdefault(annotation["image_id"], []).append(annotation["area"])
    for index, record in enumerate(dataset_dicts):
        image = cv2.imread(record["file_name"])
        assert image.shape == (96, 128, 3)
        rendered = render_detection_image(SMALL_SPEC, "train", index)
        assert len(record["annotations"]) == len(rendered.instances) >= 1
        assert areas[record["image_id"]] == [instance.visible_mask.sum() for instance in rendered.instances]
        for annotation, instance in zip(record["annotations"], rendered.instances):
            assert annotation["iscrowd"] == 0 and annotation["category_id"] == instance.class_index + 1
            x, y, w, h = annotation["bbox"]
            ys, xs = np.nonzero(instance.visible_mask)
            assert (x, y, x + w - 1, y + h - 1) == (xs.min(), ys.min(), xs.max(), ys.max())
            decoded = decode_polygons(annotation["segmentation"], 96, 128)
            iou = (decoded & instance.visible_mask).sum() / (decoded | instance.visible_mask).sum()
            assert iou > 0.98  # polygons rasterise back to the visible pixels


def test_polygons_keep_holes():
    yy, xx = np.mgrid[0:80, 0:80]
    distance = np.hypot(yy - 40, xx - 40)
    ring = (distance <= 30) & (distance >= 15)
    decoded = decode_polygons(mask_to_polygons(ring), 80, 80)
    assert not decoded[40, 40]  # the hole stays empty
    assert np.array_equal(decoded, ring)


def test_voc_layout_loads_with_the_coco_boxes(dataset_dir):
    class_names = list(SMALL_SPEC.class_names)
    for split in ("train", "val"):
        voc = {d["image_id"]: d for d in load_voc_instances(dataset_dir, split, class_names)}
        coco = load_coco_json(coco_json_path(dataset_dir, split), os.path.join(dataset_dir, "JPEGImages"))
        assert len(voc) == len(coco)
        for record in coco:
            file_id = os.path.splitext(os.path.basename(record["file_name"]))[0]
            voc_record = voc[file_id]
            assert voc_record["file_name"] == record["file_name"]
            coco_objects = [
                (a["category_id"] - 1, BoxMode.convert(a["bbox"], BoxMode.XYWH_ABS, BoxMode.XYXY_ABS))
                for a in record["annotations"]
            ]
            voc_objects = [(a["category_id"], a["bbox"]) for a in voc_record["annotations"]]
            assert voc_objects == coco_objects
    objects = parse_rec(os.path.join(dataset_dir, "Annotations", "val_000000.xml"))  # VOC evaluator's reader
    assert objects and all(o["difficult"] == 0 and o["name"] in class_names for o in objects)


def test_classification_split_layout(dataset_dir):
    for split, per_class in (("train", 2), ("val", 1)):
        split_dir = os.path.join(dataset_dir, "classification", split)
        assert sorted(os.listdir(split_dir)) == sorted(SMALL_SPEC.class_names)
        for name in SMALL_SPEC.class_names:
            files = sorted(os.listdir(os.path.join(split_dir, name)))
            assert files == [f"{name}_{i:05d}.jpg" for i in range(per_class)]
            assert cv2.imread(os.path.join(split_dir, name, files[0])).shape == (32, 32, 3)


def test_interrupted_generation_leaves_no_dataset(tmp_path, monkeypatch):
    def crash(*args):
        raise RuntimeError("simulated crash")

    dataset_dir = str(tmp_path / "shapes_v1")
    os.mkdir(dataset_dir + ".tmp-12345")  # left behind by a killed run
    monkeypatch.setattr(synthetic.writers, "_write_classification_split", crash)  # after the detection splits
    with pytest.raises(RuntimeError, match="simulated crash"):
        ensure_generated(TINY_SPEC, dataset_dir)
    assert os.listdir(tmp_path) == ["shapes_v1.lock"]  # no dataset, no temporary folder
    monkeypatch.undo()
    ensure_generated(TINY_SPEC, dataset_dir)
    assert sorted(os.listdir(tmp_path)) == ["shapes_v1", "shapes_v1.lock"]
    assert os.path.isfile(os.path.join(dataset_dir, "VERSION.json"))


def test_spec_mismatch_raises_and_overwrite_replaces(tmp_path):
    dataset_dir = ensure_generated(TINY_SPEC, str(tmp_path / "shapes_v1"))
    other_spec = dataclasses.replace(TINY_SPEC, seed=11)
    with pytest.raises(SpecMismatchError) as error:
        ensure_generated(other_spec, dataset_dir)
    message = str(error.value)
    assert dataset_dir in message and '"seed": {"on disk": 3, "requested": 11}' in message
    assert "--overwrite" in message
    ensure_generated(other_spec, dataset_dir, overwrite=True)
    with open(os.path.join(dataset_dir, "VERSION.json")) as f:
        assert json.load(f)["spec"]["seed"] == 11
    assert sorted(os.listdir(tmp_path)) == ["shapes_v1", "shapes_v1.lock"]


def _generate_in_child(dataset_dir, log_file):
    original = synthetic.cache.write_dataset

    def logged(*args):
        with open(log_file, "a") as f:
            f.write(f"{os.getpid()}\n")
        original(*args)

    synthetic.cache.write_dataset = logged
    ensure_generated(TINY_SPEC, dataset_dir)


def test_concurrent_processes_generate_once(tmp_path):
    dataset_dir, log_file = str(tmp_path / "shapes_v1"), str(tmp_path / "generations.log")
    context = multiprocessing.get_context("fork")
    processes = [context.Process(target=_generate_in_child, args=(dataset_dir, log_file)) for _ in range(2)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(60)
    assert [process.exitcode for process in processes] == [0, 0]
    with open(log_file) as f:
        assert len(f.read().split()) == 1
    assert os.path.isfile(os.path.join(dataset_dir, "VERSION.json"))


def mean_occlusion(spec, count=25):
    return np.mean([render_detection_image(spec, "train", i).occlusion_ratio for i in range(count)])


def test_overlap_control_changes_measured_occlusion():
    base = dataclasses.replace(SMALL_SPEC, instances_per_image_range=(4, 6))
    separate = dataclasses.replace(base, overlap_probability=0.0, max_occlusion=0.0)
    crowded = dataclasses.replace(base, overlap_probability=0.9, max_occlusion=0.7)
    assert mean_occlusion(separate) == 0.0
    assert mean_occlusion(crowded) > 0.15 > mean_occlusion(base) > 0.0
    for index in range(10):
        rendered = render_detection_image(crowded, "train", index)
        amodal = [instance.amodal_mask for instance in rendered.instances]
        overlap = sum((a & b).sum() for i, a in enumerate(amodal) for b in amodal[i + 1 :])
        assert rendered.occlusion_ratio == pytest.approx(overlap / sum(mask.sum() for mask in amodal))
        visible = np.sum([instance.visible_mask for instance in rendered.instances], axis=0)
        assert visible.max() == 1  # painter's order: each pixel belongs to at most one instance
        for instance in rendered.instances:
            covered = (instance.amodal_mask & ~instance.visible_mask).sum()
            assert covered <= crowded.max_occlusion * instance.amodal_mask.sum()
            assert instance.area >= crowded.min_visible_area


def test_small_objects_present(dataset_dir):
    with open(coco_json_path(dataset_dir, "train")) as f:
        annotations = json.load(f)["annotations"]
    longest_sides = [max(a["bbox"][2:]) for a in annotations]
    assert any(side < 32 for side in longest_sides) and any(side >= 32 for side in longest_sides)
    assert any(a["area"] < 32 * 32 for a in annotations)  # COCO's "small"


@pytest.mark.parametrize(
    "overrides, fragment",
    [
        ({"class_names": ("circle", "blob")}, "blob"),
        ({"object_size_range": (10, 200)}, "object_size_range"),
        ({"max_occlusion": 1.5}, "max_occlusion"),
        ({"instances_per_image_range": (3, 2)}, "instances_per_image_range"),
    ],
)
def test_invalid_spec_is_rejected(overrides, fragment):
    with pytest.raises(ValueError, match=fragment):
        dataclasses.replace(SMALL_SPEC, **overrides)


def test_spec_dict_round_trip():
    assert SyntheticSpec.from_dict(json.loads(json.dumps(SMALL_SPEC.to_dict()))) == SMALL_SPEC
    with pytest.raises(ValueError, match="num_images"):
        SyntheticSpec.from_dict({"num_images": 3})
