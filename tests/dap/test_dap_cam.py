"""dap.ClassActivationMapper: the CAM of the labelled class, over scales and flips."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from detectron2.layers import ShapeSpec
from detectron2.modeling import Backbone

from dap import ClassActivationMap, ClassActivationMapper
from dap.cam import _View, resized_size
from projects.common.modeling import ImageClassifier


class MirrorEquivariantBackbone(Backbone):
    """1x1 conv + 4x4 average pooling: flipping the input flips the features exactly, and cell i
    is the mean of input pixels [4 i, 4 i + 4), centred on 4 i + 2 (cell_origin=2)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 5, 1)

    def forward(self, x):
        return {"res5": F.avg_pool2d(self.conv(x), 4)}

    def output_shape(self):
        return {"res5": ShapeSpec(channels=5, stride=4)}


class Stride32Backbone(MirrorEquivariantBackbone):
    """The same with 32 x 32 pooling: a ResNet's CAM grid."""

    def forward(self, x):
        return {"res5": F.avg_pool2d(self.conv(x), 32)}

    def output_shape(self):
        return {"res5": ShapeSpec(channels=5, stride=32)}


def _classifier(backbone):
    torch.manual_seed(0)
    classifier = ImageClassifier(
        backbone=backbone, in_feature="res5", num_classes=3,
        pixel_mean=[100.0, 110.0, 120.0], pixel_std=[50.0, 50.0, 50.0],
    )
    return classifier.eval()


@pytest.fixture
def model():
    return _classifier(MirrorEquivariantBackbone())


def _image(height=16, width=24, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).integers(0, 256, (3, height, width), dtype=np.uint8))


def _manual_cam(model, image, class_id):
    normalised = (image.float() - model.pixel_mean) / model.pixel_std
    feature = model.backbone(normalised[None])["res5"][0]
    cam = torch.einsum("c,chw->hw", model.fc.weight[class_id], feature) + model.fc.bias[class_id]
    return ((cam - cam.min()) / (cam.max() - cam.min())).detach().numpy()


def test_cam_is_the_linear_layer_applied_to_the_feature_map(model):
    image = _image()
    mapper = ClassActivationMapper(model, scales=(16,), flip=False, cell_origin=2.0)
    (result,) = mapper([{"image": image, "class_id": 2}])
    np.testing.assert_allclose(result.cam, _manual_cam(model, image, 2), atol=1e-5)
    assert result.image_size == (16, 24)
    assert result.pixels_per_cell == (4.0, 4.0)
    assert result.origin == (0.0, 0.0)  # cell u covers image [4 u, 4 u + 4)
    assert result.cam.min() == 0.0 and result.cam.max() == pytest.approx(1.0)


def test_backbone_runs_in_channels_last_by_default_with_the_same_cams(model):
    layouts = []
    model.backbone.register_forward_pre_hook(lambda module, args: layouts.append(
        args[0].is_contiguous(memory_format=torch.channels_last) and not args[0].is_contiguous()))
    inputs = [{"image": _image(), "class_id": 1}, {"image": _image(seed=1), "class_id": 2}]
    channels_last = ClassActivationMapper(model, scales=(16, 32))(inputs)
    assert layouts and all(layouts), "every view's batch reaches the backbone in channels_last"
    layouts.clear()
    default = ClassActivationMapper(model, scales=(16, 32), channels_last=False)(inputs)
    assert not any(layouts)
    for a, b in zip(channels_last, default):
        np.testing.assert_allclose(a.cam, b.cam, atol=1e-6)
        np.testing.assert_allclose(a.pseudo_boxes(), b.pseudo_boxes(), atol=1e-4)


def test_flip_averaging_undoes_the_mirror(model):
    image = _image()
    plain, flipped = (
        ClassActivationMapper(model, scales=(16,), flip=flip, cell_origin=2.0)([{"image": image, "class_id": 1}])[0]
        for flip in (False, True)
    )
    np.testing.assert_allclose(flipped.cam, plain.cam, atol=1e-5)  # equivariant backbone: same map


def test_scales_average_on_the_largest_scale_grid(model):
    image = _image()
    (result,) = ClassActivationMapper(model, scales=(32, 16), flip=False)([{"image": image, "class_id": 0}])
    assert result.cam.shape == (8, 12)  # 32 / 16 = 2x upsampled input, stride 4
    assert result.pixels_per_cell == (2.0, 2.0)
    assert result.origin == ((0.5 - 2) / 2, (0.5 - 2) / 2)  # ResNet cell centres: 4 i + 0.5 in the 2x input
    same_scale_twice = ClassActivationMapper(model, scales=(16, 16), flip=False)([{"image": image, "class_id": 0}])[0]
    once = ClassActivationMapper(model, scales=(16,), flip=False)([{"image": image, "class_id": 0}])[0]
    np.testing.assert_allclose(same_scale_twice.cam, once.cam, atol=1e-6)


def test_views_are_sampled_at_their_cell_centres(model):
    """A 1 x 2 CAM [0, 1] at stride 4 with ResNet geometry: cell centres at x = 0.5 and 4.5."""
    mapper = ClassActivationMapper(model)
    view = _View(torch.tensor([[0.0, 1.0]]), resized_size=(4, 8), mirrored=False)
    xs, ys = torch.tensor([0.5, 2.5, 4.5, 7.5]), torch.tensor([2.0])
    np.testing.assert_allclose(mapper._sample(view, xs, ys, (4, 8))[0], [0.0, 0.5, 1.0, 1.0], atol=1e-6)
    mirrored = _View(torch.tensor([[0.0, 1.0]]), resized_size=(4, 8), mirrored=True)  # x -> 8 - x
    np.testing.assert_allclose(mapper._sample(mirrored, xs, ys, (4, 8))[0], [1.0, 1.0, 0.75, 0.0], atol=1e-6)


