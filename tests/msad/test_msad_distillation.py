"""MSAD: C-FF by hand, aligned pyramids (P1 included) at the smallest and the authors' padding, the
COCO configs' padding, the KD loss and its ramp, the fusion teacher and the students on tiny
RetinaNet / Mask R-CNN models (R18 at width 0.25, 64-256 px images)."""
import copy
import glob
import math
import os

import pytest
import torch
import torch.nn.functional as F

from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import LazyCall as L
from detectron2.config import LazyConfig, instantiate
from detectron2.layers import ShapeSpec
from detectron2.model_zoo import get_config
from detectron2.modeling.backbone import FPN, BasicStem, ResNet
from detectron2.structures import BitMasks, Boxes, Instances
from detectron2.utils.events import EventStorage

from projects.msad.backbone import (
    AlignedFPN,
    DualResolutionBackbone,
    ResNetWithC1,
    aligned_resnet_fpn,
    shifted_levels,
)
from projects.msad.distillation import (
    AlignedDistillationStudent,
    DualResolutionStudent,
    MultiScaleFusionTeacher,
    aligned_distillation_loss,
    distillation_ramp,
)
from projects.msad.fusion import CrossFeatureFusion

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHANNELS = 16
NUM_CLASSES = 3
DENSE_LEVELS = ["p3", "p4", "p5", "p6", "p7"]
RCNN_LEVELS = ["p2", "p3", "p4", "p5", "p6"]


def tiny_backbone(levels, width=0.25):
    return L(aligned_resnet_fpn)(levels=levels, depth=18, width=width, out_channels=CHANNELS, norm="BN")


def retinanet_config(backbone=None):
    model = get_config("common/models/retinanet.py").model
    model.backbone = backbone or tiny_backbone("p2-p7")
    model.head.input_shape = [ShapeSpec(channels=CHANNELS)] * 5
    model.head.conv_dims = [CHANNELS]
    model.anchor_generator.sizes = [[size, size * 1.5] for size in (8, 16, 32, 64, 128)]
    model.head.num_anchors = 6
    model.num_classes = NUM_CLASSES
    model.test_score_thresh = 0.0  # untrained scores are ~0.01: keep every candidate
    model.pixel_std = [57.0, 57.0, 57.0]
    return model


def mask_rcnn_config():
    model = get_config("common/models/mask_rcnn_fpn.py").model
    model.backbone = tiny_backbone("p1-p6")
    rpn = model.proposal_generator
    rpn.head.in_channels = CHANNELS
    rpn.anchor_generator.sizes = [[8], [16], [32], [64], [128]]
    rpn.pre_nms_topk, rpn.post_nms_topk = (200, 100), (40, 40)
    heads = model.roi_heads
    heads.num_classes = NUM_CLASSES
    heads.batch_size_per_image = 32
    heads.box_pooler.sampling_ratio = heads.mask_pooler.sampling_ratio = 2
    heads.box_head.input_shape = ShapeSpec(channels=CHANNELS, height=7, width=7)
    heads.box_head.fc_dims = [32]
    heads.box_predictor.input_shape = ShapeSpec(channels=32)
    heads.box_predictor.test_score_thresh = 0.0
    heads.mask_head.input_shape = ShapeSpec(channels=CHANNELS, height=14, width=14)
    heads.mask_head.conv_dims = [CHANNELS]
    model.pixel_std = [57.0, 57.0, 57.0]
    return model


DETECTOR_CONFIGS = {"retinanet": retinanet_config, "mask_rcnn": mask_rcnn_config}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These models are tiny: intra-op threads only add synchronisation (7x slower measured on
    the shared 2-core machine), so this module runs single-threaded and restores the setting."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def build_teacher(kind, seed=0, **kwargs):
    torch.manual_seed(seed)
    detector = instantiate(DETECTOR_CONFIGS[kind]())
    return MultiScaleFusionTeacher(detector, CrossFeatureFusion(channels=CHANNELS, hidden_channels=8), **kwargs)


