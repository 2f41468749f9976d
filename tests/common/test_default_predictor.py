"""detectron2's DefaultPredictor on the collection's YAML configs (projects.common.config.get_cfg):
every YAML config has a LazyConfig twin, every registered model of the collection has a
``from_config`` (each project's tests build its YAML configs), the smoke detector predicts as its
LazyConfig does, a checkpoint written by the launcher loads into both predictors, and wrong yacs
options are errors that say what to do."""
import glob
import inspect
import os

import pytest

from detectron2.modeling import BACKBONE_REGISTRY, META_ARCH_REGISTRY, build_model

from projects.common import engine
from projects.common.config import get_cfg

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SMOKE = "smoke/faster_rcnn_R18_FPN_synthetic.py"
SMOKE_YAML = "smoke/yacs/faster_rcnn_R18_FPN_synthetic.yaml"


def test_every_yaml_config_has_a_lazyconfig_twin():
    """configs/<project>/yacs/<name>.yaml is configs/<project>/<name>.py; the shared bases
    configs/common/yacs/<name>.yaml are configs/common/models/<name>.py."""
    configs = os.path.join(REPO, "configs")
    yaml_files = glob.glob(os.path.join(configs, "*", "yacs", "*.yaml"))
    assert len(yaml_files) >= 30, "the YAML configs are not where this test looks"
    for path in yaml_files:
        folder, name = os.path.split(os.path.relpath(path, configs))
        project = folder.split(os.sep)[0]
        twin = os.path.join(configs, project, "models" if project == "common" else "", name[: -len(".yaml")] + ".py")
        assert os.path.isfile(twin), f"{path} has no LazyConfig twin {twin}"


def test_get_cfg_has_every_projects_options_and_models_have_from_config():
    cfg = get_cfg()
    for node in ("CLASSIFIER", "FCOS", "TIED_RESNET", "TIED_RESNEST", "MSAD", "RESNET_WS", "WSOD", "RAN", "SAN"):
        assert node in cfg.MODEL
    assert cfg.MODEL.RESNETS.WIDTH == 1.0
    ours = [obj for _, obj in list(META_ARCH_REGISTRY) if obj.__module__.startswith(("projects.", "tied_conv.", "dap."))]
    assert {model.__name__ for model in ours} >= {
        "ImageClassifier", "FCOS", "MultiScaleFusionTeacher", "AlignedDistillationStudent", "DualResolutionStudent",
        "WeaklySupervisedRCNN", "NeckClassifier", "ScaleAdaptiveClassifier",
    }
    for model in ours:  # detectron2's build_model calls the class with the config
        assert inspect.ismethod(getattr(model, "from_config", None)), f"{model.__name__} has no from_config"
    backbones = {name for name, obj in BACKBONE_REGISTRY if obj.__module__.startswith(("projects.", "tied_conv."))}
    assert backbones >= {
        "build_scaled_resnet_backbone", "build_scaled_resnet_fpn_backbone", "build_retinanet_scaled_resnet_fpn_backbone",
        "build_aligned_resnet_fpn_backbone", "build_dual_resolution_backbone", "build_resnet_ws_backbone",
        "build_densenet_ws_backbone", "build_san_resnet_backbone", "build_san_mobilenetv2_backbone",
        "build_tied_resnet_fpn_backbone",
    }


def test_smoke_detector(default_predictor_matches_lazy, noise_image):
    default_predictor_matches_lazy(SMOKE_YAML, SMOKE, noise_image(180, 240))


def test_a_checkpoint_of_the_launcher_loads_into_both_predictors(default_predictor_matches_lazy, noise_image, tmp_path):
    output_dir = tmp_path / "run"
    engine.main(engine.parse_args([
        "--config-file", SMOKE, f"train.output_dir={output_dir}", "train.max_iter=2", "train.eval_period=0",
        "train.checkpointer.period=2", "dataloader.train.total_batch_size=2", "dataloader.train.num_workers=0",
    ]))
    checkpoint = str(output_dir / "model_final.pth")
    # a 2-iteration detector is unsure of everything: keep all its detections in both
    default_predictor_matches_lazy(
        SMOKE_YAML, SMOKE, noise_image(180, 240), checkpoint=checkpoint,
        yacs_options=["MODEL.ROI_HEADS.SCORE_THRESH_TEST", 0.0],
        lazy_overrides=["model.roi_heads.box_predictor.test_score_thresh=0.0"],
    )


@pytest.mark.parametrize(
    "yaml_name, options, message",
    [
        ("smoke/yacs/faster_rcnn_R18_FPN_synthetic.yaml", ["MODEL.RESNETS.NUM_GROUPS", 32],
         "MODEL.RESNETS.NUM_GROUPS=32 is not supported by the scaled ResNet builders: set it to 1"),
        ("msad/yacs/synthetic_fcos_teacher_cpu.yaml", ["MODEL.MSAD.DETECTOR", "MultiScaleFusionTeacher"],
         "is an MSAD model: name the detector it wraps"),
        ("msad/yacs/synthetic_fcos_R18_FPN_cpu.yaml", ["MODEL.FCOS.IN_FEATURES", ["p3", "p8"]],
         r"MODEL.FCOS.IN_FEATURES \['p8'\] are not outputs"),
        ("resnet_ws/yacs/synthetic_oicr_R18_WS_cpu.yaml", ["MODEL.WSOD.NECK", "RAN"],
         r"MODEL.WSOD.NECK='RAN' is not one of \['RedundantAdaptationNeck', 'Res5BoxHead'\]"),
        ("resnet_ws/yacs/synthetic_oicr_R18_WS_cpu.yaml", ["MODEL.WSOD.PROPOSAL_GENERATOR", "MCG"],
         "PROPOSAL_GENERATOR='MCG': use \"SelectiveSearch\""),
    ],
)
def test_yacs_errors_name_the_key_and_the_fix(yaml_name, options, message, yacs_config_of):
    with pytest.raises(ValueError, match=message):
        build_model(yacs_config_of(yaml_name, options))
