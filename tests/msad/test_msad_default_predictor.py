"""FCOS and the MSAD teacher and students through detectron2's DefaultPredictor (configs/msad/yacs/):
the same model and the same predictions as LazyPredictor on their LazyConfig, with the same
weights; the dual-resolution student builds from yacs as from its LazyConfig."""
import pytest

from projects.common.engine import load_config

FULL_SCALE_TEST_SIZE = (64, 128)  # full-scale models predict on a small image here


def detectable(weights):
    """FCOS's initialisation predicts nothing on a random image: class probabilities under the test
    threshold (the -log 99 prior) and, from distance weights of either sign after the towers'
    ReLU, mostly boxes of zero width or height, which the output drops. Zero the prior and make
    the distance weights positive, so that both predictors have detections to compare."""
    for name in weights:
        if name.endswith("cls_logits.bias"):
            weights[name].zero_()
        elif name.endswith("bbox_pred.weight"):
            weights[name].abs_()


@pytest.mark.parametrize(
    "name, test_size",
    [
        ("synthetic_fcos_R18_FPN_cpu", None),
        ("synthetic_fcos_teacher_cpu", None),
        ("synthetic_fcos_student_cpu", None),
        ("coco_fcos_R50_teacher_1x", FULL_SCALE_TEST_SIZE),
        ("coco_fcos_R50_student_1x", FULL_SCALE_TEST_SIZE),
    ],
)
def test_default_predictor_matches_lazy_predictor(name, test_size, default_predictor_matches_lazy, noise_image):
    default_predictor_matches_lazy(f"msad/yacs/{name}.yaml", f"msad/{name}.py", noise_image(96, 128),
                                   test_size=test_size, prepare_weights=detectable)


def test_dual_resolution_student_builds_from_yacs_as_from_its_lazyconfig(yacs_config_of, yacs_builds_lazy_model):
    """Supplement Table 3's student (no YAML config of its own): the FCOS R50 student's config with
    the dual-resolution meta-architecture and backbone."""
    cfg = yacs_config_of("msad/yacs/coco_fcos_R50_student_1x.yaml", [
        "MODEL.META_ARCHITECTURE", "DualResolutionStudent", "MODEL.BACKBONE.NAME", "build_dual_resolution_backbone",
        "MODEL.MSAD.DUAL_RESOLUTION.HIGH_RES_WIDTH", 0.5, "MODEL.MSAD.DUAL_RESOLUTION.LOW_RES_WIDTH", 1.0,
    ])
    yacs_builds_lazy_model(cfg, load_config("msad/coco_fcos_R50_dual_resolution_student_1x.py"))
