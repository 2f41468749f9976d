"""FCOS with the MSAD authors' head and losses (projects/common/modeling/fcos.py): location
grid, target assignment on hand-placed boxes, FCOS's +1-smoothed GIoU loss and the three losses
on hand-computed values, decoding of a hand-set prediction, the head's shapes and per-level
scales, a few training steps of a tiny FCOS, and the CPU config through train_net.py."""
import json
import math
import os

import pytest
import torch

from detectron2.config import LazyConfig, instantiate
from detectron2.data import DatasetCatalog
from detectron2.layers import ShapeSpec
from detectron2.modeling import Backbone
from detectron2.structures import Boxes, ImageList, Instances

from configs.common.models.cpu import shrink_resnet_fpn
from projects.common.data import DetectionDatasetMapper
from projects.common.modeling.fcos import FCOS, FCOSHead, centerness_targets, fcos_giou_loss, level_locations

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NUM_CLASSES = 8


class StridesOnly(Backbone):
    """A backbone that only declares its outputs' strides: FCOS reads them at construction; the
    tests below pass feature maps to FCOS's methods themselves."""

    def __init__(self, strides):
        super().__init__()
        self.strides = strides

    def output_shape(self):
        return {f"p{index}": ShapeSpec(channels=16, stride=stride) for index, stride in enumerate(self.strides)}

    def forward(self, x):
        raise NotImplementedError("the tests pass feature maps to FCOS's methods directly")


def two_level_fcos(size_ranges=((-1, 32), (32, math.inf)), num_classes=NUM_CLASSES, **kwargs):
    """FCOS on levels of stride 8 and 16."""
    head = FCOSHead(input_shape=[ShapeSpec(channels=16)] * 2, num_classes=num_classes, conv_dims=[16], num_groups=8)
    return FCOS(backbone=StridesOnly([8, 16]), head=head, head_in_features=["p0", "p1"], num_classes=num_classes,
                size_ranges=size_ranges, pixel_mean=[0.0] * 3, pixel_std=[1.0] * 3, **kwargs)


def instances(boxes, classes, image_size=(128, 128)):
    return Instances(image_size, gt_boxes=Boxes(torch.tensor(boxes, dtype=torch.float32)),
                     gt_classes=torch.tensor(classes))


def assign(model, boxes, classes):
    """{level: {(x, y): label}} of the positive locations of a 128 x 128 image (16x16 and 8x8
    maps), and the image's stride-normalised distances per level."""
    locations = model.locations([torch.zeros(1, 1, 16, 16), torch.zeros(1, 1, 8, 8)])
    labels, distances = model.label_locations(locations, [instances(boxes, classes)])
    labels, distances = labels[0].split([256, 64]), distances[0].split([256, 64])
    positives = {
        level: {tuple(point.tolist()): int(label) for point, label in zip(points, level_labels) if label != NUM_CLASSES}
        for level, (points, level_labels) in enumerate(zip(locations, labels))
    }
    return positives, distances, locations


def test_level_locations_are_stride_grid_centres():
    expected = [[4, 4], [12, 4], [20, 4], [4, 12], [12, 12], [20, 12]]
    assert level_locations(2, 3, 8, torch.device("cpu")).tolist() == expected
    # the integer half stride: 1 at stride 2, 64 at stride 128
    assert level_locations(1, 2, 2, torch.device("cpu")).tolist() == [[1, 1], [3, 1]]
    assert level_locations(1, 1, 128, torch.device("cpu")).tolist() == [[64, 64]]


# box C = (0, 0, 96, 64): centre (48, 32), area 6144. Stride-8 points are 8k + 4, stride-16 8 + 16k.
BOX_C = [0, 0, 96, 64]


def test_center_sampling_keeps_the_points_near_the_box_centre():
    positives, _, _ = assign(two_level_fcos(), [BOX_C], [3])
    # stride 16, radius 1.5: strictly inside (48 +- 24, 32 +- 24) cut to the box -> x in {40, 56},
    # y in {24, 40}; at stride 8 the region holds x in {44, 52}, y in {28, 36}, but there
    # max(l, t, r, b) >= 44 is beyond level 0's range [-1, 32]
    assert positives[0] == {}
    assert positives[1] == {(40, 24): 3, (56, 24): 3, (40, 40): 3, (56, 40): 3}


