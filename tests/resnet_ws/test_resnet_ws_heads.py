"""ResNet-WS heads on hand-made inputs: WSDDN scores, clamp and BCE; OICR pseudo labels (seeds, IoU
threshold, weights), weighted cross-entropy, refinement losses; OICR+REG targets, loss and decoded
boxes. Every expected number is worked out by hand in the comments."""
import math

import pytest
import torch

from detectron2.structures import Boxes

from projects.resnet_ws.heads import (
    OICRHead,
    WSDDNHead,
    assign_pseudo_labels,
    box_regression_loss,
    build_weak_detection_head,
    weighted_cross_entropy,
)

LN2, LN3 = math.log(2.0), math.log(3.0)


def set_linear(layer, weight, bias):
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(weight, dtype=layer.weight.dtype))
        layer.bias.copy_(torch.tensor(bias, dtype=layer.bias.dtype))


def hand_wsddn(head):
    """Features are [cls logit 0, cls logit 1, det logit 0, det logit 1]: the classification stream
    reads the first two, the detection stream the last two."""
    set_linear(head.classification_stream, [[1, 0, 0, 0], [0, 1, 0, 0]], [0, 0])
    set_linear(head.detection_stream, [[0, 0, 1, 0], [0, 0, 0, 1]], [0, 0])
    return head


# 3 proposals, 2 classes. Class softmax: p1 [3/4, 1/4], p2 [1/2, 1/2], p3 [1/4, 3/4].
# Proposal softmax of the detection stream: class 0 [2/4, 1/4, 1/4], class 1 [1/4, 1/4, 2/4].
# Scores: p1 [0.375, 0.0625], p2 [0.125, 0.125], p3 [0.0625, 0.375]; image scores [0.5625, 0.5625].
WSDDN_FEATURES = [[LN3, 0.0, LN2, 0.0], [0.0, 0.0, 0.0, 0.0], [0.0, LN3, 0.0, LN2]]
WSDDN_SCORES = [[0.375, 0.0625], [0.125, 0.125], [0.0625, 0.375]]
# labels [1, 0]: BCE = -ln(0.5625) - ln(1 - 0.5625) = 0.5753641 + 0.8266786 = 1.4020427 (sum), 0.7010214 (mean)
BCE_SUM, BCE_MEAN = 1.4020427, 0.7010214


def test_wsddn_scores_and_bce_by_hand():
    head = hand_wsddn(WSDDNHead(4, 2).double())
    features = torch.tensor(WSDDN_FEATURES, dtype=torch.float64)
    boxes = [Boxes(torch.tensor([[0, 0, 10, 10], [0, 0, 20, 20], [5, 5, 30, 30]], dtype=torch.float64))]
    assert torch.allclose(head(features, [3]), torch.tensor(WSDDN_SCORES, dtype=torch.float64))
    labels = torch.tensor([[1.0, 0.0]])
    assert head.losses(features, boxes, labels)["loss_wsddn"].item() == pytest.approx(BCE_SUM, abs=1e-6)
    head.bce_reduction = "mean"
    assert head.losses(features, boxes, labels)["loss_wsddn"].item() == pytest.approx(BCE_MEAN, abs=1e-6)
    scores, predicted_boxes = head.inference(features, boxes)
    assert torch.allclose(scores[0], torch.tensor(WSDDN_SCORES, dtype=torch.float64))
    assert torch.equal(predicted_boxes[0], boxes[0].tensor)


def test_wsddn_image_score_is_clamped():
    # one proposal whose class softmax is [1, e^-100]: image scores [1, ~0] -> [1 - 1e-6, 1e-6];
    # labels [0, 1] (both wrong): BCE = -ln(1e-6) - ln(1e-6) = 2 * 13.8155106 = 27.6310211
    # (without the clamp torch's log floor of -100 would give 200)
    head = hand_wsddn(WSDDNHead(4, 2).double())
    features = torch.tensor([[50.0, -50.0, 0.0, 0.0]], dtype=torch.float64, requires_grad=True)
    loss = head.losses(features, [Boxes(torch.tensor([[0.0, 0.0, 5.0, 5.0]]))], torch.tensor([[0.0, 1.0]]))
    assert loss["loss_wsddn"].item() == pytest.approx(27.6310211, abs=1e-4)
    loss["loss_wsddn"].backward()
    assert torch.isfinite(features.grad).all()