def build_student(kind, teacher, seed=1, **kwargs):
    torch.manual_seed(seed)
    return AlignedDistillationStudent(instantiate(DETECTOR_CONFIGS[kind]()), teacher, **kwargs)


def image_record(height, width, seed, boxes=((8, 10, 60, 50), (30, 40, 90, 100)), classes=(0, 2)):
    """A float BGR image with bright boxes, and its annotations (boxes, classes, box-shaped masks)."""
    generator = torch.Generator().manual_seed(seed)
    image = torch.rand(3, height, width, generator=generator) * 80 + 60
    masks = torch.zeros(len(boxes), height, width, dtype=torch.bool)
    for index, (x0, y0, x1, y1) in enumerate(boxes):
        image[:, y0:y1, x0:x1] += 100
        masks[index, y0:y1, x0:x1] = True
    instances = Instances(
        (height, width),
        gt_boxes=Boxes(torch.tensor(boxes, dtype=torch.float32)),
        gt_classes=torch.tensor(classes),
        gt_masks=BitMasks(masks),
    )
    return {"image": image, "instances": instances, "height": height, "width": width}


def training_batch():
    return [image_record(128, 128, seed=0), image_record(128, 112, seed=1)]


def train_steps(model, iterations, start_iter=0):
    """SGD steps on the training batch; the loss dicts of every step."""
    model.train()
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.005, momentum=0.9)
    history = []
    with EventStorage(start_iter) as storage:
        for iteration in range(start_iter, start_iter + iterations):
            storage.iter = iteration
            losses = model(training_batch())
            optimizer.zero_grad()
            sum(losses.values()).backward()
            optimizer.step()
            history.append({name: value.item() for name, value in losses.items()})
    return history


def assert_state_dicts_equal(actual, expected):
    assert sorted(actual) == sorted(expected)
    for key, value in expected.items():
        assert torch.equal(actual[key], value), key


# ---------------------------------------------------------------- C-FF


def test_cross_feature_fusion_matches_hand_computation():
    fusion = CrossFeatureFusion(channels=2, hidden_channels=2)
    with torch.no_grad():
        # hidden = relu([mean(high channel 0), -mean(low channel 1)]); logits = [2 * h0, h1]
        fusion.reduce.weight.copy_(torch.tensor([[1.0, 0, 0, 0], [0, 0, 0, -1.0]]))
        fusion.expand.weight.copy_(torch.tensor([[2.0, 0], [0, 1.0]]))
    high = torch.tensor([[[[1.0, 3.0]], [[5.0, 5.0]]],      # image 0: mean(high c0) = 2
                         [[[-1.0, -1.0]], [[2.0, 0.0]]]])   # image 1: mean(high c0) = -1 -> ReLU 0
    low = torch.tensor([[[[0.0, 0.0]], [[-2.0, -4.0]]],     # image 0: -mean(low c1) = 3
                        [[[4.0, 6.0]], [[1.0, 1.0]]]])      # image 1: -mean(low c1) = -1 -> ReLU 0
    expected = torch.tensor([
        [math.exp(4) / (math.exp(4) + math.exp(3)), math.exp(3) / (math.exp(4) + math.exp(3))],
        [0.5, 0.5],
    ])
    assert torch.allclose(fusion.resolution_weights(high, low), expected, atol=1e-6)

    fused = fusion({"p3": high, "p4": low}, {"p3": low, "p4": high})
    for image in range(2):
        w_high, w_low = expected[image].tolist()
        assert torch.allclose(fused["p3"][image], w_high * high[image] + w_low * low[image], atol=1e-6)
    # per image: image 1 alone gets its own weights, not image 0's
    alone = fusion({"p3": high[1:]}, {"p3": low[1:]})["p3"]
    assert torch.allclose(alone[0], 0.5 * high[1] + 0.5 * low[1], atol=1e-6)
    # the same module serves every level, each with the weights of its own pair
    p4_weights = fusion.resolution_weights(low, high)
    assert torch.allclose(fused["p4"], p4_weights[:, :1, None, None] * low + p4_weights[:, 1:, None, None] * high)

    with pytest.raises(ValueError, match="same shape"):
        fusion({"p3": high}, {"p3": low[:, :, :, :1]})
    with pytest.raises(ValueError, match="rename the low-resolution levels"):
        fusion({"p3": high}, {"p2": low})


