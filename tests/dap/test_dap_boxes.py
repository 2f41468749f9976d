"""dap.boxes_from_cam on hand-made CAMs with known answers."""
import math
import time

import numpy as np
import pytest

from dap import boxes_from_cam


def _blank(height=12, width=16):
    return np.zeros((height, width))


def test_uniform_rectangle_gives_exactly_its_box():
    cam = _blank()
    cam[2:6, 3:10] = 1.0  # rows 2..5, columns 3..9: pixels cover [3, 10) x [2, 6)
    boxes = boxes_from_cam(cam)
    np.testing.assert_allclose(boxes, [[3, 2, 10, 6]], atol=1e-9)  # 4 thresholds, merged by NMS


def test_single_pixel_is_a_unit_box():
    cam = _blank()
    cam[4, 7] = 5.0
    np.testing.assert_allclose(boxes_from_cam(cam), [[7, 4, 8, 5]], atol=1e-9)


def test_cam_weighted_moments_match_hand_computation():
    cam = np.array([[0.0, 0.5, 1.0, 0.0]])  # already in [0, 1]
    boxes = boxes_from_cam(cam, thresholds=(0.2,))
    centres, weights = np.array([1.5, 2.5]), np.array([0.5, 1.0])
    mean = (weights @ centres) / weights.sum()
    variance = (weights @ (centres - mean) ** 2) / weights.sum() + 1 / 12
    half_width = math.sqrt(12 * variance) / 2
    np.testing.assert_allclose(boxes, [[mean - half_width, 0.0, mean + half_width, 1.0]], atol=1e-9)
    uniform = boxes_from_cam(cam, thresholds=(0.2,), weighting="uniform")
    np.testing.assert_allclose(uniform, [[1, 0, 3, 1]], atol=1e-9)


def test_small_components_are_dropped_relative_to_the_largest():
    cam = _blank()
    cam[1:5, 1:5] = 1.0  # 16 pixels
    cam[8:10, 10:13] = 1.0  # 6 pixels < 0.5 * 16
    np.testing.assert_allclose(boxes_from_cam(cam, thresholds=(0.5,)), [[1, 1, 5, 5]])
    both = boxes_from_cam(cam, thresholds=(0.5,), min_area_ratio=0.3)
    np.testing.assert_allclose(both, [[1, 1, 5, 5], [10, 8, 13, 10]])  # larger first
    capped = boxes_from_cam(cam, thresholds=(0.5,), min_area_ratio=0.3, max_components_per_threshold=1)
    np.testing.assert_allclose(capped, [[1, 1, 5, 5]])


def test_connectivity_option():
    cam = _blank()
    cam[2:4, 2:4] = 1.0
    cam[4:6, 4:6] = 1.0  # touches the first square only at a corner
    assert len(boxes_from_cam(cam, thresholds=(0.5,), connectivity=4)) == 2
    np.testing.assert_allclose(boxes_from_cam(cam, thresholds=(0.5,), connectivity=8), [[2, 2, 6, 6]], atol=1.0)


def test_component_area_option_pixels_vs_bounding_rectangle():
    cam = _blank(12, 12)
    cam[0:3, 0:3] = 1.0  # 9 pixels, rectangle 9
    for i in range(5):
        cam[6 + i, 6 + i] = 1.0  # diagonal: 5 pixels, rectangle 25 (one component with 8-connectivity)
    by_pixels = boxes_from_cam(cam, thresholds=(0.5,), connectivity=8, component_area="pixels")
    assert len(by_pixels) == 2  # 5 >= 0.5 * 9
    by_rectangle = boxes_from_cam(cam, thresholds=(0.5,), connectivity=8, component_area="rectangle")
    assert len(by_rectangle) == 1  # 9 < 0.5 * 25: the square is dropped
    assert by_rectangle[0][0] >= 6


def test_thresholds_pool_nested_boxes_and_nms_merges_near_duplicates():
    cam = _blank(20, 20)
    cam[2:18, 2:18] = 0.35  # low plateau
    cam[7:13, 7:13] = 1.0  # bright core
    no_nms = boxes_from_cam(cam, nms_iou=1.0)
    assert len(no_nms) == 4  # tau 0.2 and 0.3 see the plateau, 0.4 and 0.5 the core
    areas = (no_nms[:, 2] - no_nms[:, 0]) * (no_nms[:, 3] - no_nms[:, 1])
    assert np.all(np.diff(areas) <= 0)  # larger first
    merged = boxes_from_cam(cam, nms_iou=0.8)
    assert len(merged) == 2  # identical boxes merged, plateau and core kept
    np.testing.assert_allclose(merged[1], [7, 7, 13, 13], atol=1e-9)