def test_without_center_sampling_every_point_inside_the_box_is_positive():
    positives, _, _ = assign(two_level_fcos(center_sampling_radius=0), [BOX_C], [3])
    assert positives[0] == {}  # max(l, r) >= 48 everywhere
    # strictly inside: x in {8, ..., 88} (6), y in {8, 24, 40, 56} (4)
    assert set(positives[1]) == {(x, y) for x in range(8, 96, 16) for y in range(8, 64, 16)}


def test_size_ranges_send_a_small_box_to_the_fine_level():
    # box D = (32, 16, 64, 48) shares its centre (48, 32) with C
    positives, _, _ = assign(two_level_fcos(), [BOX_C, [32, 16, 64, 48]], [3, 5])
    # stride 8: D's points (44|52, 28|36) have max(l, t, r, b) = 20 <= 32 -> D
    assert positives[0] == {(44, 28): 5, (52, 28): 5, (44, 36): 5, (52, 36): 5}
    # stride 16: (40, 24) etc. lie in D's centre region too, but D's max distance there is 24 < 32,
    # out of level 1's range [32, inf]: C keeps them
    assert positives[1] == {(40, 24): 3, (56, 24): 3, (40, 40): 3, (56, 40): 3}


def test_points_in_two_boxes_regress_the_smaller_one():
    # box E = (32, 16, 96, 64), area 3072 < 6144, inside C; no center sampling
    positives, _, _ = assign(two_level_fcos(center_sampling_radius=0), [BOX_C, [32, 16, 96, 64]], [3, 5])
    in_e = {(x, y) for x in (40, 56, 72, 88) for y in (24, 40, 56)}
    assert {p for p, label in positives[1].items() if label == 5} == in_e
    assert len(positives[1]) == 24 and all(label == 3 for p, label in positives[1].items() if p not in in_e)


def test_regression_and_centerness_targets_at_a_point():
    _, distances, locations = assign(two_level_fcos(), [BOX_C], [3])
    index = locations[1].tolist().index([40, 24])
    # l = 40, t = 24, r = 56, b = 40 pixels at stride 16
    assert distances[1][index].tolist() == [2.5, 1.5, 3.5, 2.5]
    centerness = centerness_targets(distances[1][index : index + 1])
    assert centerness.item() == pytest.approx(math.sqrt(40 / 56 * 24 / 40), rel=1e-6)  # 0.6547
    # background points carry no distances
    background = locations[1].tolist().index([8, 8])
    assert distances[1][background].tolist() == [0, 0, 0, 0] and distances[0].abs().sum() == 0


def test_an_image_without_boxes_is_all_background():
    model = two_level_fcos()
    empty = Instances((64, 64), gt_boxes=Boxes(torch.zeros(0, 4)), gt_classes=torch.zeros(0, dtype=torch.long))
    labels, distances = model.label_locations([torch.zeros(5, 2)], [empty])
    assert labels[0].tolist() == [NUM_CLASSES] * 5 and distances[0].abs().sum() == 0


def test_fcos_giou_loss_smooths_the_iou_by_one_stride_unit():
    """FCOS's official IoU form (the MSAD authors'): IoU = (I + 1) / (U + 1) on stride units."""
    # (1, 1, 1, 1) vs (2, 2, 2, 2): areas 4 and 16, I = 4, U = 16, C = 16 (no enclosing term):
    # IoU (4 + 1) / (16 + 1) = 5/17, loss 12/17 = 0.7059 (plain GIoU: 1 - 4/16 = 0.75)
    loss = fcos_giou_loss(torch.tensor([[1.0, 1, 1, 1]]), torch.tensor([[2.0, 2, 2, 2]]))
    assert loss.item() == pytest.approx(1 - 5 / 17, rel=1e-6)
    # (2, 2, 0, 0) vs (1, 1, 1, 1): areas 4 and 4, I = (1 + 0) x (1 + 0) = 1, U = 7,
    # C = (2 + 1) x (2 + 1) = 9: IoU 2/8, GIoU 1/4 - 2/9, loss 35/36
    # (0, 0, 1, 1) vs (1, 3, 3, 1): areas 1 and 16, I = 1, U = 16, C = 4 x 4 = 16: loss 1 - 2/17
    losses = fcos_giou_loss(torch.tensor([[2.0, 2, 0, 0], [0, 0, 1, 1]]), torch.tensor([[1.0, 1, 1, 1], [1, 3, 3, 1]]))
    assert losses.tolist() == pytest.approx([35 / 36, 15 / 17], rel=1e-6)