# ---------------------------------------------------------------- pyramids


@pytest.mark.parametrize("kind, levels, low_res_sources", [
    ("retinanet", DENSE_LEVELS, {"p3": "p2", "p4": "p3", "p5": "p4", "p6": "p5", "p7": "p6"}),
    ("mask_rcnn", RCNN_LEVELS, {"p2": "p1", "p3": "p2", "p4": "p3", "p5": "p4", "p6": "p5"}),
])
@pytest.mark.parametrize("size_divisibility, padding", [(None, 64), (256, 256)])  # 64: 2 x the FPN's 32
def test_paired_levels_have_equal_sizes_for_odd_inputs(kind, levels, low_res_sources, size_divisibility, padding):
    teacher = build_teacher(kind, size_divisibility=size_divisibility).eval()
    assert teacher.level_names == levels and teacher.low_res_sources == low_res_sources
    assert teacher.size_divisibility == padding
    for height, width in [(75, 101), (130, 50), (64, 200)]:
        images = teacher.preprocess_image([{"image": torch.rand(3, height, width) * 255}])
        assert images.tensor.shape[-2] == math.ceil(height / padding) * padding
        assert images.tensor.shape[-1] == math.ceil(width / padding) * padding
        with torch.no_grad():
            features = teacher.path_features(images.tensor, ["high", "low", "fused"])
        for level in levels:
            stride = teacher.level_strides[level]
            expected = (math.ceil(images.tensor.shape[-2] / stride), math.ceil(images.tensor.shape[-1] / stride))
            for path in ("high", "low", "fused"):
                assert tuple(features[path][level].shape[-2:]) == expected, (path, level, height, width)


def test_teacher_padding_must_keep_the_levels_aligned():
    with pytest.raises(ValueError, match="multiples of 64"):
        build_teacher("retinanet", size_divisibility=96)
    with pytest.raises(ValueError, match="multiples of 64"):
        build_teacher("retinanet", size_divisibility=32)


@pytest.mark.parametrize("config", sorted(glob.glob(os.path.join(REPO, "configs/msad/coco_*.py"))))
def test_coco_configs_pad_like_the_authors(config):
    """The COCO configs pad high-resolution batches to 256, as the authors' code."""
    model = LazyConfig.load(config).model
    teacher = model if "teacher" in os.path.basename(config) else model.teacher
    assert teacher.size_divisibility == 256


@pytest.mark.parametrize("config", ["coco_fcos_R50_student_1x.py", "coco_fcos_R50_dual_resolution_student_1x.py"])
def test_coco_fcos_students_train_on_the_authors_padding(config):
    """Built: the teacher's batches and the student's training batches are padded to 256."""
    student = instantiate(LazyConfig.load(os.path.join(REPO, "configs/msad", config)).model)
    assert student.teacher.size_divisibility == 256 and student.training_size_divisibility == 256


