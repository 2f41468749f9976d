"""DAP's classifier and detectors through detectron2's DefaultPredictor (configs/dap/yacs/): the same
model and the same predictions as LazyPredictor on their LazyConfig, with the same weights."""
import pytest

FULL_SCALE_TEST_SIZE = (64, 128)  # full-scale models predict on a small image here
KEEP_EVERY_DETECTION = {  # a random detector spreads its confidence over 1000 classes, under 0.05
    "yacs_options": ["MODEL.ROI_HEADS.SCORE_THRESH_TEST", 0.0],
    "lazy_overrides": ["model.roi_heads.box_predictor.test_score_thresh=0.0"],
}


@pytest.mark.parametrize(
    "name, lazy_name, test_size, options",
    [
        ("synthetic_classifier_cpu", "synthetic_classifier_cpu", None, {}),
        ("synthetic_pretrain_faster_rcnn_cpu", "synthetic_pretrain_faster_rcnn_cpu", None, {}),
        ("synthetic_finetune_faster_rcnn_cpu", "synthetic_finetune_faster_rcnn_cpu", None, {}),
        # the pre-training config has no test loader: its model evaluated as a classifier has one
        ("pretrain_faster_rcnn_R50_FPN_in1m", "imagenet_detector_as_classifier_R50", FULL_SCALE_TEST_SIZE,
         KEEP_EVERY_DETECTION),
        ("finetune_coco_faster_rcnn_R50_FPN_1x", "finetune_coco_faster_rcnn_R50_FPN_1x", FULL_SCALE_TEST_SIZE, {}),
    ],
)
def test_default_predictor_matches_lazy_predictor(name, lazy_name, test_size, options, default_predictor_matches_lazy,
                                                  noise_image):
    output = default_predictor_matches_lazy(f"dap/yacs/{name}.yaml", f"dap/{lazy_name}.py", noise_image(96, 128),
                                            test_size=test_size, **options)
    if "classifier" in name:
        assert output["scores"].shape == (8,)
