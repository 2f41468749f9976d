"""dap.pseudo_boxes and its command line: whole-dataset generation, resume after a kill, sharding."""
import json
import os
import subprocess
import sys

import pytest
import torch

from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import instantiate
from detectron2.data import DatasetCatalog, MetadataCatalog

import projects.common.data  # noqa: F401  (registers the synthetic datasets)
from dap import cam as cam_module
from dap import register_pseudo_box_dataset
from dap.pseudo_boxes import LabelledImageReader, PseudoBoxOptions, generate_pseudo_boxes, load_classifier
from projects.common.data import ImageReadError
from projects.common.engine import load_config
from projects.common.io import file_sha256
from projects.common.weights import PartialWeightsError

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(REPO, "configs/dap/synthetic_classifier_cpu.py")
SUBSET = "dap_test_cls_subset"
OPTIONS = PseudoBoxOptions(scales=(64, 96), resolution="image")


def _register_subset():
    """Two images per class of the synthetic classification val split (16 images)."""
    if SUBSET in DatasetCatalog.list():
        return
    base = "synthetic_shapes_cls_val"
    DatasetCatalog.register(
        SUBSET, lambda: [d for d in DatasetCatalog.get(base) if d["image_id"].endswith(("_00000", "_00001"))]
    )
    metadata = MetadataCatalog.get(base)
    MetadataCatalog.get(SUBSET).set(thing_classes=metadata.thing_classes, image_root=metadata.image_root)


@pytest.fixture(scope="module")
def classifier():
    _register_subset()
    torch.manual_seed(0)
    return instantiate(load_config(CONFIG).model).eval()


def _read(path):
    with open(path) as f:
        return json.load(f)


def test_writes_a_coco_json_with_statistics_and_cleans_up(classifier, tmp_path):
    output = str(tmp_path / "boxes.json")
    statistics = generate_pseudo_boxes(classifier, SUBSET, output, OPTIONS, batch_size=5, num_workers=0)
    coco = _read(output)
    assert len(coco["images"]) == 16
    assert [c["name"] for c in coco["categories"]] == MetadataCatalog.get(SUBSET).thing_classes
    class_of_image = {image["id"]: image["class_id"] for image in coco["images"]}
    assert all(a["category_id"] == class_of_image[a["image_id"]] + 1 for a in coco["annotations"])
    assert all(0 <= a["bbox"][0] and a["bbox"][0] + a["bbox"][2] <= 128.01 for a in coco["annotations"])
    assert statistics["pseudo_boxes"]["images"] == 16
    assert statistics["pseudo_boxes"]["boxes"] == len(coco["annotations"])
    assert set(statistics["quality_vs_ground_truth"]) == {"mean_best_iou", "recall@0.5", "precision@0.5"}
    assert _read(str(tmp_path / "boxes.stats.json"))["pseudo_boxes"] == statistics["pseudo_boxes"]
    assert not os.path.exists(output + ".parts")
    # the JSON is a detection dataset usable by any config
    register_pseudo_box_dataset("dap_test_generated", output, MetadataCatalog.get(SUBSET).image_root)
    dicts = DatasetCatalog.get("dap_test_generated")
    assert len(dicts) == 16 and all(os.path.isfile(d["file_name"]) for d in dicts)
    with pytest.raises(FileExistsError, match="--overwrite"):
        generate_pseudo_boxes(classifier, SUBSET, output, OPTIONS)


def test_resume_after_a_kill_loses_and_duplicates_nothing(classifier, tmp_path, monkeypatch):
    reference = str(tmp_path / "reference.json")
    generate_pseudo_boxes(classifier, SUBSET, reference, OPTIONS, batch_size=4, num_workers=0)

    output = str(tmp_path / "boxes.json")
    original_call, calls = cam_module.ClassActivationMapper.__call__, []

    def killed_on_third_batch(self, batched_inputs):
        calls.append(len(batched_inputs))
        if len(calls) == 3:
            raise KeyboardInterrupt
        return original_call(self, batched_inputs)

    monkeypatch.setattr(cam_module.ClassActivationMapper, "__call__", killed_on_third_batch)
    with pytest.raises(KeyboardInterrupt):
        generate_pseudo_boxes(classifier, SUBSET, output, OPTIONS, batch_size=4, num_workers=0)
    part = os.path.join(output + ".parts", "rank0.jsonl")
    with open(part) as f:
        assert len(f.readlines()) == 8  # two finished batches
    with open(part, "a") as f:
        f.write('{"index": 9, "height"')  # a line cut by the kill
    assert not os.path.exists(output)

    calls.clear()
    generate_pseudo_boxes(classifier, SUBSET, output, OPTIONS, batch_size=4, num_workers=0)
    assert sum(calls) == 8  # only the 8 unfinished images were processed again
    resumed, expected = _read(output), _read(reference)
    assert resumed["images"] == expected["images"]
    assert resumed["annotations"] == expected["annotations"]


