"""Any backbone of the collection under any method (README.md, "Combinations"): every cell of
``projects.combinations.matrix`` that exists builds at 1/8 of its backbone's width and trains one
CPU step on 64 px synthetic images (DAP: classifier step, CAM pseudo boxes of that classifier,
CLS initialisation and a pre-training step of the detector on those boxes); every cell that
cannot exist raises the error that names the backbone and what the method needs; the README
shows the matrix as ``python -m projects.combinations.matrix`` prints it."""
import json
import os

import numpy as np
import pytest
import torch

import detectron2.data.transforms as T
from detectron2.config import instantiate
from detectron2.data import DatasetCatalog
from detectron2.structures import Boxes, Instances
from detectron2.utils.events import EventStorage

from configs.common import combinations
from dap.cam import ClassActivationMapper
from projects.combinations import BACKBONES, NotApplicableError, build_named_backbone, feature_pyramid
from projects.combinations import pseudo_box_quality, report
from projects.combinations.matrix import METHODS, cell, markdown_table
from projects.common.checkpoint.target import classifier_to_detection_state_dict
from projects.common.data import DetectionDatasetMapper
from projects.common.engine import load_config

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NUM_CLASSES = 8
SIZE = 64
CELLS = [(backbone, method) for backbone in BACKBONES for method in METHODS]
TRAINABLE = [c for c in CELLS if cell(*c)[0] or c[1] == "dap"]  # DAP: steps 1-2 exist for every backbone
NOT_APPLICABLE = [c for c in CELLS if c not in TRAINABLE]


def tiny(backbone):
    """Build options of ``backbone`` at 1/8 of its width, trainable at SIZE (and SIZE / 2 for MSAD's copies)."""
    options = {"width": BACKBONES[backbone].default_width / 8}
    if backbone.startswith("san_"):
        options["resolutions"] = (SIZE, SIZE // 2)
    return options


def model_config(method, backbone):
    options = tiny(backbone)
    if method == "msad_student":
        return combinations.msad_student(combinations.msad_teacher(backbone, NUM_CLASSES, **options))
    build = combinations.classifier if method in ("classification", "dap") else getattr(combinations, method)
    return build(backbone, NUM_CLASSES, **options)


@pytest.fixture(scope="module")
def detection_batch():
    """Two synthetic detection images at short side 64, with boxes, classes and masks."""
    mapper = DetectionDatasetMapper(is_train=True, augmentations=[T.ResizeShortestEdge(SIZE, 96)],
                                    image_format="BGR", use_instance_mask=True)
    return [mapper(record) for record in DatasetCatalog.get("synthetic_shapes_train")[:2]]


@pytest.fixture(scope="module")
def classification_batch():
    """Two synthetic classification images of different classes at 64 x 64, with their class_id."""
    records = DatasetCatalog.get("synthetic_shapes_cls_train")
    chosen = [records[0], next(r for r in records if r["class_id"] != records[0]["class_id"])]
    mapper = DetectionDatasetMapper(is_train=False, augmentations=[T.Resize((SIZE, SIZE))], image_format="BGR")
    return [{"image": mapper(dict(r))["image"], "class_id": r["class_id"]} for r in chosen]


def with_proposals(batch):
    """The batch with WSOD's precomputed proposals: each real box, shifted copies and the image."""
    inputs = []
    for x in batch:
        boxes = x["instances"].gt_boxes.tensor
        height, width = x["image"].shape[-2:]
        candidates = torch.cat([boxes, boxes + 3, boxes - 3, torch.tensor([[0.0, 0.0, width, height]])])
        candidates = Boxes(candidates)
        candidates.clip((height, width))
        proposals = Instances((height, width), proposal_boxes=candidates,
                              objectness_logits=torch.zeros(len(candidates)))
        inputs.append({**x, "proposals": proposals})
    return inputs


def train_step(model, batch):
    """One training step's losses (checked finite) and backward pass (checked to reach the backbone)."""
    model.train()
    with EventStorage():
        losses = model(batch)
    assert losses and all(torch.isfinite(value) for value in losses.values()), losses
    sum(losses.values()).backward()
    backbone = model.detector.backbone if hasattr(model, "detector") else model.backbone
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in backbone.parameters())
    return losses


