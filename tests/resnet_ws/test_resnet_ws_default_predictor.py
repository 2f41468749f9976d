"""The weakly supervised detectors through detectron2's DefaultPredictor (configs/resnet_ws/yacs/):
the same model and the same predictions as LazyPredictor on their LazyConfig, with the same weights,
on proposals made on the fly; the classification form builds from yacs as from its LazyConfig."""
import pytest

from projects.common.engine import load_config

FULL_SCALE_TEST_SIZE = (64, 128)  # full-scale models predict on a small image here


@pytest.mark.parametrize(
    "name, test_size",
    [
        ("synthetic_oicr_R18_WS_cpu", None),
        ("synthetic_wsddn_R18_WS_cpu", None),
        ("synthetic_oicr_reg_R18_WS_cpu", None),
        ("voc07_oicr_R50_WS", FULL_SCALE_TEST_SIZE),
        ("voc07_wsddn_R50_WS", FULL_SCALE_TEST_SIZE),
        ("voc07_oicr_reg_R50_WS", FULL_SCALE_TEST_SIZE),
        ("voc07_oicr_R50_C4", FULL_SCALE_TEST_SIZE),
    ],
)
def test_default_predictor_matches_lazy_predictor(name, test_size, default_predictor_matches_lazy, noise_image):
    default_predictor_matches_lazy(f"resnet_ws/yacs/{name}.yaml", f"resnet_ws/{name}.py", noise_image(96, 128),
                                   test_size=test_size)


def test_classification_form_builds_from_yacs_as_from_its_lazyconfig(yacs_config_of, yacs_builds_lazy_model):
    """The NeckClassifier that pre-trains the CPU detectors' backbone and neck (no YAML config:
    DefaultPredictor does not crop to its fixed input size), from the CPU detector's config."""
    cfg = yacs_config_of("resnet_ws/yacs/synthetic_oicr_R18_WS_cpu.yaml", [
        "MODEL.META_ARCHITECTURE", "NeckClassifier", "MODEL.RESNET_WS.OUTPUT_STRIDE", 16, "MODEL.RESNETS.NORM", "BN",
        "MODEL.BACKBONE.FREEZE_AT", 0, "MODEL.CLASSIFIER.NUM_CLASSES", 8,
    ])
    yacs_builds_lazy_model(cfg, load_config("resnet_ws/synthetic_classifier_R18_WS_cpu.py"))