def test_image_resolution_gives_one_value_per_image_pixel(model):
    images = [_image(16, 24, seed=1), _image(20, 12, seed=2)]  # batched with padding
    results = ClassActivationMapper(model, scales=(16, 24), resolution="image")(
        [{"image": image, "class_id": 0} for image in images]
    )
    assert [r.cam.shape for r in results] == [(16, 24), (20, 12)]
    for result in results:
        assert result.pixels_per_cell == (1.0, 1.0)
        assert 0.0 <= result.cam.min() and result.cam.max() <= 1.0 + 1e-6


def test_batched_images_of_different_sizes_match_single_runs(model):
    images = [_image(16, 24, seed=3), _image(24, 16, seed=4)]
    mapper = ClassActivationMapper(model, scales=(16,), flip=True)
    batched = mapper([{"image": image, "class_id": 1} for image in images])
    for image, result in zip(images, batched):
        np.testing.assert_allclose(result.cam, mapper([{"image": image, "class_id": 1}])[0].cam, atol=1e-5)


def test_resize_truncates_the_long_side_like_torchvision_resize():
    """333 x 500 at short side 576: 576 * 500 / 333 = 864.86 -> 864 px (not 865), 27 cells of 32 px."""
    assert resized_size((333, 500), 576) == (576, 864)
    assert resized_size((500, 333), 576) == (864, 576)
    assert resized_size((128, 128), 256) == (256, 256)
    mapper = ClassActivationMapper(_classifier(Stride32Backbone()), scales=(576,), flip=False)
    (result,) = mapper([{"image": _image(333, 500), "class_id": 0}])
    assert result.cam.shape == (18, 27)  # 576 / 32, ceil(864 / 32); 865 px would pad to 28 cells
    assert result.pixels_per_cell == pytest.approx((32 * 500 / 864, 32 * 333 / 576))


def test_resize_is_antialiased_like_pil():
    """Downscaling a 1-pixel checkerboard: PIL's bilinear filter (the authors' resize) averages it
    to mid-grey; ours must agree within one grey level (uint8 rounding)."""
    model = _classifier(MirrorEquivariantBackbone())
    mapper = ClassActivationMapper(model, scales=(16,))
    checkerboard = ((np.indices((48, 72)).sum(axis=0) % 2) * 255).astype(np.uint8)
    image = np.stack([checkerboard, 255 - checkerboard, checkerboard], axis=-1)  # H, W, C
    expected = np.asarray(Image.fromarray(image).resize((24, 16), Image.BILINEAR), dtype=np.float32)
    expected = torch.from_numpy(expected).permute(2, 0, 1)
    ours = mapper._resize(torch.from_numpy(image).permute(2, 0, 1), 16).float()
    assert ours.shape == (3, 16, 24)
    assert (ours - expected).abs().max() <= 1.0  # one grey level
    assert 120 <= float(ours[0].mean()) <= 135  # grey, not aliased to black or white


def test_pseudo_boxes_threshold_the_average_as_given_and_clip_before_nms():
    as_given = ClassActivationMap(np.array([[0.15, 0.25, 0.35, 0.45, 0.60]]), image_size=(1, 5),
                                  pixels_per_cell=(1.0, 1.0))
    np.testing.assert_allclose(as_given.pseudo_boxes(thresholds=(0.5,)), [[4, 0, 5, 1]], atol=1e-12)
    # map boxes [1, 10] and [2, 10] (IoU 8/9) -> image [2, 8] and [4, 8] (IoU 4/6): both pass NMS at 0.8
    cam = np.array([[0.0, 0.3] + [1.0] * 8])
    clipped = ClassActivationMap(cam, image_size=(2, 8), pixels_per_cell=(2.0, 2.0))
    np.testing.assert_allclose(clipped.pseudo_boxes(thresholds=(0.2, 0.5), nms_iou=0.8, weighting="uniform"),
                               [[2, 0, 8, 2], [4, 0, 8, 2]], atol=1e-12)


def test_to_image_boxes_scales_and_clips():
    cam = ClassActivationMap(np.zeros((4, 6)), image_size=(15, 22), pixels_per_cell=(4.0, 4.0), origin=(-1.5, -1.5))
    np.testing.assert_allclose(cam.to_image_boxes(np.array([[1, 0.5, 6, 4]])), [[2.5, 0.5, 22, 14.5]])


def test_errors_name_the_fix(model):
    mapper = ClassActivationMapper(model, scales=(16,))
    with pytest.raises(KeyError, match="class_id"):
        mapper([{"image": _image()}])
    with pytest.raises(ValueError, match="outside the classifier's 3 classes"):
        mapper([{"image": _image(), "class_id": 3}])
    model.train()
    with pytest.raises(RuntimeError, match="model.eval()"):
        mapper([{"image": _image(), "class_id": 0}])
    with pytest.raises(TypeError, match="ImageClassifier"):
        ClassActivationMapper(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="resolution"):
        ClassActivationMapper(model, resolution="pixels")
    with pytest.raises(ValueError, match="scales"):
        ClassActivationMapper(model, scales=())