def test_p1_level_is_built_from_c1_and_p2():
    torch.manual_seed(0)
    backbone = instantiate(tiny_backbone("p1-p6"))
    assert isinstance(backbone, AlignedFPN) and isinstance(backbone.bottom_up, ResNetWithC1)
    assert list(backbone.output_shape()) == ["p1", "p2", "p3", "p4", "p5", "p6"]
    assert backbone.output_shape()["p1"] == ShapeSpec(channels=CHANNELS, stride=2)
    x = torch.randn(2, 3, 64, 96, requires_grad=False)

    captured = {}
    hook = backbone.fpn_output2.register_forward_pre_hook(lambda module, args: captured.update(p2=args[0]))
    outputs = backbone(x)
    hook.remove()
    assert outputs["p1"].shape == (2, CHANNELS, 32, 48)
    with torch.no_grad():
        c1 = F.relu(backbone.bottom_up.stem.conv1(x))  # the stem's conv block, before the max-pool
        top_down = backbone.fpn_lateral1(c1) + F.interpolate(captured["p2"], scale_factor=2.0, mode="nearest")
        assert torch.allclose(outputs["p1"], backbone.fpn_output1(top_down), atol=1e-5)
        # all levels are detectron2's FPN arithmetic on c1, res2..res5
        reference = FPN.forward(backbone, x)
        for level, value in reference.items():
            assert torch.allclose(outputs[level], value, atol=1e-6), level
        # skipping the finest level leaves the others unchanged
        skipped = backbone(x, skip_finest_level=True)
        assert list(skipped) == ["p2", "p3", "p4", "p5", "p6"]
        assert all(torch.equal(skipped[level], outputs[level]) for level in skipped)

    outputs["p1"].square().mean().backward()
    for parameter in (backbone.bottom_up.stem.conv1.weight, backbone.fpn_lateral1.weight):
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0


def test_resnet_with_c1_keeps_resnet_weights_and_outputs():
    torch.manual_seed(0)
    plain = ResNet(BasicStem(3, 64, norm="BN"), ResNet.make_default_stages(18, norm="BN"),
                   out_features=["stem", "res2", "res5"])
    with_c1 = ResNetWithC1(copy.deepcopy(plain.stem), [list(stage) for stage in copy.deepcopy(plain.stages)],
                           out_features=["c1", "stem", "res2", "res5"]).eval()
    assert list(with_c1.state_dict()) == list(plain.state_dict())
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected, outputs = plain.eval()(x), with_c1(x)
    assert outputs["c1"].shape == (1, 64, 32, 32) and with_c1.output_shape()["c1"].stride == 2
    assert all(torch.equal(outputs[name], expected[name]) for name in ("stem", "res2", "res5"))


def test_slimmed_resnet50_fpn_matches_detectron2_r50_names_and_shapes():
    r50 = instantiate(get_config("common/models/retinanet.py").model.backbone.bottom_up)
    full = aligned_resnet_fpn("p2-p7", width=1.0)
    expected = {key: value.shape for key, value in r50.state_dict().items()}
    assert {key: value.shape for key, value in full.bottom_up.state_dict().items()} == expected
    quarter = aligned_resnet_fpn("p2-p7", width=0.25)
    shapes = quarter.bottom_up.output_shape()
    assert [shapes[f"res{i}"].channels for i in range(2, 6)] == [64, 128, 256, 512]
    assert quarter.bottom_up.stem.out_channels == 16
    assert {name: (s.channels, s.stride) for name, s in quarter.output_shape().items()} == {
        f"p{level}": (256, 2**level) for level in range(2, 8)
    }
    with pytest.raises(ValueError, match="p1-p6"):
        aligned_resnet_fpn("p3-p7")


def test_shifted_levels_names_the_missing_level():
    backbone = aligned_resnet_fpn("p2-p7", depth=18, width=0.25, out_channels=CHANNELS)
    assert shifted_levels({"p3": 8, "p7": 128}, backbone, 1) == {"p3": "p2", "p7": "p6"}
    with pytest.raises(ValueError, match="levels='p1-p6'"):
        shifted_levels({"p2": 4}, backbone, 1)


# ---------------------------------------------------------------- KD