def test_wsddn_skips_images_without_labels():
    head = hand_wsddn(WSDDNHead(4, 2, bce_reduction="mean").double())
    other_image = [[3.0, -1.0, 2.0, 0.5], [0.0, 1.0, -2.0, 1.0]]
    features = torch.tensor(WSDDN_FEATURES + other_image, dtype=torch.float64, requires_grad=True)
    boxes = [Boxes(torch.rand(3, 4)), Boxes(torch.rand(2, 4))]
    loss = head.losses(features, boxes, torch.tensor([[1.0, 0.0], [0.0, 0.0]]))["loss_wsddn"]
    assert loss.item() == pytest.approx(BCE_MEAN, abs=1e-6)  # the mean over the one labelled image
    loss.backward()
    assert torch.count_nonzero(features.grad[3:]) == 0

    nothing_labelled = head.losses(features, boxes, torch.zeros(2, 2))["loss_wsddn"]
    assert nothing_labelled.item() == 0.0 and nothing_labelled.requires_grad


# Six proposals, three classes, image label {0, 2}.
PSEUDO_BOXES = [
    [0, 0, 10, 10],  # p0: seed of class 0
    [0, 0, 10, 5],  # p1: IoU with p0 = 50 / 100 = 0.50 -> class 0 (>= threshold)
    [20, 20, 30, 30],  # p2: seed of class 2
    [22, 20, 30, 30],  # p3: IoU with p2 = 80 / 100 = 0.80 -> class 2
    [0, 0, 10, 4.9],  # p4: IoU with p0 = 49 / 100 = 0.49 -> background, weight of seed 0
    [50, 50, 60, 60],  # p5: overlaps no seed -> background, weight of the first seed (class 0)
]
PSEUDO_SCORES = [
    [0.6, 0.1, 0.1],
    [0.2, 0.1, 0.1],
    [0.1, 0.1, 0.7],
    [0.1, 0.1, 0.2],
    [0.1, 0.9, 0.1],  # class 1 scores highest here, but class 1 is not in the image
    [0.1, 0.1, 0.1],
]


def test_pseudo_labels_seeds_iou_threshold_and_weights():
    boxes = Boxes(torch.tensor(PSEUDO_BOXES, dtype=torch.float32))
    scores = torch.tensor(PSEUDO_SCORES)
    present = torch.tensor([0, 2])
    labels = assign_pseudo_labels(boxes, scores, present)
    assert labels.seed_indices.tolist() == [0, 2]
    assert labels.classes.tolist() == [0, 0, 2, 2, 3, 3]  # 3 = background
    assert torch.allclose(labels.weights, torch.tensor([0.6, 0.6, 0.7, 0.7, 0.6, 0.6]))  # the seeds' scores
    seed_0, seed_2 = PSEUDO_BOXES[0], PSEUDO_BOXES[2]
    assert labels.target_boxes.tolist() == [seed_0, seed_0, seed_2, seed_2, seed_0, seed_0]

    # the authors' weights: the WSDDN image score of each seed's class, here 0.8 (class 0) and 0.9 (class 2)
    image_weighted = assign_pseudo_labels(boxes, scores, present, seed_weights=torch.tensor([0.8, 0.9]))
    assert torch.allclose(image_weighted.weights, torch.tensor([0.8, 0.8, 0.9, 0.9, 0.8, 0.8]))

    stricter = assign_pseudo_labels(boxes, scores, present, iou_threshold=0.51)
    assert stricter.classes.tolist() == [0, 3, 2, 2, 3, 3]  # p1's IoU of 0.50 no longer suffices

    with pytest.raises(ValueError, match="at least one present class"):
        assign_pseudo_labels(boxes, scores, torch.tensor([], dtype=torch.long))


def test_weighted_cross_entropy_by_hand():
    # p0 softmax [1/2, 1/4, 1/4], class 0: CE = ln 2 = 0.6931472
    # p1 softmax [1/3, 1/3, 1/3], background (2): CE = ln 3 = 1.0986123
    # p2 softmax [1/8, 6/8, 1/8], class 1: CE = ln(8/6) = 0.2876821, but weight 0
    # loss = (0.5 * 0.6931472 + 0.5 * 1.0986123 + 0) / #(w > 0) = 0.8958797 / 2 = 0.4479399
    logits = torch.tensor([[LN2, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, math.log(6.0), 0.0]])
    classes = torch.tensor([0, 2, 1])
    loss = weighted_cross_entropy(logits, classes, torch.tensor([0.5, 0.5, 0.0]))
    assert loss.item() == pytest.approx(0.4479399, abs=1e-6)
    assert weighted_cross_entropy(logits, classes, torch.zeros(3)).item() == 0.0


