"""SAN classifiers through detectron2's DefaultPredictor (configs/san/yacs/): the same model and the
same scores as LazyPredictor on their LazyConfig, with the same weights, at the test resolution."""
import pytest


@pytest.mark.parametrize(
    "name, test_size",
    [
        ("san_R18_synthetic_cpu", None),
        ("san_MobileNetV2_synthetic_cpu", None),
        ("san_R18_imagenet", (96, 10000)),  # a training resolution: a small image here
        ("san_R50_imagenet", (96, 10000)),
    ],
)
def test_default_predictor_matches_lazy_predictor(name, test_size, default_predictor_matches_lazy, noise_image):
    output = default_predictor_matches_lazy(f"san/yacs/{name}.yaml", f"san/{name}.py", noise_image(64, 80),
                                            test_size=test_size)
    assert output["scores"].shape == ((8,) if "synthetic" in name else (1000,))