def test_distillation_loss_and_ramp_by_hand():
    student = {"p3": torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]]), "p4": torch.tensor([[[[0.0]], [[2.0]]]])}
    teacher = {"p3": torch.tensor([[[[0.0, 2.0], [5.0, 4.0]]]]), "p4": torch.tensor([[[[1.0]], [[-1.0]]]])}
    # p3: mean(|1|, 0, |2|, 0) = 0.75; p4: mean(1, 3) = 2
    assert aligned_distillation_loss(student, teacher).item() == pytest.approx(2.75)
    assert [distillation_ramp(i, 500) for i in (0, 100, 250, 500, 9000)] == [0.0, 0.2, 0.5, 1.0, 1.0]
    assert distillation_ramp(0, 0) == 1.0
    with pytest.raises(ValueError, match="same levels"):
        aligned_distillation_loss({"p3": student["p3"]}, teacher)
    with pytest.raises(ValueError, match="teacher's batch padding"):
        aligned_distillation_loss({"p3": student["p3"], "p4": student["p3"]}, teacher)


# ---------------------------------------------------------------- teacher


@pytest.mark.parametrize("kind", ["retinanet", "mask_rcnn"])
def test_teacher_losses_are_the_detectors_on_three_paths(kind):
    teacher = build_teacher(kind, fusion_loss_weight=0.4)
    unweighted = copy.deepcopy(teacher)
    unweighted.fusion_loss_weight = 1.0
    detector = copy.deepcopy(teacher.detector).train()
    with EventStorage(0):
        torch.manual_seed(5)
        losses = teacher.train()(training_batch())
        torch.manual_seed(5)
        reference = unweighted.train()(training_batch())
        torch.manual_seed(5)
        own = detector(training_batch())  # 128-px images: the detector's own padding is the teacher's
    assert set(losses) == {f"{name}_{path}" for name in own for path in ("high", "low", "fused")}
    for name, value in own.items():
        assert losses[f"{name}_high"].item() == pytest.approx(value.item(), rel=1e-4), name
        assert losses[f"{name}_fused"].item() == pytest.approx(0.4 * reference[f"{name}_fused"].item(), rel=1e-4)
        assert losses[f"{name}_low"].item() == pytest.approx(reference[f"{name}_low"].item(), rel=1e-4)

    history = train_steps(teacher, 3)
    assert all(math.isfinite(value) for step in history for value in step.values())


@pytest.mark.parametrize("kind", ["retinanet", "mask_rcnn"])
def test_teacher_inference_paths(kind):
    teacher = build_teacher(kind).eval()
    record = {"image": image_record(128, 192, seed=3)["image"], "height": 256, "width": 384}
    with torch.no_grad():
        results = {}
        for path in ("high", "low", "fused"):
            teacher.inference_path = path
            results[path] = teacher([record])[0]["instances"]
        own = teacher.detector.eval()([record])[0]["instances"]
    assert len(own) > 0 and results["high"].image_size == (256, 384)
    assert torch.allclose(results["high"].pred_boxes.tensor, own.pred_boxes.tensor, atol=1e-4)
    assert torch.allclose(results["high"].scores, own.scores, atol=1e-5)
    for path in ("low", "fused"):
        assert len(results[path]) > 0
        assert not torch.allclose(results[path].scores[:5], own.scores[:5])
    if kind == "mask_rcnn":
        assert results["fused"].pred_masks.shape[1:] == (256, 384)
    with pytest.raises(ValueError, match="inference_path"):
        teacher.inference_path = "both"


# ---------------------------------------------------------------- students


