"""--from slimmable and --from msad: the slimmable ResNet-50 MSAD starts from, and MSAD's FCOS teachers
and students (exactly the authors' keys and shapes, random values), into the MSAD configs."""
import pytest
import torch
import torch.nn.functional as F

from projects.common import checkpoint
from published_checkpoints import config_model, listed_shapes, random_state

WIDTH_OVERRIDE = "model.detector.backbone.width=0.25"
SLIMMABLE_STRIDES = "model.detector.backbone.stride_in_1x1=False"  # the slimmable ResNet's stride is in the 3x3


@pytest.fixture(scope="module")
def slimmable_resnet50():
    """The slimmable ResNet-50 as train.py saves it: {"model": DataParallel state dict}."""
    return random_state(listed_shapes("slimmable_s_resnet50"))


@pytest.fixture(scope="module")
def msad_student():
    """An MSAD FCOS student at width 0.25 (detectron2's "model" entry); its T_* and SE.* are the teacher."""
    return random_state(listed_shapes("msad_fcos_slr50_w025_student"), seed=2)


def teacher_of(student):
    return {key: value for key, value in student.items() if key.startswith(("T_", "SE."))}


def run_cli(tmp_path, checkpoint_dict, *arguments):
    source_file, converted_file = str(tmp_path / "source.pt"), str(tmp_path / "converted.pth")
    torch.save(checkpoint_dict, source_file)
    checkpoint.main(["--input", source_file, "--output", converted_file, *arguments])
    return torch.load(converted_file, weights_only=True)["model"]


def test_slimmable_width_initialises_the_msad_teacher_backbone(slimmable_resnet50, tmp_path):
    source = {key[len("module."):]: value for key, value in slimmable_resnet50.items()}
    converted = run_cli(tmp_path, {"model": slimmable_resnet50}, "--from", "slimmable", "--width", "0.25",
                        "--config", "msad/coco_fcos_R50_teacher_1x.py", WIDTH_OVERRIDE, SLIMMABLE_STRIDES)
    prefix = "detector.backbone.bottom_up."
    assert all(key.startswith(prefix) for key in converted)
    model = config_model("msad/coco_fcos_R50_teacher_1x.py", WIDTH_OVERRIDE, SLIMMABLE_STRIDES)
    not_set = checkpoint.check_loads(converted, model, initialised_prefix=prefix)
    assert not_set and not any(key.startswith(prefix) for key in not_set)  # FPN, head, fusion: the config's

    # res3.0's 3x3 conv (features.4.body.3, stride 2) at width 0.25: the first 32 filters of 32 channels
    bottom_up = model.detector.backbone.bottom_up
    conv = bottom_up.res3[0].conv2
    kernel = source["features.4.body.3.weight"][:32, :32]
    x = torch.randn(1, 32, 16, 16)
    assert torch.equal(conv.weight, kernel)
    assert torch.allclose(F.conv2d(x, conv.weight, stride=conv.stride, padding=conv.padding),
                          F.conv2d(x, kernel, stride=2, padding=1))
    # the switchable BN of width 0.25 is bn.0; the stem reads BGR
    for name in ("weight", "bias", "running_mean", "running_var"):
        assert torch.equal(getattr(bottom_up.res3[0].conv2.norm, name), source[f"features.4.body.4.bn.0.{name}"])
    assert torch.equal(bottom_up.stem.conv1.weight, source["features.0.0.weight"][:16].flip(1))
    assert torch.equal(bottom_up.res2[0].shortcut.weight, source["features.1.shortcut.0.weight"][:64, :16])


def test_slimmable_full_width_is_a_torchvision_layout_classifier(slimmable_resnet50, tmp_path):
    source = {key[len("module."):]: value for key, value in slimmable_resnet50.items()}
    converted = run_cli(tmp_path, {"model": slimmable_resnet50}, "--from", "slimmable", "--width", "1.0",
                        "--config", "common/models/classifier.py")
    assert torch.equal(converted["fc.weight"], source["classifier.0.weight"])
    assert torch.equal(converted["backbone.res5.2.conv3.norm.running_mean"], source["features.16.body.7.bn.3.running_mean"])


