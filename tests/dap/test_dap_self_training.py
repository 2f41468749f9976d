"""dap.self_training: the pseudo-label selection rule, flip test-time augmentation for
GeneralizedRCNN (detectron2's GeneralizedRCNNWithTTA) and RetinaNet (our merge), and the COCO
JSON of pseudo-labels written by the function and the command line, read back by detectron2."""
import json
import os
import stat

import pytest
import torch
from torch import nn

import detectron2.data.transforms as T
from detectron2.config import LazyConfig, instantiate
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data.datasets import load_coco_json
from detectron2.structures import Boxes, BoxMode, Instances

from dap.self_training import (
    FlipTTADetector,
    main,
    merge_augmented_detections,
    pseudo_label_dataset,
    resize_from_test_mapper,
    select_pseudo_labels,
)
from projects.common.data import DetectionDatasetMapper
from projects.common import engine

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SMOKE = os.path.join(REPO, "configs/smoke/faster_rcnn_R18_FPN_synthetic.py")
TINY_DATASET = "dap_self_training_test_shapes_val_5"
NUM_CLASSES = 8


def detections(boxes, scores, classes, image_size=(100, 100)):
    return Instances(
        image_size,
        pred_boxes=Boxes(torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)),
        scores=torch.tensor(scores, dtype=torch.float32),
        pred_classes=torch.tensor(classes, dtype=torch.int64),
    )


def random_detector(config, num_classes=NUM_CLASSES, **model_overrides):
    """A CPU-sized detector of configs/common/models with random (seeded) weights."""
    cfg = LazyConfig.load(os.path.join(REPO, "configs/common/models", config))
    if "roi_heads" in cfg.model:
        cfg.model.roi_heads.num_classes = num_classes
    else:
        cfg.model.num_classes = num_classes
    cfg.model.update(model_overrides)
    torch.manual_seed(0)
    return instantiate(cfg.model)


@pytest.fixture(scope="module")
def faster_rcnn():
    """Random Faster R-CNN whose class logits are scaled down: its scores spread over ~0.3-0.9
    (instead of saturating at 1.0), so some images have detections >= 0.6 and some have none."""
    model = random_detector("faster_rcnn_fpn_cpu.py")
    model.roi_heads.box_predictor.cls_score.weight.data.mul_(0.1)
    return model


@pytest.fixture(scope="module")
def tiny_dataset(dataset_subset):
    """The first 5 images of synthetic_shapes_val (their ground truth must be ignored)."""
    return DatasetCatalog.get(dataset_subset("synthetic_shapes_val", TINY_DATASET, count=5))


def load_image(record, augmentations=()):
    return DetectionDatasetMapper(is_train=False, augmentations=list(augmentations), image_format="BGR")(record)


def test_selection_keeps_confident_detections_or_else_the_best_one():
    confident = detections([[i, i, i + 10, i + 10] for i in range(4)], [0.3, 0.65, 0.6, 0.59], [0, 1, 2, 3])
    kept = select_pseudo_labels(confident, score_threshold=0.6)
    assert kept.scores.tolist() == pytest.approx([0.65, 0.6])
    assert kept.pred_classes.tolist() == [1, 2]
    assert kept.pred_boxes.tensor[:, 0].tolist() == [1, 2]

    unsure = detections([[0, 0, 5, 5], [1, 1, 9, 9], [2, 2, 7, 7]], [0.2, 0.5, 0.1], [4, 5, 6])
    kept = select_pseudo_labels(unsure)  # default threshold 0.6: only the image's best remains
    assert kept.scores.tolist() == [0.5] and kept.pred_classes.tolist() == [5]
    assert kept.pred_boxes.tensor.tolist() == [[1, 1, 9, 9]]

    assert len(select_pseudo_labels(detections([], [], []))) == 0


def test_merge_unflips_boxes_and_suppresses_duplicates_per_class():
    original_view = detections([[71, 0, 90, 20], [71, 0, 90, 20], [0, 0, 10, 10]], [0.8, 0.7, 0.3], [0, 1, 2])
    flipped_view = detections([[10, 0, 30, 20], [50, 50, 60, 60]], [0.9, 0.4], [0, 0])
    merged = merge_augmented_detections(
        [original_view, flipped_view], [T.NoOpTransform(), T.HFlipTransform(width=100)],
        image_size=(100, 100), nms_threshold=0.5, max_detections=3,
    )
    # the flipped view's [10, 30] is [70, 90] in the image and suppresses the class-0 duplicate
    # of the original view; the class-1 box at the same place stays; only the best 3 are kept
    assert merged.scores.tolist() == pytest.approx([0.9, 0.7, 0.4])
    assert merged.pred_classes.tolist() == [0, 1, 0]
    assert merged.pred_boxes.tensor.tolist() == [[70, 0, 90, 20], [71, 0, 90, 20], [40, 50, 50, 60]]
    assert merged.image_size == (100, 100)

    nothing = merge_augmented_detections(
        [detections([], [], [])] * 2, [T.NoOpTransform(), T.HFlipTransform(width=100)], (100, 100), 0.5, 10
    )
    assert len(nothing) == 0