def test_student_keeps_its_teacher_frozen():
    teacher = build_teacher("retinanet")
    student = build_student("retinanet", teacher)
    teacher_state = copy.deepcopy(teacher.state_dict())
    student_before = copy.deepcopy(student.detector.state_dict())
    student.train()
    assert student.training and student.detector.training
    assert not any(module.training for module in student.teacher.modules())
    assert not any(parameter.requires_grad for parameter in student.teacher.parameters())

    train_steps(student, 2, start_iter=500)
    assert not any(module.training for module in student.teacher.modules())
    assert all(parameter.grad is None for parameter in student.teacher.parameters())
    assert_state_dicts_equal(student.teacher.state_dict(), teacher_state)  # BN statistics included
    norm = "backbone.bottom_up.stem.conv1.norm.running_mean"
    assert not torch.equal(student.detector.state_dict()[norm], student_before[norm])


def test_student_starts_from_a_teacher_checkpoint_and_resumes(tmp_path):
    teacher = build_teacher("retinanet")
    (tmp_path / "teacher").mkdir()
    DetectionCheckpointer(teacher, str(tmp_path / "teacher")).save("model_final")
    student = build_student("retinanet", build_teacher("retinanet", seed=7))
    DetectionCheckpointer(student).load(str(tmp_path / "teacher" / "model_final.pth"))
    assert_state_dicts_equal(student.teacher.state_dict(), teacher.state_dict())
    assert_state_dicts_equal(student.detector.state_dict(), teacher.detector.state_dict())

    # --resume / --eval-only: the student's own checkpoint restores student and teacher
    train_steps(student, 1, start_iter=500)
    (tmp_path / "student").mkdir()
    DetectionCheckpointer(student, str(tmp_path / "student")).save("model_0000000")
    restored = build_student("retinanet", build_teacher("retinanet", seed=8), seed=9)
    DetectionCheckpointer(restored).load(str(tmp_path / "student" / "model_0000000.pth"))
    assert_state_dicts_equal(restored.state_dict(), student.state_dict())

    # a checkpoint without the teacher's C-FF is not a teacher checkpoint
    with pytest.raises(ValueError, match="train.init_checkpoint"):
        build_student("retinanet", build_teacher("retinanet")).load_state_dict(
            {f"detector.{key}": value for key, value in teacher.detector.state_dict().items()}, strict=False
        )


@pytest.mark.parametrize("kind", ["retinanet", "mask_rcnn"])
def test_student_trains_with_the_ramped_feature_distillation(kind):
    teacher = build_teacher(kind)
    student = build_student(kind, teacher, distill_weight=0.6, warmup_iters=500)
    student.load_state_dict(teacher.state_dict(), strict=False)  # the teacher-checkpoint route
    with torch.no_grad():  # perturb the student so that it no longer equals the teacher's low path
        student.detector.backbone.fpn_output3.weight.mul_(1.5)
    batch = training_batch()
    student.train()
    with EventStorage(250):
        images = student.teacher.preprocess_image(batch)
        with torch.no_grad():
            fused = teacher.eval().path_features(images.tensor, ["fused"])["fused"]
            low_res = F.interpolate(images.tensor, scale_factor=0.5, mode="nearest")
            own = student.student_features(low_res)
            expected = 0.6 * 0.5 * aligned_distillation_loss(own, fused).item()
        torch.manual_seed(0)
        losses = student(batch)
    assert losses["loss_distill"].item() == pytest.approx(expected, rel=1e-4) and expected > 0
    assert "loss_cls" in losses or "loss_rpn_cls" in losses

    history = train_steps(student, 3, start_iter=0)
    assert history[0]["loss_distill"] == 0.0  # ramp(0) = 0
    assert all(math.isfinite(value) for step in history for value in step.values())
    assert history[-1]["loss_distill"] > 0