@pytest.mark.parametrize("backbone, method", TRAINABLE)
def test_every_cell_trains_a_step(backbone, method, detection_batch, classification_batch):
    torch.manual_seed(0)
    model = instantiate(model_config(method, backbone))
    if method == "classification":
        train_step(model, classification_batch)
    elif method == "dap":
        check_dap_chain(backbone, model, classification_batch)
    elif method == "wsod":
        train_step(model, with_proposals(detection_batch))
    else:
        losses = train_step(model, detection_batch)
        if method == "mask_rcnn":
            assert "loss_mask" in losses
        if method == "msad_student":
            assert "loss_distill" in losses


def check_dap_chain(backbone, classifier, classification_batch):
    """DAP steps 1-2 (a classifier step, then the CAM pseudo boxes of its images) and, where the
    backbone has a pyramid, steps 3-4's start: the classifier's backbone initialises the
    detector's bottom-up (CLS) and the detector trains a step on the pseudo boxes."""
    train_step(classifier, classification_batch)
    classifier.eval()
    cams = ClassActivationMapper(classifier, scales=(SIZE,), resolution="image")(classification_batch)
    boxes = [cam.pseudo_boxes() for cam in cams]
    assert all(cam.cam.shape == (SIZE, SIZE) and np.isfinite(cam.cam).all() for cam in cams)
    assert all(b.shape[1:] == (4,) for b in boxes)
    if not cell(backbone, "dap")[0]:
        with pytest.raises(NotApplicableError, match=BACKBONES[backbone].title):
            combinations.faster_rcnn(backbone, NUM_CLASSES, **tiny(backbone))
        return
    detector = instantiate(combinations.faster_rcnn(backbone, NUM_CLASSES, **tiny(backbone)))
    cls_init = classifier_to_detection_state_dict(classifier.state_dict(), fpn=True)
    incompatible = detector.load_state_dict(cls_init, strict=False)
    assert not incompatible.unexpected_keys
    assert not [key for key in incompatible.missing_keys if key.startswith("backbone.bottom_up.")]
    pseudo_box_batch = []
    for x, image_boxes in zip(classification_batch, boxes):
        if not len(image_boxes):  # a one-step classifier may find nothing: the whole image then
            image_boxes = np.array([[0.0, 0.0, SIZE, SIZE]])
        instances = Instances((SIZE, SIZE), gt_boxes=Boxes(torch.as_tensor(image_boxes, dtype=torch.float32)),
                              gt_classes=torch.full((len(image_boxes),), x["class_id"], dtype=torch.int64))
        pseudo_box_batch.append({"image": x["image"], "instances": instances})
    train_step(detector, pseudo_box_batch)


@pytest.mark.parametrize("backbone, method", NOT_APPLICABLE)
def test_every_missing_cell_says_why(backbone, method):
    entry = BACKBONES[backbone]
    with pytest.raises(NotApplicableError) as error:
        instantiate(model_config(method, backbone))
    message = str(error.value)
    assert entry.title in message
    assert any(lack.reason in message for lack in entry.missing_forms.values()), message


def test_a_backbone_swapped_by_override_is_checked_when_built():
    """The backbone is one field: renaming it in a built config (as ``model.backbone.bottom_up.name=``
    on the command line) builds the other backbone, or fails there with the reason."""
    model = combinations.faster_rcnn("resnet18", NUM_CLASSES, width=0.125)
    model.backbone.bottom_up.name = "tied_resnest50_s"
    assert type(instantiate(model).backbone.bottom_up).__name__ == "ResNet"
    model.backbone.bottom_up.name = "resnet18_ws"
    with pytest.raises(NotApplicableError, match="ResNet18-WS .* no 'pyramid' form"):
        instantiate(model)