def test_fcos_giou_loss_and_gradients_match_a_box_reference():
    """Against a reference written here on XYXY boxes around the point (corner max / min for the
    intersection and the enclosing box), on random stride-unit distances."""
    generator = torch.Generator().manual_seed(0)
    pred = (torch.rand(50, 4, generator=generator, dtype=torch.float64) * 6).requires_grad_(True)
    target = torch.rand(50, 4, generator=generator, dtype=torch.float64) * 6 + 0.3

    def area(box):
        return (box[:, 2] - box[:, 0]) * (box[:, 3] - box[:, 1])

    def reference(pred, target):
        a = torch.stack([-pred[:, 0], -pred[:, 1], pred[:, 2], pred[:, 3]], dim=1)
        b = torch.stack([-target[:, 0], -target[:, 1], target[:, 2], target[:, 3]], dim=1)
        low, high = torch.maximum(a[:, :2], b[:, :2]), torch.minimum(a[:, 2:], b[:, 2:])
        intersection = (high - low).clamp(min=0).prod(dim=1)
        union = area(a) + area(b) - intersection
        low, high = torch.minimum(a[:, :2], b[:, :2]), torch.maximum(a[:, 2:], b[:, 2:])
        enclosing = (high - low).prod(dim=1)
        return 1 - (intersection + 1) / (union + 1) + (enclosing - union) / enclosing

    mine = fcos_giou_loss(pred, target)
    expected = reference(pred, target)
    assert torch.allclose(mine, expected, atol=1e-9)
    (mine_grad,) = torch.autograd.grad(mine.sum(), pred)
    (expected_grad,) = torch.autograd.grad(expected.sum(), pred)
    assert torch.allclose(mine_grad, expected_grad, atol=1e-9)


def test_losses_match_hand_computation():
    """One class, three locations: two positives and one background; all logits 0."""
    model = two_level_fcos(num_classes=1)
    # positive a: target (1, 1, 1, 1), centerness 1; prediction (2, 2, 0, 0): I = 1, U = 7, C = 9
    #   -> IoU (1 + 1) / (7 + 1) = 1/4, loss 1 - 1/4 + 2/9 = 35/36
    # positive b: target (1, 3, 3, 1) of area 16, centerness sqrt(1/3 * 1/3) = 1/3; prediction
    #   (0, 0, 1, 1) inside it: I = 1, U = C = 16 -> IoU 2/17, loss 15/17
    gt_distances = torch.tensor([[1.0, 1, 1, 1], [1, 3, 3, 1], [0, 0, 0, 0]])
    pred_distances = torch.tensor([[[2.0, 2, 0, 0], [0, 0, 1, 1], [5, 5, 5, 5]]])
    losses = model.losses(
        pred_logits=[torch.zeros(1, 3, 1)], pred_distances=[pred_distances],
        pred_centerness=[torch.zeros(1, 3, 1)], gt_labels=[torch.tensor([0, 0, 1])], gt_distances=[gt_distances],
    )
    assert set(losses) == {"loss_fcos_cls", "loss_fcos_loc", "loss_fcos_ctr"}
    # focal loss at p = 0.5: positives 0.25 * 0.5^2 * ln 2 each, the negative 0.75 * 0.5^2 * ln 2;
    # divided by the 2 positives
    focal = (2 * 0.25 + 0.75) * 0.25 * math.log(2) / 2
    assert losses["loss_fcos_cls"].item() == pytest.approx(focal, rel=1e-5)
    # GIoU losses weighted by the centerness targets, divided by their sum (the background's
    # prediction (5, 5, 5, 5) does not count)
    giou = (35 / 36 * 1 + 15 / 17 * (1 / 3)) / (1 + 1 / 3)
    assert losses["loss_fcos_loc"].item() == pytest.approx(giou, rel=1e-5)
    # BCE at logit 0 is ln 2 whatever the target; summed over the 2 positives, divided by 2
    assert losses["loss_fcos_ctr"].item() == pytest.approx(math.log(2), rel=1e-5)