@pytest.mark.parametrize("low_res_size", [(64, 96), (96, 128)])
def test_student_inference_returns_boxes_in_the_original_frame(low_res_size):
    teacher = build_teacher("retinanet").eval()
    student = build_student("retinanet", teacher).eval()
    student.load_state_dict(teacher.state_dict(), strict=False)
    height, width = low_res_size
    low_res = image_record(height, width, seed=4)["image"]
    high_res = F.interpolate(low_res[None], scale_factor=2.0, mode="nearest")[0]
    original = {"height": 300, "width": 420}
    teacher.inference_path = "low"
    with torch.no_grad():
        mine = student([{"image": low_res, **original}])[0]["instances"]
        reference = teacher([{"image": high_res, **original}])[0]["instances"]
    # the student on the low-resolution image is the teacher's low path on the 2x image
    assert len(mine) > 0 and mine.image_size == (300, 420)
    assert torch.allclose(mine.pred_boxes.tensor, reference.pred_boxes.tensor, atol=1e-3)
    assert torch.allclose(mine.scores, reference.scores, atol=1e-5)
    boxes = mine.pred_boxes.tensor
    assert boxes[:, 0::2].max() <= 420 and boxes[:, 1::2].max() <= 300 and boxes.min() >= 0
    assert boxes[:, 2].max() > 420 / 2  # spans the original frame, not the input's


def test_mask_rcnn_student_masks_in_the_original_frame():
    teacher = build_teacher("mask_rcnn")
    student = build_student("mask_rcnn", teacher).eval()
    with torch.no_grad():
        result = student([{"image": image_record(70, 90, seed=2)["image"], "height": 210, "width": 270}])[0]
    instances = result["instances"]
    assert len(instances) > 0 and instances.pred_masks.shape[1:] == (210, 270)
    assert instances.pred_boxes.tensor[:, 0::2].max() <= 270 and instances.pred_boxes.tensor[:, 1::2].max() <= 210


def test_high_resolution_student_reads_the_teachers_levels():
    teacher = build_teacher("retinanet")
    student = build_student("retinanet", teacher, input_scale=1.0)
    assert student.level_shift == 0 and student.sources == {level: level for level in DENSE_LEVELS}
    assert math.isfinite(sum(train_steps(student, 1, start_iter=500)[0].values()))
    with pytest.raises(ValueError, match=r"2\*\*-k"):
        build_student("retinanet", teacher, input_scale=0.75)


def test_dual_resolution_student(tmp_path):
    teacher = build_teacher("retinanet")
    DetectionCheckpointer(teacher, str(tmp_path)).save("teacher")
    dual_backbone = L(DualResolutionBackbone)(
        high_res=tiny_backbone("p2-p7", width=0.125),
        low_res=tiny_backbone("p2-p7"),
        fusion=L(CrossFeatureFusion)(channels=CHANNELS, hidden_channels=8),
    )
    torch.manual_seed(3)
    student = DualResolutionStudent(instantiate(retinanet_config(dual_backbone)), build_teacher("retinanet", seed=4))
    backbone = student.detector.backbone
    teacher_shapes = teacher.detector.backbone.output_shape()
    assert backbone.output_shape() == {level: teacher_shapes[level] for level in DENSE_LEVELS}
    assert backbone.size_divisibility == 64
    thin_before = copy.deepcopy(backbone.high_res.state_dict())

    DetectionCheckpointer(student).load(str(tmp_path / "teacher.pth"))
    assert_state_dicts_equal(student.teacher.state_dict(), teacher.state_dict())
    assert_state_dicts_equal(backbone.low_res.state_dict(), teacher.detector.backbone.state_dict())
    assert_state_dicts_equal(backbone.fusion.state_dict(), teacher.fusion.state_dict())
    assert_state_dicts_equal(student.detector.head.state_dict(), teacher.detector.head.state_dict())
    assert_state_dicts_equal(backbone.high_res.state_dict(), thin_before)  # another width: its own

    history = train_steps(student, 2, start_iter=500)
    assert all(math.isfinite(value) for step in history for value in step.values())
    assert history[0]["loss_distill"] > 0
    with torch.no_grad():
        result = student.eval()([{"image": image_record(100, 150, seed=6)["image"], "height": 200, "width": 300}])
    assert len(result[0]["instances"]) > 0 and result[0]["instances"].image_size == (200, 300)