def assert_inside(instances, height, width):
    boxes = instances.pred_boxes.tensor
    assert len(boxes) > 0
    assert (boxes[:, 0] >= 0).all() and (boxes[:, 1] >= 0).all()
    assert (boxes[:, 2] <= width).all() and (boxes[:, 3] <= height).all()
    assert (boxes[:, 2] >= boxes[:, 0]).all() and (boxes[:, 3] >= boxes[:, 1]).all()


def test_flip_tta_of_faster_rcnn_goes_through_generalized_rcnn_with_tta(faster_rcnn, tiny_dataset):
    record = tiny_dataset[0]
    image = load_image(record)["image"]
    height, width = image.shape[1:]
    resize = T.ResizeShortestEdge(short_edge_length=192, max_size=480)  # not the image's size

    without_flip = FlipTTADetector(faster_rcnn, 192, 480, flip=False)(image)
    faster_rcnn.eval()
    with torch.no_grad():  # the model's own prediction at that size, mapped to the image
        plain = faster_rcnn([load_image(record, [resize])])[0]["instances"]
    assert len(without_flip) == len(plain) > 0
    assert torch.allclose(without_flip.pred_boxes.tensor, plain.pred_boxes.tensor, atol=1e-3)
    assert torch.equal(without_flip.pred_classes, plain.pred_classes)

    with_flip = FlipTTADetector(faster_rcnn, 192, 480, flip=True)(image)
    assert with_flip.image_size == (height, width)
    assert_inside(with_flip, height, width)
    assert len(with_flip) <= faster_rcnn.roi_heads.box_predictor.test_topk_per_image
    assert (with_flip.scores[:-1] >= with_flip.scores[1:]).all()
    assert not torch.equal(with_flip.scores, without_flip.scores)  # the mirror adds detections


def test_flip_tta_of_retinanet_merges_the_views_itself(tiny_dataset):
    retinanet = random_detector("retinanet_cpu.py", test_score_thresh=0.0)
    record = tiny_dataset[1]
    image = load_image(record)["image"]
    height, width = image.shape[1:]

    without_flip = FlipTTADetector(retinanet, 192, 480, flip=False)(image)
    retinanet.eval()
    with torch.no_grad():
        plain = retinanet([load_image(record, [T.ResizeShortestEdge(192, 480)])])[0]["instances"]
    # the merge re-applies the model's NMS to its own (clipped) output: it can only remove boxes
    assert 0 < len(without_flip) <= len(plain)
    differences = (without_flip.pred_boxes.tensor[:, None] - plain.pred_boxes.tensor[None]).abs().amax(dim=2)
    assert (differences.min(dim=1).values < 1e-3).all()  # every merged box is one of the model's

    with_flip = FlipTTADetector(retinanet, 192, 480, flip=True)(image)
    assert with_flip.image_size == (height, width)
    assert_inside(with_flip, height, width)
    assert len(with_flip) <= retinanet.max_detections_per_image
    assert (with_flip.scores[:-1] >= with_flip.scores[1:]).all()


def test_flip_tta_rejects_what_it_cannot_run(faster_rcnn):
    with pytest.raises(TypeError, match="flip TTA supports GeneralizedRCNN"):
        FlipTTADetector(nn.Linear(2, 2), 192, 480)
    with pytest.raises(ValueError, match="test_short_edge must be a positive int"):
        FlipTTADetector(faster_rcnn, 0, 480)
    with pytest.raises(ValueError, match=r"\(3, H, W\) image tensor"):
        FlipTTADetector(faster_rcnn, 192, 480)(torch.zeros(64, 64, 3, dtype=torch.uint8))


def read_back(json_file, name):
    """The pseudo-labels as detectron2 loads a COCO JSON (registered under ``name``)."""
    return load_coco_json(json_file, "", dataset_name=name, extra_annotation_keys=["score"])