def test_slimmable_errors(slimmable_resnet50, capsys):
    source = {key[len("module."):]: value for key, value in slimmable_resnet50.items()}
    with pytest.raises(ValueError, match=r"width 0.3 is not one of the checkpoint's slimmable widths \[0.25, 0.5, 0.75, 1.0\]"):
        checkpoint.convert_slimmable(source, width=0.3)
    with pytest.raises(ValueError, match="not slimmable ResNet names"):
        checkpoint.convert_slimmable({"conv1.weight": torch.ones(1), **source}, width=0.5)
    with pytest.raises(SystemExit):
        checkpoint.main(["--from", "slimmable", "--input", "a.pt", "--output", "b.pth"])
    assert "needs --width" in capsys.readouterr().err


def test_msad_teacher_loads_strictly(msad_student, tmp_path):
    teacher = teacher_of(msad_student)
    converted = run_cli(tmp_path, {"model": teacher, "iteration": 89999}, "--from", "msad",
                        "--config", "msad/coco_fcos_R50_teacher_1x.py", WIDTH_OVERRIDE)
    model = config_model("msad/coco_fcos_R50_teacher_1x.py", WIDTH_OVERRIDE)
    assert checkpoint.check_loads(converted, model) == []

    head = model.detector.head
    assert torch.equal(head.scales, torch.cat([teacher[f"T_fcos_head.scales.{level}.scale"] for level in range(5)]))
    assert torch.equal(head.centerness.weight, teacher["T_fcos_head.ctrness.weight"])
    assert torch.equal(head.cls_tower[4].weight, teacher["T_fcos_head.cls_tower.4.weight"])  # a GroupNorm
    assert torch.equal(model.detector.backbone.fpn_lateral2.weight, teacher["T_backbone.fpn_lateral2.weight"])
    assert torch.equal(model.detector.backbone.bottom_up.stem.conv1.weight,
                       teacher["T_backbone.bottom_up.features.0.0.weight"][:16])  # BGR already: not flipped
    # C-FF: softmax(W2 relu(W1 [pool(P_H), pool(P_L)])) of the authors' SE layer
    high, low = torch.randn(2, 256, 5, 6), torch.randn(2, 256, 5, 6)
    pooled = torch.cat([high, low], dim=1).mean(dim=(2, 3))
    expected = torch.softmax(F.relu(pooled @ teacher["SE.fc.0.weight"].T) @ teacher["SE.fc.2.weight"].T, dim=1)
    with torch.no_grad():
        assert torch.allclose(model.fusion.resolution_weights(high, low), expected, atol=1e-6)


def test_msad_student_fills_student_and_teacher(msad_student, tmp_path):
    overrides = (WIDTH_OVERRIDE, "model.teacher.detector.backbone.width=0.25")
    converted = run_cli(tmp_path, {"model": msad_student}, "--from", "msad",
                        "--config", "msad/coco_fcos_R50_student_1x.py", *overrides)
    assert checkpoint.check_loads(converted, config_model("msad/coco_fcos_R50_student_1x.py", *overrides)) == []
    assert torch.equal(converted["detector.head.cls_logits.bias"], msad_student["S_fcos_head.cls_logits.bias"])
    assert torch.equal(converted["teacher.detector.head.cls_logits.bias"], msad_student["T_fcos_head.cls_logits.bias"])
    assert torch.equal(converted["teacher.fusion.expand.weight"], msad_student["SE.fc.2.weight"])
    assert torch.equal(converted["detector.backbone.bottom_up.res4.5.conv1.norm.running_var"],
                       msad_student["S_backbone.bottom_up.features.13.body.1.bn.0.running_var"])


def test_msad_errors(msad_student, slimmable_resnet50, tmp_path):
    with pytest.raises(ValueError, match="not a dvlab-research/MSAD FCOS checkpoint"):
        checkpoint.convert_msad({key[len("module."):]: value for key, value in slimmable_resnet50.items()})
    with pytest.raises(ValueError, match=r"does not load into the config's MultiScaleFusionTeacher.*shapes differ"):
        run_cli(tmp_path, {"model": teacher_of(msad_student)}, "--from", "msad",
                "--config", "msad/coco_fcos_R50_teacher_1x.py")  # width 1.0: another width's checkpoint