# OICR image: the WSDDN features above, boxes p1 [0, 0, 10, 10], p2 [0, 0, 10, 6] (IoU with p1 =
# 60 / 100 = 0.6), p3 far away; label {0}. WSDDN's class-0 scores [0.375, 0.125, 0.0625]: seed p1;
# pseudo classes [0, 0, background]. WSDDN image score of class 0: 0.5625.
OICR_BOXES = [[0, 0, 10, 10], [0, 0, 10, 6], [30, 30, 40, 40]]


def hand_oicr(**options):
    head = OICRHead(4, 2, num_refinements=2, **options).double()
    hand_wsddn(head.mil)
    set_linear(head.refinements[0], [[0] * 4] * 3, [LN2, 0, 0])  # softmax [1/2, 1/4, 1/4] everywhere
    set_linear(head.refinements[1], [[0] * 4] * 3, [0, 0, 0])  # softmax [1/3, 1/3, 1/3] everywhere
    return head


def oicr_inputs():
    features = torch.tensor(WSDDN_FEATURES, dtype=torch.float64)
    return features, [Boxes(torch.tensor(OICR_BOXES, dtype=torch.float64))], torch.tensor([[1.0, 0.0]])


def test_oicr_losses_with_image_score_weights():
    # branch 1: CE = ln 2, ln 2 (class 0) and ln 4 (background), all weighted 0.5625:
    #   0.5625 * (4 ln 2) / 3 = 0.5625 * 0.9241962 = 0.5198604
    # branch 2 (seed = first of the tied proposals, p1; same labels): CE = ln 3 each:
    #   0.5625 * 1.0986123 = 0.6179694
    losses = hand_oicr().losses(*oicr_inputs())
    assert sorted(losses) == ["loss_refine_1", "loss_refine_2", "loss_wsddn"]
    assert losses["loss_wsddn"].item() == pytest.approx(BCE_MEAN, abs=1e-6)  # WSDDN inside OICR averages
    assert losses["loss_refine_1"].item() == pytest.approx(0.5198604, abs=1e-6)
    assert losses["loss_refine_2"].item() == pytest.approx(0.6179694, abs=1e-6)


def test_oicr_losses_are_per_image_means():
    """Two copies of the image give the one image's hand-computed losses (means over images). The
    authors' code would give half of loss_wsddn here: it divides the BCE's mean over the batch's
    images and classes by the number of images again."""
    features, boxes, labels = oicr_inputs()
    losses = hand_oicr().losses(torch.cat([features, features]), boxes * 2, torch.cat([labels, labels]))
    assert losses["loss_wsddn"].item() == pytest.approx(BCE_MEAN, abs=1e-6)
    assert losses["loss_refine_1"].item() == pytest.approx(0.5198604, abs=1e-6)
    assert losses["loss_refine_2"].item() == pytest.approx(0.6179694, abs=1e-6)


def test_oicr_losses_with_seed_score_weights():
    # branch 1 weight: WSDDN score of the seed p1, 0.375 -> 0.375 * 0.9241962 = 0.3465736
    # branch 2 weight: branch 1's class-0 probability of its seed, 0.5 -> 0.5 * 1.0986123 = 0.5493061
    losses = hand_oicr(seed_weight="seed_score").losses(*oicr_inputs())
    assert losses["loss_refine_1"].item() == pytest.approx(0.3465736, abs=1e-6)
    assert losses["loss_refine_2"].item() == pytest.approx(0.5493061, abs=1e-6)


def test_oicr_inference_averages_branches_without_background():
    # ([1/2, 1/4] + [1/3, 1/3]) / 2 = [0.4166667, 0.2916667] for every proposal
    features, boxes, _ = oicr_inputs()
    scores, predicted_boxes = hand_oicr().inference(features, boxes)
    assert torch.allclose(scores[0], torch.tensor([[0.4166667, 0.2916667]] * 3, dtype=torch.float64))
    assert torch.equal(predicted_boxes[0], boxes[0].tensor)