def test_normalize_false_thresholds_the_map_as_given():
    cam = [[0.15, 0.25, 0.35, 0.45, 0.60]]
    as_given = boxes_from_cam(cam, thresholds=(0.5,), nms_iou=1.0, normalize=False)
    np.testing.assert_allclose(as_given, [[4, 0, 5, 1]], atol=1e-12)  # only 0.60 > 0.5: pixel 4
    # normalised, (v - 0.15) / 0.45 = [0, 2/9, 4/9, 2/3, 1]: pixels 3 and 4, weighted 2/3 and 1
    weights, centres = np.array([2 / 3, 1.0]), np.array([3.5, 4.5])
    mean = weights @ centres / weights.sum()
    half_width = math.sqrt(12 * (weights @ (centres - mean) ** 2 / weights.sum() + 1 / 12)) / 2
    normalised = boxes_from_cam(cam, thresholds=(0.5,), nms_iou=1.0)
    assert mean + half_width > 5  # the fit is wider than the map: clipped to it
    np.testing.assert_allclose(normalised, [[mean - half_width, 0, 5, 1]], atol=1e-12)
    # a constant map above the threshold is one salient region when taken as given
    np.testing.assert_allclose(boxes_from_cam(np.full((2, 3), 0.7), normalize=False), [[0, 0, 3, 2]], atol=1e-12)


def test_boxes_are_clipped_to_the_image_before_nms():
    """Map pixel x -> image 2 x, image 8 x 2 px. Boxes [1, 10] and [2, 10] (IoU 8/9 in the map)
    become [2, 8] and [4, 8] in the image (IoU 4/6): NMS at 0.8 keeps both only after clipping."""
    cam = np.zeros((1, 10))
    cam[0, 1:] = 0.3  # tau 0.2: pixels 1..9
    cam[0, 2:] = 1.0  # tau 0.5: pixels 2..9

    def to_image(boxes):
        return np.clip(boxes * 2.0, 0.0, [8, 2, 8, 2])

    arguments = dict(thresholds=(0.2, 0.5), nms_iou=0.8, weighting="uniform")
    clipped_first = boxes_from_cam(cam, to_image=to_image, **arguments)
    np.testing.assert_allclose(clipped_first, [[2, 0, 8, 2], [4, 0, 8, 2]], atol=1e-12)
    in_map = boxes_from_cam(cam, **arguments)  # NMS on the map's boxes: the smaller one goes
    np.testing.assert_allclose(in_map, [[1, 0, 10, 1]], atol=1e-12)


def test_box_scale_does_not_depend_on_the_cam_range():
    cam = np.random.default_rng(0).random((10, 14))
    np.testing.assert_allclose(boxes_from_cam(cam), boxes_from_cam(cam * 7.0 - 3.0))


def test_boxes_stay_inside_the_map():
    cam = np.random.default_rng(1).random((9, 11)) ** 3
    boxes = boxes_from_cam(cam, min_area_ratio=0.0, nms_iou=1.0)
    assert len(boxes) > 0
    assert boxes[:, [0, 2]].min() >= 0 and boxes[:, [0, 2]].max() <= 11
    assert boxes[:, [1, 3]].min() >= 0 and boxes[:, [1, 3]].max() <= 9


@pytest.mark.parametrize("cam", [np.full((5, 5), 0.7), np.zeros((0, 0)), np.zeros((0, 4))])
def test_constant_or_empty_cam_gives_no_boxes(cam):
    boxes = boxes_from_cam(cam)
    assert boxes.shape == (0, 4)