def test_resume_with_other_settings_is_refused(classifier, tmp_path, monkeypatch):
    output = str(tmp_path / "boxes.json")
    monkeypatch.setattr(cam_module.ClassActivationMapper, "__call__", lambda self, inputs: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        generate_pseudo_boxes(classifier, SUBSET, output, OPTIONS, num_workers=0)
    with pytest.raises(ValueError, match="other settings"):
        generate_pseudo_boxes(classifier, SUBSET, output, PseudoBoxOptions(scales=(64,)), num_workers=0)


def test_weights_replaced_between_a_kill_and_the_resume_are_refused(classifier, tmp_path, monkeypatch):
    """The resume check compares the weights' content, not their path: boxes of two models are
    never mixed in one output."""
    weights = tmp_path / "classifier.pth"
    weights.write_bytes(b"the first model")
    first = {"weights": str(weights), "weights_sha256": file_sha256(str(weights))}
    output = str(tmp_path / "boxes.json")
    monkeypatch.setattr(cam_module.ClassActivationMapper, "__call__", lambda self, inputs: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        generate_pseudo_boxes(classifier, SUBSET, output, OPTIONS, num_workers=0, run_identity=first)
    monkeypatch.undo()
    weights.write_bytes(b"another model, same path")
    second = {"weights": str(weights), "weights_sha256": file_sha256(str(weights))}
    with pytest.raises(ValueError, match="other settings.*weights_sha256"):
        generate_pseudo_boxes(classifier, SUBSET, output, OPTIONS, num_workers=0, run_identity=second)


def test_weights_of_another_model_are_refused(tmp_path):
    torch.manual_seed(0)
    other = instantiate(load_config(CONFIG, ["model.num_classes=5"]).model)
    DetectionCheckpointer(other, save_dir=str(tmp_path)).save("five_classes")
    with pytest.raises(PartialWeightsError, match=r"five_classes.pth leaves 2 parameters .*fc.*allow-partial-weights"):
        load_classifier(CONFIG, str(tmp_path / "five_classes.pth"))
    assert load_classifier(CONFIG, str(tmp_path / "five_classes.pth"), allow_partial_weights=True) is not None


def test_datasets_without_labels_are_rejected(classifier, tmp_path):
    with pytest.raises(ValueError, match="classification dataset"):
        generate_pseudo_boxes(classifier, "synthetic_shapes_val", str(tmp_path / "x.json"), OPTIONS)


def test_classes_that_do_not_fit_the_classifier_are_refused_before_writing(tmp_path):
    torch.manual_seed(0)
    five_classes = instantiate(load_config(CONFIG, ["model.num_classes=5"]).model).eval()
    output = tmp_path / "out" / "boxes.json"
    with pytest.raises(ValueError, match=rf"{SUBSET} has 8 classes .* the classifier has 5: .*--weights"):
        generate_pseudo_boxes(five_classes, SUBSET, str(output), OPTIONS, num_workers=0)
    assert list(tmp_path.iterdir()) == []  # no output, no .parts folder


@pytest.mark.slow
def test_two_processes_share_the_work(tmp_path):
    """The CLI with --num-gpus 2 on CPU: two gloo processes, each a shard, one merged JSON."""
    torch.manual_seed(0)
    weights = str(tmp_path / "classifier.pth")
    DetectionCheckpointer(instantiate(load_config(CONFIG).model), save_dir=str(tmp_path)).save("classifier")
    output = str(tmp_path / "boxes.json")
    command = [
        sys.executable, "-m", "dap.generate_pseudo_boxes", "--config-file", CONFIG, "--weights", weights,
        "--dataset", "synthetic_shapes_cls_val", "--output", output, "--scales", "64", "--no-flip",
        "--resolution", "image", "--num-gpus", "2", "--num-workers", "0", "--batch-size", "32",
    ]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    coco = _read(output)
    assert sorted(image["id"] for image in coco["images"]) == list(range(1, 161))
    assert "boxes_per_image" in result.stdout + result.stderr
    settings = _read(str(tmp_path / "boxes.stats.json"))["settings"]
    assert settings["options"]["scales"] == [64]
    assert settings["run"]["weights_sha256"] == file_sha256(weights)


def test_a_corrupt_image_is_named(tmp_path):
    corrupt = tmp_path / "broken.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 not really a JPEG")
    reader = LabelledImageReader([{"file_name": str(corrupt), "class_id": 0}], [0], "BGR")
    with pytest.raises(ImageReadError, match=rf"Cannot read image '{corrupt}'.*corrupt"):
        reader[0]
