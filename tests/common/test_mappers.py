"""Mappers (output, read errors naming the file), RandomResizedCrop / CenterCrop, loaders."""

import copy

import numpy as np
import pytest
import torch

from detectron2.data import DatasetCatalog
from detectron2.data import transforms as T
from detectron2.structures import BoxMode, PolygonMasks

from projects.common.data import (
    CenterCrop,
    ClassificationDatasetMapper,
    DetectionDatasetMapper,
    ImageReadError,
    RandomResizedCrop,
    SyntheticSpec,
    build_classification_test_loader,
    build_classification_train_loader,
    register_synthetic_dataset,
)

TINY_SPEC = SyntheticSpec(
    num_train_images=3,
    num_val_images=1,
    image_height=64,
    image_width=96,
    object_size_range=(10, 40),
    instances_per_image_range=(2, 4),
    classification_image_size=40,
    classification_train_per_class=2,
    classification_val_per_class=1,
    seed=7,
)


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    """(detection dicts, classification dicts) of a tiny synthetic dataset."""
    register_synthetic_dataset("test_mappers_shapes", TINY_SPEC, root=str(tmp_path_factory.mktemp("root")))
    return DatasetCatalog.get("test_mappers_shapes_train"), DatasetCatalog.get(
        "test_mappers_shapes_cls_train"
    )


def detection_mapper():
    return DetectionDatasetMapper(
        is_train=True,
        augmentations=[T.Resize((32, 48))],
        image_format="BGR",
        use_instance_mask=True,
    )


def classification_mapper(augmentations=()):
    return ClassificationDatasetMapper(is_train=True, augmentations=list(augmentations), image_format="BGR")


def test_detection_mapper_matches_detectron2(datasets):
    record = datasets[0][0]
    mapped = detection_mapper()(copy.deepcopy(record))
    assert mapped["image"].dtype == torch.uint8 and mapped["image"].shape == (3, 32, 48)
    instances = mapped["instances"]
    boxes = np.array(
        [BoxMode.convert(a["bbox"], a["bbox_mode"], BoxMode.XYXY_ABS) for a in record["annotations"]]
    )
    np.testing.assert_allclose(instances.gt_boxes.tensor.numpy(), boxes / 2, rtol=1e-6)
    assert instances.gt_classes.tolist() == [a["category_id"] for a in record["annotations"]]
    assert isinstance(instances.gt_masks, PolygonMasks) and len(instances.gt_masks) == len(boxes)
    assert mapped["occlusion_ratio"] == record["occlusion_ratio"]  # extra keys reach the model/evaluator


def write_bad_images(tmp_path, good_file):
    """{kind: path} of a file that is not an image and of a truncated JPEG."""
    garbage = tmp_path / "garbage.jpg"
    garbage.write_bytes(b"this is not a JPEG")
    truncated = tmp_path / "truncated.jpg"
    with open(good_file, "rb") as f:
        truncated.write_bytes(f.read()[:400])
    return {"garbage": str(garbage), "truncated": str(truncated)}


@pytest.mark.parametrize("which", ["detection", "classification"])
def test_missing_image_names_the_file(datasets, tmp_path, which):
    record = dict(datasets[0][0] if which == "detection" else datasets[1][0])
    record["file_name"] = str(tmp_path / "missing.jpg")
    mapper = detection_mapper() if which == "detection" else classification_mapper()
    with pytest.raises(
        FileNotFoundError, match=f"Image file '{record['file_name']}' does not exist"
    ) as error:
        mapper(record)
    assert isinstance(error.value.__cause__, FileNotFoundError)


@pytest.mark.parametrize("which", ["detection", "classification"])
@pytest.mark.parametrize("kind", ["garbage", "truncated"])
def test_corrupt_image_names_the_file(datasets, tmp_path, which, kind):
    record = dict(datasets[0][0] if which == "detection" else datasets[1][0])
    record["file_name"] = write_bad_images(tmp_path, record["file_name"])[kind]
    mapper = detection_mapper() if which == "detection" else classification_mapper()
    with pytest.raises(ImageReadError, match=f"Cannot read image '{record['file_name']}'") as error:
        mapper(record)
    assert isinstance(error.value.__cause__, OSError)