@pytest.mark.parametrize(
    "cam, options, message",
    [
        (np.array([[0.0, np.nan]]), {}, "NaN"),
        (np.array([[0.0, np.inf]]), {}, "NaN or infinite"),
        (np.zeros((2, 2, 2)), {}, "2-D"),
        (np.eye(3), {"thresholds": (0.0,)}, "thresholds"),
        (np.eye(3), {"thresholds": ()}, "thresholds"),
        (np.eye(3), {"nms_iou": 0.0}, "nms_iou"),
        (np.eye(3), {"min_area_ratio": 1.5}, "min_area_ratio"),
        (np.eye(3), {"connectivity": 6}, "connectivity"),
        (np.eye(3), {"component_area": "hull"}, "component_area"),
        (np.eye(3), {"weighting": "square"}, "weighting"),
        (np.eye(3), {"max_components_per_threshold": -1}, "max_components"),
    ],
)
def test_invalid_input_is_a_clear_error(cam, options, message):
    with pytest.raises(ValueError, match=message):
        boxes_from_cam(cam, **options)


def checkerboard(size):
    return (np.indices((size, size)).sum(axis=0) % 2).astype(np.float64)


def test_checkerboard_worst_case_is_near_linear_and_exact():
    """Every other pixel its own component at every threshold (131072 boxes before NMS): 534 s
    with per-component masks and an all-against-all NMS, now well under a second (CPU time)."""
    cam = checkerboard(256)
    start = time.process_time()
    boxes = boxes_from_cam(cam)
    seconds = time.process_time() - start
    ys, xs = np.nonzero(cam)  # raster order: equal areas keep the first threshold's boxes in label order
    np.testing.assert_allclose(boxes, np.stack([xs, ys, xs + 1, ys + 1], axis=1), atol=1e-12)
    assert seconds < 0.5, f"{seconds:.2f} s of CPU time"
    assert len(boxes_from_cam(cam, connectivity=8)) == 1, "8-connected, the checkerboard is one component"


@pytest.mark.parametrize("cam", [checkerboard(12), np.random.default_rng(2).random((24, 20))], ids=["checkerboard", "noise"])
@pytest.mark.parametrize("nms_iou", [0.3, 0.8])
def test_many_components_and_boxes_agree_with_the_reference(cam, nms_iou):
    """Past 16 kept components the moments come from per-pixel sums and past 64 boxes the NMS
    compares only boxes sharing a grid cell: the same boxes as the plain reference."""
    from benchmarks.dap_pseudo_boxes import reference_boxes_from_cam

    for connectivity in (4, 8):
        arguments = dict(min_area_ratio=0.0, nms_iou=nms_iou, connectivity=connectivity)
        ours, reference = boxes_from_cam(cam, **arguments), reference_boxes_from_cam(cam, **arguments)
        np.testing.assert_allclose(ours, reference, atol=1e-9)
    assert len(boxes_from_cam(cam, min_area_ratio=0.0, nms_iou=1.0)) > 64


def test_unsorted_and_repeated_thresholds_give_each_thresholds_boxes():
    """Thresholds are visited from the lowest up (each one's region lies inside the previous
    one's), whatever their order; a repeated one adds its boxes again, as before."""
    cam = np.zeros((10, 10))
    cam[1:9, 1:9] = 0.35
    cam[4:6, 4:6] = 1.0
    arguments = dict(nms_iou=1.0, normalize=False, weighting="uniform")
    expected = [[1, 1, 9, 9], [4, 4, 6, 6]]
    np.testing.assert_allclose(boxes_from_cam(cam, thresholds=(0.2, 0.5), **arguments), expected, atol=1e-12)
    np.testing.assert_allclose(boxes_from_cam(cam, thresholds=(0.5, 0.2), **arguments), expected, atol=1e-12)
    repeated = boxes_from_cam(cam, thresholds=(0.5, 0.2, 0.5), **arguments)
    np.testing.assert_allclose(repeated, expected + [[4, 4, 6, 6]], atol=1e-12)


@pytest.mark.parametrize("size", [4, 30], ids=["few boxes", "many boxes"])
def test_empty_boxes_never_suppress_each_other(size):
    """Boxes that ``to_image`` clips to nothing have IoU 0 / 0 with each other: no overlap, kept."""
    cam = checkerboard(size)
    expected = len(boxes_from_cam(cam, nms_iou=1.0))
    empty = boxes_from_cam(cam, to_image=lambda boxes: np.full_like(boxes, 5.0))
    assert len(empty) == expected and (empty == 5.0).all()