def logit(probability):
    return math.log(probability / (1 - probability))


def test_inference_decodes_a_hand_set_prediction():
    model = two_level_fcos(test_score_thresh=0.05).eval()
    features = [torch.zeros(1, 16, 4, 4), torch.zeros(1, 16, 2, 2)]
    logits = [torch.full((1, NUM_CLASSES, 4, 4), -10.0), torch.full((1, NUM_CLASSES, 2, 2), -10.0)]
    distances = [torch.zeros(1, 4, 4, 4), torch.zeros(1, 4, 2, 2)]
    centerness = [torch.full((1, 1, 4, 4), 10.0), torch.zeros(1, 1, 2, 2)]
    # stride 16, row 1, column 0 -> point (8, 24): class 2 at probability 0.64, centerness 0.25
    logits[1][0, 2, 1, 0] = logit(0.64)
    centerness[1][0, 0, 1, 0] = logit(0.25)
    distances[1][0, :, 1, 0] = torch.tensor([0.5, 1.0, 1.5, 0.25])  # x 16 = (8, 16, 24, 4) pixels
    # stride 8: probability 0.04 is under the threshold although sqrt(0.04 x ~1) = 0.2 is not
    logits[0][0, 6, 2, 2] = logit(0.04)
    images = ImageList(torch.zeros(1, 3, 32, 32), [(26, 30)])
    (result,) = model.forward_inference(images, features, [logits, distances, centerness])
    assert len(result) == 1 and result.image_size == (26, 30)
    assert result.pred_classes.tolist() == [2]
    assert result.scores.item() == pytest.approx(math.sqrt(0.64 * 0.25), rel=1e-5)  # 0.4
    # box (8 - 8, 24 - 16, 8 + 24, 24 + 4) = (0, 8, 32, 28), clipped to the 30 x 26 image
    assert result.pred_boxes.tensor.tolist() == [[0, 8, 30, 26]]


def test_head_shapes_scales_and_initialisation():
    torch.manual_seed(0)
    head = FCOSHead(input_shape=[ShapeSpec(channels=32)] * 3, num_classes=5, conv_dims=[32, 32])
    sizes = [(16, 12), (8, 6), (4, 3)]
    features = [torch.randn(2, 32, h, w) for h, w in sizes]
    logits, distances, centerness = head(features)
    for level, (h, w) in enumerate(sizes):
        assert logits[level].shape == (2, 5, h, w)
        assert distances[level].shape == (2, 4, h, w) and (distances[level] >= 0).all()
        assert centerness[level].shape == (2, 1, h, w)
    # prior probability 0.01 through the logits' bias; the tiny N(0, 0.01) weights barely move it
    assert torch.sigmoid(logits[0]).mean().item() == pytest.approx(0.01, abs=1e-3)
    assert [len(m) for m in (head.cls_tower, head.bbox_tower)] == [6, 6]  # (conv, GN, ReLU) x 2
    assert isinstance(head.cls_tower[1], torch.nn.GroupNorm) and head.cls_tower[1].num_groups == 32
    # the scale of level i multiplies level i's distances (before the ReLU, so relu(s x) = s relu(x))
    with torch.no_grad():
        head.scales[1] = 2.0
    _, scaled, _ = head(features)
    assert torch.allclose(scaled[1], 2 * distances[1]) and torch.equal(scaled[0], distances[0])
    with pytest.raises(ValueError, match="2 feature maps"):
        head(features[:2])


