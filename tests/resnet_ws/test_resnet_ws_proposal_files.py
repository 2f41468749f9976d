"""Proposal files are checked when loaded: a box that would be trained on wrongly (negative width,
silently swapped by detectron2), or would crash training when its image comes up (NaN, nothing
overlapping the image), is an error naming the file, the image and the box."""
import pickle

import numpy as np
import pytest

from detectron2.data import DatasetCatalog

from projects.resnet_ws.data import get_weak_detection_dataset_dicts

BASE = "synthetic_shapes_voc_train"
SUBSET = "synthetic_shapes_voc_train_first3"


@pytest.fixture(scope="module")
def records(dataset_subset):
    return DatasetCatalog.get(dataset_subset(BASE, SUBSET, count=3))


def proposal_file(folder, records, broken_box=None, broken_image=1):
    """A detectron2 proposal pickle with 5 good boxes per image; ``broken_box`` replaces the boxes
    of one image."""
    boxes = [np.array([[10, 10, 60, 70]] * 5, dtype=np.float32) for _ in records]
    if broken_box is not None:
        boxes[broken_image] = np.array([broken_box], dtype=np.float32)
    path = str(folder / "proposals.pkl")
    with open(path, "wb") as f:
        pickle.dump({"ids": [r["image_id"] for r in records], "boxes": boxes,
                     "objectness_logits": [np.zeros(len(b), dtype=np.float32) for b in boxes]}, f)
    return path


def test_good_proposals_load(records, tmp_path):
    dicts = get_weak_detection_dataset_dicts(SUBSET, [proposal_file(tmp_path, records)])
    assert len(dicts) == 3 and all(len(d["proposal_boxes"]) == 5 for d in dicts)


@pytest.mark.parametrize("box, message", [
    ([50, 50, 20, 80], r"proposal \[50.0, 50.0, 20.0, 80.0\] of image .* has a negative width"),
    ([np.nan, 5, 20, 30], r"a proposal of image .* is not finite"),
    ([1000, 1000, 1200, 1100], r"none of the 1 proposals of image .* overlaps the \d+x\d+ image"),
])
def test_broken_proposals_are_refused_when_loaded(records, tmp_path, box, message):
    path = proposal_file(tmp_path, records, broken_box=box)
    with pytest.raises(ValueError, match=message) as error:
        get_weak_detection_dataset_dicts(SUBSET, [path])
    assert path in str(error.value) and str(records[1]["image_id"]) in str(error.value)