def test_pseudo_label_dataset_writes_a_coco_json_detectron2_reads(faster_rcnn, tiny_dataset, tmp_path):
    output = str(tmp_path / "pseudo" / "labels.json")
    stats = pseudo_label_dataset(faster_rcnn, TINY_DATASET, output, 256, 480, num_workers=0)
    assert os.listdir(tmp_path / "pseudo") == ["labels.json"]  # no temporary file left behind
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(output).st_mode) == 0o666 & ~umask  # not the temporary file's 0600
    records = read_back(output, "dap_self_training_test_read_back")
    assert MetadataCatalog.get("dap_self_training_test_read_back").thing_classes == list(
        MetadataCatalog.get(TINY_DATASET).thing_classes
    )
    assert [r["file_name"] for r in records] == [r["file_name"] for r in tiny_dataset]
    assert [(r["height"], r["width"]) for r in records] == [(256, 256)] * 5

    detector = FlipTTADetector(faster_rcnn, 256, 480)
    predictions = [detector(load_image(record)["image"]) for record in tiny_dataset]
    confident_counts = [int((p.scores >= 0.6).sum()) for p in predictions]
    assert 0 in confident_counts and max(confident_counts) > 1  # both branches of the rule occur
    for record, prediction, confident in zip(records, predictions, confident_counts):
        kept = prediction[: max(confident, 1)]  # detections come sorted by score
        annotations = record["annotations"]
        assert [a["score"] for a in annotations] == pytest.approx(kept.scores.tolist())
        assert [a["category_id"] for a in annotations] == kept.pred_classes.tolist()  # contiguous once read
        assert all(a["bbox_mode"] == BoxMode.XYWH_ABS for a in annotations)
        expected_boxes = BoxMode.convert(kept.pred_boxes.tensor, BoxMode.XYXY_ABS, BoxMode.XYWH_ABS)
        assert torch.allclose(torch.tensor([a["bbox"] for a in annotations]), expected_boxes, atol=1e-4)
    assert stats == {
        "images": 5,
        "boxes": sum(max(c, 1) for c in confident_counts),
        "boxes_per_image": sum(max(c, 1) for c in confident_counts) / 5,
        "images_without_boxes": 0,
    }
    with open(output) as f:
        coco = json.load(f)
    assert [c["id"] for c in coco["categories"]] == list(range(1, NUM_CLASSES + 1))
    first = coco["annotations"][0]
    assert first["category_id"] == int(predictions[0].pred_classes[0]) + 1 and first["iscrowd"] == 0
    assert first["area"] == pytest.approx(first["bbox"][2] * first["bbox"][3])
    assert [image["source_image_id"] for image in coco["images"]] == [r["image_id"] for r in tiny_dataset]

    with pytest.raises(FileExistsError, match="--overwrite"):
        pseudo_label_dataset(faster_rcnn, TINY_DATASET, output, 256, 480)
    stats = pseudo_label_dataset(faster_rcnn, TINY_DATASET, output, 256, 480, score_threshold=0.0,
                                 num_workers=0, overwrite=True)
    assert stats["boxes"] == sum(len(p) for p in predictions)  # threshold 0 keeps every detection


def test_pseudo_label_dataset_checks_its_inputs(faster_rcnn, tiny_dataset, tmp_path):
    output = str(tmp_path / "labels.json")
    with pytest.raises(ValueError, match="score_threshold must be within"):
        pseudo_label_dataset(faster_rcnn, TINY_DATASET, output, 256, 480, score_threshold=60)
    with pytest.raises(KeyError, match="not registered"):
        pseudo_label_dataset(faster_rcnn, "no_such_dataset", output, 256, 480)
    three_classes = random_detector("faster_rcnn_fpn_cpu.py", num_classes=3)
    with pytest.raises(ValueError, match="predicts 3 classes .* 8 thing_classes"):
        pseudo_label_dataset(three_classes, TINY_DATASET, output, 256, 480)
    assert not os.path.exists(output)


def test_command_line_matches_the_function(faster_rcnn, tiny_dataset, tmp_path, capsys):
    weights = tmp_path / "random_init.pth"
    torch.save({"model": faster_rcnn.state_dict()}, weights)
    output = str(tmp_path / "cli.json")
    stats = main(["--config-file", SMOKE, "--weights", str(weights), "--dataset", TINY_DATASET,
                  "--output", output, "--num-workers", "0",
                  "dataloader.test.mapper.augmentations.0.short_edge_length=160"])
    assert f"Pseudo-labels written to {output}: " in capsys.readouterr().out
    # the test size is the (overridden) one of the config's test mapper: 160, max 480
    expected = pseudo_label_dataset(faster_rcnn, TINY_DATASET, str(tmp_path / "function.json"), 160, 480,
                                    num_workers=0)
    assert stats == expected and stats["images"] == 5 and stats["images_without_boxes"] == 0
    from_cli, from_function = read_back(output, "dap_self_training_test_cli"), read_back(
        str(tmp_path / "function.json"), "dap_self_training_test_function")
    for cli_record, function_record in zip(from_cli, from_function):
        assert torch.allclose(torch.tensor([a["bbox"] for a in cli_record["annotations"]]),
                              torch.tensor([a["bbox"] for a in function_record["annotations"]]), atol=1e-3)

    with pytest.raises(FileNotFoundError, match="--weights"):
        main(["--config-file", SMOKE, "--weights", str(tmp_path / "missing.pth"), "--dataset", TINY_DATASET,
              "--output", output])


def test_test_size_comes_from_the_config_test_mapper():
    assert resize_from_test_mapper(engine.load_config(SMOKE)) == (256, 480)
    several_sizes = engine.load_config(SMOKE, ["dataloader.test.mapper.augmentations.0.short_edge_length=[224,256]"])
    with pytest.raises(ValueError, match="several short edges"):
        resize_from_test_mapper(several_sizes)
