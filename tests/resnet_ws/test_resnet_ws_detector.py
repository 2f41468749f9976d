"""ResNet-WS detector: WeaklySupervisedRCNN on a tiny FrozenBN ResNet with 2 images and random
proposals (losses, frozen backbone, labels only, unlabelled images, inference format, checkpoint
names), test-time augmentation (flip and scale consistency), the proposal data pipeline on the
embedded synthetic set, and CorLoc on hand-made predictions."""
import pickle

import numpy as np
import pytest
import torch

import detectron2.data.transforms as T
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import instantiate
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.modeling import META_ARCH_REGISTRY
from detectron2.modeling.backbone import BasicStem, ResNet
from detectron2.structures import BoxMode, Boxes, Instances
from detectron2.utils.events import EventStorage

from projects.common.modeling import scaled_resnet_stages
from projects.resnet_ws.data import (
    ProposalDatasetMapper,
    get_weak_detection_dataset_dicts,
    images_without_labels,
    weak_detection_dataloader,
)
from projects.resnet_ws.evaluation import CorLocEvaluator
from projects.resnet_ws.meta_arch import WeaklySupervisedRCNN, WeaklySupervisedRCNNWithTTA
from projects.resnet_ws.neck import RedundantAdaptationNeck

NUM_CLASSES = 3
HEIGHT, WIDTH = 64, 96


def tiny_backbone():
    """ResNet-18 at 1/8 width up to res3 (stride 8, 16 channels), FrozenBN: batch-independent."""
    stages = scaled_resnet_stages(depth=18, width=0.125, stem_channels=8, norm="FrozenBN")
    return ResNet(BasicStem(3, 8, norm="FrozenBN"), stages, out_features=["res3"])


def tiny_neck():
    return RedundantAdaptationNeck(16, pooled_size=7, hidden_dims=(32, 32), dropout=0.0)


def tiny_model(head_type="oicr", num_classes=NUM_CLASSES, **options):
    torch.manual_seed(0)
    return WeaklySupervisedRCNN(
        backbone=tiny_backbone(),
        in_feature="res3",
        neck=tiny_neck(),
        num_classes=num_classes,
        pixel_mean=[103.5, 116.3, 123.7],
        pixel_std=[57.4, 57.1, 58.4],
        head_type=head_type,
        **options,
    )


def random_boxes(count, height, width, generator, min_side=8.0):
    corner = torch.rand(count, 2, generator=generator) * torch.tensor([width - 2 * min_side, height - 2 * min_side])
    side = min_side + torch.rand(count, 2, generator=generator) * min_side
    return torch.cat([corner, corner + side], dim=1)


def make_input(seed, classes, output_scale=1, num_proposals=12):
    generator = torch.Generator().manual_seed(seed)
    image = torch.randint(0, 256, (3, HEIGHT, WIDTH), generator=generator, dtype=torch.uint8)
    proposals = Instances((HEIGHT, WIDTH))
    proposals.proposal_boxes = Boxes(random_boxes(num_proposals, HEIGHT, WIDTH, generator))
    proposals.objectness_logits = torch.rand(num_proposals, generator=generator)
    instances = Instances((HEIGHT, WIDTH))
    instances.gt_boxes = Boxes(random_boxes(len(classes), HEIGHT, WIDTH, generator))
    instances.gt_classes = torch.tensor(classes, dtype=torch.int64)
    return {
        "image": image,
        "proposals": proposals,
        "instances": instances,
        "height": HEIGHT * output_scale,
        "width": WIDTH * output_scale,
        "image_id": seed,
    }


def training_losses(model, inputs):
    model.train()
    with EventStorage() as storage:
        losses = model(inputs)
    return losses, storage


EXPECTED_LOSSES = {
    "wsddn": ["loss_wsddn"],
    "oicr": ["loss_refine_1", "loss_refine_2", "loss_refine_3", "loss_wsddn"],
    "oicr_reg": ["loss_box_reg", "loss_refine_1", "loss_refine_2", "loss_refine_3", "loss_refine_4", "loss_wsddn"],
}


@pytest.mark.parametrize("head_type", sorted(EXPECTED_LOSSES))
def test_losses_are_finite_and_train_every_part(head_type):
    assert META_ARCH_REGISTRY.get("WeaklySupervisedRCNN") is WeaklySupervisedRCNN
    model = tiny_model(head_type)
    losses, storage = training_losses(model, [make_input(1, [0, 2, 0]), make_input(2, [1])])
    assert sorted(losses) == EXPECTED_LOSSES[head_type]
    assert all(torch.isfinite(value) and value > 0 for value in losses.values())
    assert storage.latest()["weak_supervision/images_without_labels"][0] == 0
    sum(losses.values()).backward()
    for part in (model.backbone, model.neck, model.head):
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in part.parameters())
    assert torch.count_nonzero(model.neck.layers[0].weight.grad) > 0


