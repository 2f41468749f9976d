"""The TiedResNet detectors through detectron2's DefaultPredictor (configs/tied_conv/yacs/): the same
model and the same predictions as LazyPredictor on their LazyConfig, with the same weights."""
import pytest

FULL_SCALE_TEST_SIZE = (64, 128)  # full-scale models predict on a small image here


@pytest.mark.parametrize(
    "name, test_size",
    [
        ("synthetic_faster_rcnn_tied_resnet50_fpn_cpu", None),
        ("synthetic_faster_rcnn_resnet50_fpn_cpu", None),
        ("coco_faster_rcnn_tied_resnet50_fpn_2x", FULL_SCALE_TEST_SIZE),
        ("coco_mask_rcnn_tied_resnet50_fpn_2x", FULL_SCALE_TEST_SIZE),
    ],
)
def test_default_predictor_matches_lazy_predictor(name, test_size, default_predictor_matches_lazy, noise_image):
    output = default_predictor_matches_lazy(f"tied_conv/yacs/{name}.yaml", f"tied_conv/{name}.py",
                                            noise_image(96, 128), test_size=test_size)
    assert output["instances"].has("pred_masks") == ("mask_rcnn" in name)