def test_an_fpn_refuses_a_bottom_up_without_the_pyramid_strides():
    bottom_up = build_named_backbone("resnet18_ws", "feature_map", width=0.125)
    with pytest.raises(NotApplicableError, match=r"res2, res3, res4, res5 at strides \(4, 8, 16, 32\).*ResNetWS"):
        feature_pyramid(bottom_up, out_channels=32)


def test_unknown_backbones_and_forms_are_refused_with_the_choices():
    with pytest.raises(KeyError, match="tied_resnet50"):
        build_named_backbone("tied_resnet_50")
    with pytest.raises(ValueError, match="pyramid"):
        build_named_backbone("resnet18", form="fpn")


def test_the_readme_shows_the_matrix():
    with open(os.path.join(REPO, "README.md")) as f:
        assert markdown_table() in f.read()


# the full-scale versions of the cross-paper runs: config -> (the model's backbone class, what holds it)
FULL_SCALE_RUN_CONFIGS = {
    "dap/imagenet_classifier_tied_resnet50.py": ("ResNet", "backbone"),
    "dap/pretrain_faster_rcnn_tied_resnet50_FPN_in1m.py": ("ResNet", "backbone.bottom_up"),
    "dap/finetune_voc0712_kshot_faster_rcnn_tied_resnet50_FPN.py": ("ResNet", "backbone.bottom_up"),
    "dap/imagenet_classifier_resnet50_ws.py": ("ResNetWS", "backbone"),
    "dap/imagenet_classifier_san_resnet50.py": ("SANResNet", "backbone"),
    "msad/coco_fcos_tied_resnet50_teacher_1x.py": ("ResNet", "detector.backbone.bottom_up"),
    "msad/coco_fcos_tied_resnet50_student_1x.py": ("ResNet", "detector.backbone.bottom_up"),
}


@pytest.mark.parametrize("config", sorted(FULL_SCALE_RUN_CONFIGS))
def test_the_full_scale_runs_build_their_backbone(config):
    backbone_class, path = FULL_SCALE_RUN_CONFIGS[config]
    model = instantiate(load_config(config).model)
    backbone = model
    for name in path.split("."):
        backbone = getattr(backbone, name)
    assert type(backbone).__name__ == backbone_class
    if "tied" in config:
        assert any(type(m).__name__ == "TiedBottleneckBlock" for m in backbone.modules())


def test_the_run_reports_pair_seeds_and_average_splits(tmp_path):
    """Runs 2 and 4: each classifier's mean best IoU minus the plain ResNet-18's of the same seed;
    run 1: the k-shot AP of every finished split, by initialisation and k."""
    rows = [{"classifier": name, "seed": seed, "scales": pseudo_box_quality._scales_name(scales), "top1": 99.0,
             "mean_best_iou": 0.5 + 0.1 * (name == "ResNet18-WS") + 0.01 * seed, "recall@0.5": 90.0,
             "boxes_per_image": 3.0}
            for seed in (0, 1) for name in pseudo_box_quality.CLASSIFIERS for scales in pseudo_box_quality.SCALE_SETS]
    table = pseudo_box_quality._report(rows, [0, 1])
    assert "| ResNet18-WS " in table and "+0.100 ± 0.000 vs ResNet-18" in table and "0.505 ± 0.007" in table
    assert "+0.000 ± 0.000 vs ResNet-50" in table

    for init, k, seed, ap in (("cls", 5, 0, 10.0), ("cls", 5, 1, 14.0), ("dap", 5, 0, 20.0), ("dap", 20, 0, 30.0)):
        run_dir = tmp_path / f"{init}_{k}shot_seed{seed}"
        run_dir.mkdir()
        (run_dir / "metrics.json").write_text(json.dumps({"iteration": 199, "bbox/AP": ap}) + "\n")
        (run_dir / "model_final.pth").write_bytes(b"")
    (tmp_path / "dap_20shot_seed1").mkdir()  # unfinished: left out
    assert report.kshot_results(str(tmp_path)) == {("cls", 5): [10.0, 14.0], ("dap", 5): [20.0], ("dap", 20): [30.0]}
    assert report._mean_std([10.0, 14.0]) == "12.0 ± 2.8 (n=2)"