def test_frozen_backbone_gets_no_grad():
    model = tiny_model("oicr")
    model.backbone.freeze(3)  # stem, res2, res3: the whole tiny backbone ("F5" for a full one)
    losses, _ = training_losses(model, [make_input(1, [0]), make_input(2, [1, 2])])
    sum(losses.values()).backward()
    assert all(p.grad is None for p in model.backbone.parameters())
    assert all(p.grad is not None for p in model.neck.parameters())
    assert all(p.grad is not None for p in model.head.parameters())


def test_only_image_level_labels_are_used():
    model = tiny_model("oicr_reg")
    inputs = [make_input(1, [0, 2, 0]), make_input(2, [1])]
    assert model.image_labels(inputs).tolist() == [[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]
    losses, _ = training_losses(model, inputs)
    for x in inputs:  # move every ground-truth box elsewhere: nothing may change
        x["instances"].gt_boxes = Boxes(x["instances"].gt_boxes.tensor.flip(1) * 0.3 + 5.0)
    corrupted, _ = training_losses(model, inputs)
    assert {k: v.item() for k, v in losses.items()} == {k: v.item() for k, v in corrupted.items()}


def test_images_without_labels_are_skipped_and_counted():
    model = tiny_model("oicr_reg")
    labelled = make_input(1, [0, 2])
    alone, _ = training_losses(model, [labelled])
    with_unlabelled, storage = training_losses(model, [labelled, make_input(2, [])])
    assert storage.latest()["weak_supervision/images_without_labels"][0] == 1
    for name, value in alone.items():  # the unlabelled image changes no loss
        assert with_unlabelled[name].item() == pytest.approx(value.item(), rel=1e-5, abs=1e-7)


def test_batch_without_labels_gives_zero_losses_with_grad():
    model = tiny_model("oicr")
    losses, storage = training_losses(model, [make_input(1, []), make_input(2, [])])
    assert storage.latest()["weak_supervision/images_without_labels"][0] == 2
    assert all(value.item() == 0.0 and value.requires_grad for value in losses.values())
    sum(losses.values()).backward()
    assert all(p.grad is not None and torch.count_nonzero(p.grad) == 0 for p in model.head.parameters())


def test_missing_inputs_raise_errors_that_name_the_fix():
    model = tiny_model("wsddn")
    without_proposals = make_input(1, [0])
    del without_proposals["proposals"]
    with pytest.raises(KeyError, match="proposal_files"):
        training_losses(model, [without_proposals])
    without_instances = make_input(1, [0])
    del without_instances["instances"]
    with pytest.raises(KeyError, match="is_train=True"):
        training_losses(model, [without_instances])
    with pytest.raises(ValueError, match="num_classes"):
        training_losses(model, [make_input(1, [NUM_CLASSES])])


@pytest.mark.parametrize("head_type, nms", [("wsddn", 0.5), ("oicr", 0.3), ("oicr_reg", 0.3)])
def test_inference_output_format(head_type, nms):
    model = tiny_model(head_type).eval()
    assert model.test_nms_thresh == nms
    inputs = [make_input(1, [0], output_scale=2), make_input(2, [1], output_scale=2)]
    with torch.no_grad():
        outputs = model(inputs)
        predictions = model.predict_proposals(inputs)
    for x, output, prediction in zip(inputs, outputs, predictions):
        instances = output["instances"]
        assert sorted(output) == ["instances"]
        assert instances.image_size == (2 * HEIGHT, 2 * WIDTH)  # the "height" x "width" output frame
        assert sorted(instances.get_fields()) == ["pred_boxes", "pred_classes", "scores"]
        assert 0 < len(instances) <= model.test_detections_per_image
        assert prediction.class_scores.shape == (12, NUM_CLASSES)
        assert prediction.predicted_boxes.shape == (12, 4 * NUM_CLASSES if head_type == "oicr_reg" else 4)
        # the best detection is the best (proposal, class) pair, boxes scaled x2 to the output frame
        best = int(prediction.class_scores.flatten().argmax())
        proposal, class_id = divmod(best, NUM_CLASSES)
        top = int(instances.scores.argmax())
        assert instances.scores[top] == prediction.class_scores.max()
        assert int(instances.pred_classes[top]) == class_id
        boxes = prediction.predicted_boxes[proposal].view(-1, 4)
        expected_box = boxes[class_id if len(boxes) > 1 else 0].clamp(min=0) * 2
        expected_box[0::2] = expected_box[0::2].clamp(max=2 * WIDTH)
        expected_box[1::2] = expected_box[1::2].clamp(max=2 * HEIGHT)
        assert torch.allclose(instances.pred_boxes.tensor[top], expected_box, atol=1e-4)
    assert tiny_model(head_type, test_nms_thresh=0.45).test_nms_thresh == 0.45


def test_classification_checkpoint_loads_backbone_and_neck(tmp_path):
    torch.manual_seed(123)
    backbone, neck, fc = tiny_backbone(), tiny_neck(), torch.nn.Linear(32, 10)
    for module in backbone.modules():  # FrozenBN buffers are constants at init: make them distinct
        if hasattr(module, "running_mean"):
            module.running_mean.uniform_()
    state = {f"backbone.{k}": v for k, v in backbone.state_dict().items()}
    state.update({f"neck.{k}": v for k, v in neck.state_dict().items()})
    state.update({f"fc.{k}": v for k, v in fc.state_dict().items()})
    path = str(tmp_path / "classifier.pth")
    torch.save({"model": state}, path)
    model = tiny_model("oicr")
    DetectionCheckpointer(model).load(path)  # fc.* is reported as unused, not an error
    for name, value in model.state_dict().items():
        if name.startswith(("backbone.", "neck.")):
            assert torch.equal(value, state[name]), name


def test_tta_single_view_equals_the_model():
    model = tiny_model("oicr_reg").eval()
    x = make_input(3, [0])
    tta = WeaklySupervisedRCNNWithTTA(model, min_sizes=(HEIGHT,), max_size=1000, flip=False)
    scores, boxes = tta.merged_proposal_predictions(x)
    with torch.no_grad():
        prediction = model.predict_proposals([x])[0]
        direct = model([x])[0]["instances"]
    assert torch.allclose(scores, prediction.class_scores, atol=1e-6)
    assert torch.allclose(boxes, prediction.predicted_boxes, atol=1e-3)
    merged = tta([x])[0]["instances"]
    assert torch.allclose(merged.scores, direct.scores, atol=1e-6)
    assert torch.allclose(merged.pred_boxes.tensor, direct.pred_boxes.tensor, atol=1e-3)


def mirrored(x):
    """The input flipped left-right, with its proposals mirrored."""
    flipped = dict(x, image=x["image"].flip(-1))
    boxes = x["proposals"].proposal_boxes.tensor
    proposals = Instances(x["proposals"].image_size)
    mirror = torch.stack([WIDTH - boxes[:, 2], boxes[:, 1], WIDTH - boxes[:, 0], boxes[:, 3]], dim=1)
    proposals.proposal_boxes = Boxes(mirror)
    proposals.objectness_logits = x["proposals"].objectness_logits
    flipped["proposals"] = proposals
    return flipped


def test_tta_flip_averages_mirrored_predictions_and_unflips_boxes():
    model = tiny_model("oicr_reg").eval()
    x = make_input(4, [1])
    tta = WeaklySupervisedRCNNWithTTA(model, min_sizes=(HEIGHT,), max_size=1000, flip=True)
    scores, boxes = tta.merged_proposal_predictions(x)
    with torch.no_grad():
        plain, flipped = model.predict_proposals([x])[0], model.predict_proposals([mirrored(x)])[0]
    assert torch.allclose(scores, (plain.class_scores + flipped.class_scores) / 2, atol=1e-6)
    flipped_boxes = flipped.predicted_boxes.view(-1, NUM_CLASSES, 4)
    unflipped = torch.stack(
        [WIDTH - flipped_boxes[..., 2], flipped_boxes[..., 1], WIDTH - flipped_boxes[..., 0], flipped_boxes[..., 3]], -1
    ).view(-1, 4 * NUM_CLASSES)
    assert torch.allclose(boxes, (plain.predicted_boxes + unflipped) / 2, atol=1e-3)
    assert not torch.allclose(plain.class_scores, flipped.class_scores)  # the views really differ


def test_tta_views_are_in_the_original_frame():
    # the mapped input is half the original size: a view at short edge 2 * HEIGHT sees the
    # proposals x2, and the averaged boxes (the proposals, for OICR) come back in the original frame
    model = tiny_model("oicr").eval()
    x = make_input(5, [2], output_scale=2)
    tta = WeaklySupervisedRCNNWithTTA(model, min_sizes=(HEIGHT, 2 * HEIGHT), max_size=1000, flip=True)
    scores, boxes = tta.merged_proposal_predictions(x)
    assert scores.shape == (12, NUM_CLASSES)
    assert torch.allclose(boxes, x["proposals"].proposal_boxes.tensor * 2, atol=1e-3)
    instances = tta([x])[0]["instances"]
    assert instances.image_size == (2 * HEIGHT, 2 * WIDTH) and len(instances) > 0


# ---------------------------------------------------------------------------------------------
# data


def test_images_without_labels_ignores_crowd_only_images():
    dicts = [
        {"image_id": 1, "annotations": [{"category_id": 0, "iscrowd": 0}]},
        {"image_id": 2, "annotations": []},
        {"image_id": 3, "annotations": [{"category_id": 1, "iscrowd": 1}]},
        {"file_name": "d.jpg"},
    ]
    assert images_without_labels(dicts) == [2, 3, "d.jpg"]


@pytest.fixture(scope="module")
def proposal_files(tmp_path_factory):
    """Random proposals for the synthetic train and val splits (40 per image, a third of them
    smaller than 20 px), with D1 key names ("indexes", "scores") that detectron2 renames."""
    folder = tmp_path_factory.mktemp("proposals")
    rng = np.random.default_rng(0)
    files = {}
    for name in ("synthetic_shapes_train", "synthetic_shapes_val"):
        ids, boxes, scores = [], [], []
        for record in DatasetCatalog.get(name):
            corners = rng.uniform(0, 150, size=(40, 2))
            sides = np.concatenate([rng.uniform(4, 18, size=(14, 2)), rng.uniform(20, 100, size=(26, 2))])
            ids.append(record["image_id"])
            boxes.append(np.concatenate([corners, corners + sides], axis=1).astype(np.float32))
            scores.append(rng.uniform(size=40).astype(np.float32))
        files[name] = str(folder / f"{name}.pkl")
        with open(files[name], "wb") as f:
            pickle.dump({"indexes": ids, "boxes": boxes, "scores": scores}, f)
    return files


def test_proposal_mapper_keeps_labels_and_top_k_large_proposals(proposal_files):
    dicts = get_weak_detection_dataset_dicts("synthetic_shapes_train", [proposal_files["synthetic_shapes_train"]])
    mapper = ProposalDatasetMapper(
        True,
        augmentations=[T.ResizeShortestEdge((128,), max_size=1000, sample_style="choice"), T.RandomFlip()],
        image_format="BGR",
        proposal_topk=10,
        proposal_min_size=20,
    )
    record = mapper(dicts[0])
    proposals = record["proposals"]
    sides = proposals.proposal_boxes.tensor[:, 2:] - proposals.proposal_boxes.tensor[:, :2]
    assert record["image"].shape[-2:] == (128, 128) and proposals.image_size == (128, 128)
    # 26 proposals of 20..100 px in the 256 px image are 10..50 px at 128 px; the top 10 of > 20 px remain
    original_sides = dicts[0]["proposal_boxes"][:, 2:] - dicts[0]["proposal_boxes"][:, :2]
    expected_kept = int((original_sides / 2 > 20).all(axis=1).sum())
    assert len(proposals) == min(10, expected_kept) and (sides > 20).all()
    assert (proposals.objectness_logits[:-1] >= proposals.objectness_logits[1:]).all()
    expected_classes = sorted(a["category_id"] for a in dicts[0]["annotations"])
    assert sorted(record["instances"].gt_classes.tolist()) == expected_classes
    with pytest.raises(KeyError, match="proposal_files"):
        mapper(DatasetCatalog.get("synthetic_shapes_train")[0])


def test_dataset_errors_name_the_fix(proposal_files, tmp_path):
    with pytest.raises(ValueError, match="one proposal file per dataset"):
        get_weak_detection_dataset_dicts(["synthetic_shapes_train", "synthetic_shapes_val"], ["a.pkl"])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        get_weak_detection_dataset_dicts("synthetic_shapes_train", [str(tmp_path / "missing.pkl")])
    with pytest.raises(KeyError, match="no entry in the proposal file"):
        get_weak_detection_dataset_dicts("synthetic_shapes_train", [proposal_files["synthetic_shapes_val"]])


def test_dataloader_recipe_trains_and_evaluates_a_tiny_model(proposal_files):
    dataloader = weak_detection_dataloader(
        "synthetic_shapes_train",
        [proposal_files["synthetic_shapes_train"]],
        "synthetic_shapes_val",
        [proposal_files["synthetic_shapes_val"]],
        proposal_topk=16,
        proposal_min_size=10,  # 26 of the 40 proposals stay >= 10 px at these scales
        train_short_edges=(224, 256),
        test_short_edge=224,
        total_batch_size=2,
        num_workers=0,
    )
    num_classes = len(MetadataCatalog.get("synthetic_shapes_train").thing_classes)
    model = tiny_model("oicr", num_classes=num_classes)
    batch = next(iter(instantiate(dataloader.train)))
    assert all(len(x["proposals"]) == 16 and len(x["instances"]) > 0 for x in batch)
    losses, _ = training_losses(model, batch)
    assert all(torch.isfinite(value) for value in losses.values())

    test_loader = instantiate(dataloader.test)
    evaluator = instantiate(dataloader.evaluator)
    evaluator.reset()
    model.eval()
    with torch.no_grad():
        for index, inputs in enumerate(test_loader):
            assert "instances" not in inputs[0] and len(inputs[0]["proposals"]) == 16
            evaluator.process(inputs, model(inputs))
            if index == 1:
                break
    results = evaluator.evaluate()
    assert {"voc", "corloc"} <= set(results)
    assert 0.0 <= results["corloc"]["CorLoc"] <= 100.0


# ---------------------------------------------------------------------------------------------
# CorLoc

CORLOC_DATASET = "resnet_ws_corloc_test"


def annotation(category_id, box, iscrowd=0):
    return {"category_id": category_id, "bbox": box, "bbox_mode": BoxMode.XYXY_ABS, "iscrowd": iscrowd}


@pytest.fixture(scope="module")
def corloc_dataset():
    records = [
        {"image_id": 1, "annotations": [annotation(0, [0, 0, 10, 10]), annotation(1, [20, 20, 40, 40])]},
        {"image_id": 2, "annotations": [annotation(0, [0, 0, 20, 20])]},
        {"image_id": 3, "annotations": [annotation(0, [5, 5, 15, 15])]},
        {"image_id": 4, "annotations": [annotation(1, [0, 0, 10, 10], iscrowd=1)]},
        {"image_id": 5, "annotations": [annotation(1, [0, 0, 10, 10])]},
        {"image_id": 6, "annotations": [annotation(0, [0, 0, 10, 10])]},  # never evaluated
    ]
    DatasetCatalog.register(CORLOC_DATASET, lambda: records)
    MetadataCatalog.get(CORLOC_DATASET).set(thing_classes=["a", "b"])
    yield CORLOC_DATASET
    DatasetCatalog.remove(CORLOC_DATASET)
    MetadataCatalog.remove(CORLOC_DATASET)


def detections(*rows):
    """rows of (class, score, x0, y0, x1, y1)."""
    instances = Instances((100, 100))
    values = torch.tensor(rows, dtype=torch.float32).view(-1, 6)
    instances.pred_classes = values[:, 0].long()
    instances.scores = values[:, 1]
    instances.pred_boxes = Boxes(values[:, 2:])
    return {"instances": instances}


def test_corloc_on_hand_made_predictions(corloc_dataset):
    evaluator = CorLocEvaluator(corloc_dataset)
    evaluator.reset()
    outputs = {
        # a: top box exact -> correct; b: top box (0.8) elsewhere -> wrong, the right box scores lower
        1: detections(
            (0, 0.9, 0, 0, 10, 10), (0, 0.5, 50, 50, 60, 60), (1, 0.8, 50, 50, 60, 60), (1, 0.3, 20, 20, 40, 40)
        ),
        # a: VOC pixel boxes [1, 1, 20, 12] vs [1, 1, 20, 20]: IoU 240 / 400 = 0.6 -> correct;
        # b is not in the image: its detection is ignored
        2: detections((0, 0.7, 0, 0, 20, 12), (1, 0.99, 0, 0, 5, 5)),
        # a: no detection of the class -> wrong
        3: detections(),
        # b only as a crowd object: the image is not counted for b
        4: detections((1, 0.9, 30, 30, 40, 40)),
        # b: [1, 1, 10, 5] vs [1, 1, 10, 10]: IoU 50 / 100 = 0.5 -> correct (>= 0.5)
        5: detections((1, 0.6, 0, 0, 10, 5)),
    }
    for image_id, output in outputs.items():
        evaluator.process([{"image_id": image_id}], [output])
    results = evaluator.evaluate()["corloc"]
    # a: 2 of images {1, 2, 3}; b: 1 of images {1, 5}; mean (66.667 + 50) / 2 = 58.333
    assert results["CorLoc-a"] == pytest.approx(200 / 3)
    assert results["CorLoc-b"] == pytest.approx(50.0)
    assert results["CorLoc"] == pytest.approx(175 / 3)

    stricter = CorLocEvaluator(corloc_dataset, iou_threshold=0.55)
    stricter.reset()
    for image_id, output in outputs.items():
        stricter.process([{"image_id": image_id}], [output])
    assert stricter.evaluate()["corloc"]["CorLoc-b"] == pytest.approx(0.0)  # IoU 0.5 no longer counts


class CountingProposals:
    """A proposal generator that records the images it is given and returns fixed boxes."""

    def __init__(self, boxes):
        self.boxes, self.images = boxes, []

    def __call__(self, image_bgr):
        self.images.append(image_bgr)
        return self.boxes.numpy(), np.linspace(1.0, 0.1, len(self.boxes), dtype=np.float32)


def test_proposal_generator_fills_in_only_missing_proposals_at_inference():
    x = make_input(5, [0])
    generator = CountingProposals(x["proposals"].proposal_boxes.tensor)
    model = tiny_model("oicr_reg", proposal_generator=generator).eval()
    without = dict(x)
    del without["proposals"]
    with torch.no_grad():
        model([x])
        assert generator.images == []  # precomputed proposals are used as they are
        generated = model([without, x])[0]["instances"]
    assert len(generator.images) == 1
    image = generator.images[0]
    assert image.dtype == np.uint8 and image.shape == (HEIGHT, WIDTH, 3)
    assert np.array_equal(image, x["image"].permute(1, 2, 0).numpy())  # BGR, as the model reads it

    proposals = model.generate_proposals(x["image"])
    assert proposals.image_size == (HEIGHT, WIDTH)
    assert torch.equal(proposals.proposal_boxes.tensor, generator.boxes)
    assert torch.allclose(proposals.objectness_logits, torch.linspace(1.0, 0.1, len(generator.boxes)))
    with torch.no_grad():
        explicit = model([dict(x, proposals=proposals)])[0]["instances"]
    assert torch.allclose(generated.pred_boxes.tensor, explicit.pred_boxes.tensor, atol=1e-4)
    assert torch.allclose(generated.scores, explicit.scores, atol=1e-6)  # batched with x: rounding only

    with pytest.raises(KeyError, match="proposal_files"):  # training always needs precomputed proposals
        training_losses(model, [without])
    model.proposal_generator = None
    with pytest.raises(KeyError, match="set the model's proposal_generator"):
        model.eval()([without])


def test_tta_asks_the_proposal_generator_once_per_input():
    x = make_input(6, [1])
    generator = CountingProposals(x["proposals"].proposal_boxes.tensor)
    model = tiny_model("oicr", proposal_generator=generator).eval()
    tta = WeaklySupervisedRCNNWithTTA(model, min_sizes=(HEIGHT, 2 * HEIGHT), max_size=1000, flip=True)
    without = dict(x)
    del without["proposals"]
    scores, boxes = tta.merged_proposal_predictions(without)
    assert len(generator.images) == 1  # on the input image, not on each of the 4 views
    given = dict(x, proposals=model.generate_proposals(x["image"]))
    expected_scores, expected_boxes = tta.merged_proposal_predictions(given)
    assert torch.allclose(scores, expected_scores) and torch.allclose(boxes, expected_boxes)


def test_proposal_generator_errors_name_the_fix():
    x = make_input(7, [0])
    model = tiny_model("wsddn", proposal_generator=CountingProposals(torch.zeros(0, 4))).eval()
    with pytest.raises(ValueError, match="gave 0 boxes and 0 scores for a 64x96 image.*min_size"):
        model.generate_proposals(x["image"])
    with pytest.raises(ValueError, match="input_format='L'.*'BGR' or 'RGB'"):
        tiny_model("wsddn", input_format="L", proposal_generator=CountingProposals(torch.zeros(1, 4)))
    with pytest.raises(ValueError, match="has no proposal_generator"):
        tiny_model("wsddn").generate_proposals(x["image"])