def test_classification_mapper_output(datasets):
    record = datasets[1][3]
    original = dict(record)
    mapped = classification_mapper([RandomResizedCrop(24), T.RandomFlip()])(record)
    assert record == original  # the dataset dict is not modified
    assert mapped["image"].dtype == torch.uint8 and mapped["image"].shape == (3, 24, 24)
    assert mapped["class_id"] == record["class_id"] == 1
    assert {key: mapped[key] for key in original} == original  # file_name, image_id, height, width, class_id

    evaluated = classification_mapper([T.ResizeShortestEdge(40, max_size=1000), CenterCrop(32)])(record)
    full = classification_mapper()(record)["image"]  # 40x40 already
    assert torch.equal(evaluated["image"], full[:, 4:36, 4:36])


def test_center_crop_rejects_small_images():
    with pytest.raises(ValueError, match="ResizeShortestEdge"):
        CenterCrop(50).get_transform(np.zeros((40, 60, 3), np.uint8))


def test_random_resized_crop_moves_boxes_with_the_image():
    np.random.seed(0)
    image = np.zeros((80, 120, 3), np.uint8)
    box = np.array([[30.0, 20.0, 70.0, 50.0]])  # x0, y0, x1, y1 of a white rectangle
    image[20:50, 30:70] = 255
    checked = 0
    for _ in range(30):
        aug_input = T.AugInput(image, boxes=box.copy())
        transforms = RandomResizedCrop(64, scale=(0.3, 1.0))(aug_input)
        assert aug_input.image.shape == (64, 64, 3)
        crop, resize = transforms.transforms
        assert isinstance(crop, T.CropTransform) and isinstance(resize, T.ResizeTransform)
        assert (resize.h, resize.w, resize.new_h, resize.new_w) == (crop.h, crop.w, 64, 64)
        scale = np.array([64 / crop.w, 64 / crop.h] * 2)
        expected = (box - [crop.x0, crop.y0, crop.x0, crop.y0]) * scale
        np.testing.assert_allclose(aug_input.boxes, expected, rtol=1e-5)
        if crop.x0 <= 30 and crop.y0 <= 20 and crop.x0 + crop.w >= 70 and crop.y0 + crop.h >= 50:
            ys, xs = np.nonzero(aug_input.image[:, :, 0] > 127)  # the rectangle where it was resized to
            np.testing.assert_allclose(
                [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], expected[0], atol=1.5
            )
            checked += 1
    assert checked >= 3


def test_random_resized_crop_respects_scale_and_ratio():
    np.random.seed(1)
    augmentation = RandomResizedCrop(32, scale=(0.2, 0.6), ratio=(0.5, 2.0))
    for _ in range(200):
        x0, y0, width, height = augmentation._sample_crop(100, 150)
        assert 0 <= x0 <= 150 - width and 0 <= y0 <= 100 - height
        assert 0.2 - 0.02 <= width * height / (100 * 150) <= 0.6 + 0.02
        assert 0.5 - 0.05 <= width / height <= 2.0 + 0.05


def test_random_resized_crop_falls_back_to_a_centred_crop():
    np.random.seed(2)
    # a square crop of >= 90% of a 10x100 image cannot exist: largest centred square instead
    augmentation = RandomResizedCrop(16, scale=(0.9, 1.0), ratio=(1.0, 1.0))
    assert augmentation._sample_crop(10, 100) == (45, 0, 10, 10)


@pytest.mark.parametrize(
    "arguments", [{"size": 0}, {"size": 8, "scale": (0.5, 0.1)}, {"size": 8, "ratio": (0, 1)}]
)
def test_random_resized_crop_rejects_bad_arguments(arguments):
    with pytest.raises(ValueError, match="RandomResizedCrop"):
        RandomResizedCrop(**arguments)


def test_classification_loaders(datasets):
    dataset_dicts = datasets[1][:5]
    mapper = classification_mapper([RandomResizedCrop(16)])
    batch = next(iter(build_classification_train_loader(dataset_dicts, mapper=mapper, total_batch_size=4)))
    assert len(batch) == 4 and all(item["image"].shape == (3, 16, 16) for item in batch)

    batches = list(build_classification_test_loader(dataset_dicts, mapper=mapper, batch_size=3))
    assert [len(b) for b in batches] == [3, 2]
    assert [item["image_id"] for b in batches for item in b] == [d["image_id"] for d in dataset_dicts]