def test_regression_targets_and_l1_loss_by_hand():
    # p2 [0, 0, 10, 6] (centre (5, 3), 10 x 6) towards its seed p1 [0, 0, 10, 10] (centre (5, 5)):
    #   dx = 10 * 0 / 10 = 0, dy = 10 * (5 - 3) / 6 = 3.3333333, dw = 5 ln(10 / 10) = 0,
    #   dh = 5 ln(10 / 6) = 2.5541281; p1 towards itself: 0; p3 is background: no loss.
    boxes = Boxes(torch.tensor(OICR_BOXES, dtype=torch.float64))
    labels = assign_pseudo_labels(boxes, torch.tensor(WSDDN_SCORES, dtype=torch.float64), torch.tensor([0]))
    transform = OICRHead(4, 2, box_regression=True).box2box_transform
    deltas = torch.zeros(3, 8, dtype=torch.float64)
    # L1 = (3.3333333 + 2.5541281) / 3 proposals = 1.9624871
    assert box_regression_loss(deltas, boxes, labels, transform).item() == pytest.approx(1.9624871, abs=1e-6)
    deltas[1, :4] = torch.tensor([0.0, 3.0, 0.0, 2.0])  # class 0 columns of p2
    deltas[1, 4:] = 100.0  # class 1 columns: not p2's pseudo class, not in the loss
    # (0.3333333 + 0.5541281) / 3 = 0.2958205
    assert box_regression_loss(deltas, boxes, labels, transform).item() == pytest.approx(0.2958205, abs=1e-6)


def test_oicr_reg_loss_and_regressed_test_boxes():
    head = OICRHead(4, 2, num_refinements=2, box_regression=True).double()
    hand_wsddn(head.mil)
    set_linear(head.refinements[0], [[0] * 4] * 3, [0, 0, 0])
    set_linear(head.refinements[1], [[0] * 4] * 3, [LN2, 0, 0])
    # class 0: dw = 5 ln 2 -> width x 2; class 1: dx = 1 -> x shifted by 1 / 10 of the width
    set_linear(head.box_deltas, [[0] * 4] * 8, [0, 0, 5 * LN2, 0, 1, 0, 0, 0])
    features, boxes, labels = oicr_inputs()
    losses = head.losses(features, boxes, labels)
    assert sorted(losses) == ["loss_box_reg", "loss_refine_1", "loss_refine_2", "loss_wsddn"]
    # seeds of branch 2 come from branch 1 (uniform: seed p1), targets as in the previous test;
    # predicted class-0 deltas [0, 0, 3.4657359, 0] for every proposal:
    #   p1: |3.4657359 - 0| = 3.4657359; p2: |0 - 3.3333333| + |3.4657359 - 0| + |0 - 2.5541281|
    #   = 9.3531973; sum 12.8189332 / 3 = 4.2729777
    assert losses["loss_box_reg"].item() == pytest.approx(4.2729777, abs=1e-6)

    scores, predicted_boxes = head.inference(features, boxes)
    assert torch.allclose(scores[0], torch.tensor([[0.5, 0.25]] * 3, dtype=torch.float64))  # last branch only
    # p1 [0, 0, 10, 10]: class 0 -> centre 5, width 20 -> [-5, 0, 15, 10]; class 1 -> [1, 0, 11, 10]
    # (detectron2 decodes in float32)
    assert torch.allclose(predicted_boxes[0][0], torch.tensor([-5.0, 0, 15, 10, 1, 0, 11, 10]), atol=1e-5)


def test_oicr_without_labels_gives_zero_losses_with_grad():
    head = hand_oicr()
    features, boxes, _ = oicr_inputs()
    features.requires_grad_(True)
    losses = head.losses(features, boxes, torch.zeros(1, 2))
    assert all(value.item() == 0.0 and value.requires_grad for value in losses.values())
    sum(losses.values()).backward()
    assert all(p.grad is not None and torch.count_nonzero(p.grad) == 0 for p in head.parameters())


def test_build_head_types():
    assert isinstance(build_weak_detection_head("wsddn", 8, 3), WSDDNHead)
    oicr = build_weak_detection_head("oicr", 8, 3)
    assert len(oicr.refinements) == 3 and oicr.box_deltas is None and oicr.TEST_NMS_THRESH == 0.3
    oicr_reg = build_weak_detection_head("oicr_reg", 8, 3)
    assert len(oicr_reg.refinements) == 4 and oicr_reg.box_deltas.out_features == 12
    assert oicr_reg.box2box_transform.weights == (10.0, 10.0, 5.0, 5.0)
    assert len(build_weak_detection_head("oicr", 8, 3, num_refinements=2).refinements) == 2
    with pytest.raises(ValueError, match="head_type"):
        build_weak_detection_head("pcl", 8, 3)
    with pytest.raises(ValueError, match="seed_weight"):
        build_weak_detection_head("oicr", 8, 3, seed_weight="max")


def test_wsddn_loss_on_diverged_scores_names_the_fix():
    head = WSDDNHead(input_dim=4, num_classes=2)
    scores = torch.tensor([[float("nan"), 0.5], [0.1, 0.2]])
    with pytest.raises(FloatingPointError, match="optimizer.lr"):
        head.loss_from_scores(scores, [2], torch.tensor([[1, 0]]))