def test_group_norm_groups_must_divide_the_tower_channels():
    with pytest.raises(ValueError, match="num_groups=32 .* has 48"):
        FCOSHead(input_shape=[ShapeSpec(channels=48)] * 5, num_classes=3, conv_dims=[48] * 4)
    head = FCOSHead(input_shape=[ShapeSpec(channels=48)] * 5, num_classes=3, conv_dims=[48] * 4, num_groups=16)
    assert head.bbox_tower[1].num_groups == 16


def tiny_fcos_config():
    """The CPU FCOS at a quarter width with a 32-channel FPN and a 2-conv head."""
    cfg = LazyConfig.load(os.path.join(REPO, "configs/common/models/fcos_cpu.py"))
    shrink_resnet_fpn(cfg.model.backbone, width=0.25, fpn_channels=32)
    cfg.model.head.input_shape = [ShapeSpec(channels=32)] * 5
    cfg.model.head.conv_dims = [32, 32]
    cfg.model.num_classes = NUM_CLASSES
    return cfg


def test_cpu_config_halves_the_size_ranges_and_builds():
    cfg = LazyConfig.load(os.path.join(REPO, "configs/common/models/fcos_cpu.py"))
    assert cfg.model.size_ranges == [[-1, 32], [32, 64], [64, 128], [128, 256], [256, math.inf]]
    assert cfg.model.head.conv_dims == [128] * 2 and cfg.model.backbone.out_channels == 128
    model = instantiate(cfg.model)
    assert isinstance(model, FCOS) and model.strides == [8, 16, 32, 64, 128]
    # p2 is built for MSAD's low-resolution path; the detector reads p3..p7
    assert set(model.backbone.output_shape()) == {"p2", "p3", "p4", "p5", "p6", "p7"}


def test_tiny_fcos_trains_a_few_steps_and_predicts():
    torch.manual_seed(0)
    model = instantiate(tiny_fcos_config().model).train()
    mapper = DetectionDatasetMapper(is_train=True, augmentations=[], image_format="BGR")
    batch = [mapper(record) for record in DatasetCatalog.get("synthetic_shapes_train")[:2]]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    totals = []
    for _ in range(4):
        losses = model(batch)
        assert set(losses) == {"loss_fcos_cls", "loss_fcos_loc", "loss_fcos_ctr"}
        assert all(torch.isfinite(value) for value in losses.values())
        total = sum(losses.values())
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        totals.append(total.item())
    assert totals[-1] < totals[0]
    assert all(torch.isfinite(p).all() for p in model.parameters())

    model.eval()
    with torch.no_grad():
        (output,) = model([{"image": batch[0]["image"], "height": 128, "width": 128}])
    detections = output["instances"]
    assert detections.image_size == (128, 128) and len(detections) <= 100
    assert {"pred_boxes", "scores", "pred_classes"} <= set(detections.get_fields())


@pytest.mark.slow
def test_cpu_config_trains_through_train_net(tmp_path):
    from projects.common import engine

    output_dir = str(tmp_path / "fcos")
    args = engine.parse_args([
        "--config-file", os.path.join(REPO, "configs/msad/synthetic_fcos_R18_FPN_cpu.py"),
        f"train.output_dir={output_dir}", "train.max_iter=20", "train.log_period=5",
        "train.checkpointer.period=20", "dataloader.train.total_batch_size=2",
        "dataloader.train.num_workers=0", "dataloader.test.num_workers=0",
    ])
    engine.main(args)
    with open(os.path.join(output_dir, "metrics.json")) as f:
        records = [json.loads(line) for line in f]
    training = [r for r in records if "total_loss" in r]
    assert [r["iteration"] for r in training] == [4, 9, 14, 19]
    for key in ("loss_fcos_cls", "loss_fcos_loc", "loss_fcos_ctr"):
        assert all(math.isfinite(r[key]) for r in training), key
    assert "bbox/AP" in records[-1]
    assert os.path.isfile(os.path.join(output_dir, "model_final.pth"))
