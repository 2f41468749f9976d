"""DAP step 2 tools: the CAM / pseudo-box figure (dap.visualize) and the pseudo-box benchmark
(benchmarks.dap_pseudo_boxes, with its plain reference implementation of the box extraction)."""
import itertools
import json
import os

import cv2
import numpy as np
import pytest
import torch

from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import instantiate
from detectron2.data import DatasetCatalog, MetadataCatalog

import projects.common.data  # noqa: F401  (registers the synthetic datasets)
from benchmarks import dap_pseudo_boxes
from benchmarks.dap_pseudo_boxes import compare_box_sets, reference_boxes_from_cam
from dap import visualize
from dap.boxes import boxes_from_cam
from dap.cam import ClassActivationMap
from dap.pseudo_boxes import PseudoBoxOptions
from projects.common.engine import load_config

CONFIG = "configs/dap/synthetic_classifier_cpu.py"
DATASET = "synthetic_shapes_cls_val"
FAST_CAMS = ["--scales", "64", "--no-flip"]  # one small scale: CAMs of a few images in well under a second


@pytest.fixture(scope="module")
def random_classifier(tmp_path_factory):
    """(model, checkpoint path) of the CPU classifier with random weights."""
    torch.manual_seed(0)
    model = instantiate(load_config(CONFIG).model).eval()
    directory = tmp_path_factory.mktemp("classifier")
    DetectionCheckpointer(model, save_dir=str(directory)).save("random")
    return model, str(directory / "random.pth")


# ---------------------------------------------------------------------------------------------
# Figure


def colour_fraction(region: np.ndarray, rgb, tolerance=60) -> float:
    """Fraction of the pixels of an RGB region within ``tolerance`` of ``rgb`` in every channel."""
    return float((np.abs(region.astype(int) - rgb) <= tolerance).all(axis=-1).mean())


MAGENTA, LIME = (255, 0, 255), (0, 255, 0)


def test_panel_draws_boxes_on_the_image_and_the_cam_as_a_heatmap():
    image_bgr = np.full((64, 96, 3), 128, dtype=np.uint8)
    cam = np.zeros((2, 3), dtype=np.float32)
    cam[0, 0] = 1.0  # feature-grid CAM: 32 x 32 px cells, the top-left one hot
    cam_map = ClassActivationMap(cam, image_size=(64, 96), pixels_per_cell=(32.0, 32.0))
    panel = visualize.draw_cam_and_boxes(image_bgr, cam_map, np.array([[8.0, 8.0, 40.0, 40.0]]),
                                         gt_boxes=np.array([[50.0, 20.0, 90.0, 60.0]]))

    scale = 4  # short side 64 -> DISPLAY_SHORT_SIDE 256
    assert panel.dtype == np.uint8 and panel.shape[0] == 64 * scale
    half_width = 96 * scale
    gap = panel.shape[1] - 2 * half_width
    assert 0 < gap < 20 and (panel[:, half_width : half_width + gap] == 255).all()
    left, right = panel[:, :half_width], panel[:, half_width + gap :]

    def edge(image, x0, x1, y):  # a band across a horizontal box edge (image pixels)
        return image[y * scale - 4 : y * scale + 4, x0 * scale : x1 * scale]

    assert colour_fraction(edge(left, 16, 32, 8), MAGENTA) > 0.2, "pseudo box on the image"
    assert colour_fraction(edge(left, 60, 80, 20), LIME) > 0.1, "real box on the image"
    assert colour_fraction(edge(right, 16, 32, 8), MAGENTA) > 0.2, "pseudo box on the heatmap"
    assert colour_fraction(edge(right, 60, 80, 20), LIME) == 0, "real boxes only on the image"
    assert colour_fraction(left[40 * scale :, : 40 * scale], (128, 128, 128), 2) > 0.95, "image untouched"
    hot, cold = right[20 * scale : 28 * scale, 4 * scale : 8 * scale], right[48 * scale :, 70 * scale :]
    assert hot[..., 0].mean() > hot[..., 2].mean() + 40, "hot cell red in jet"
    assert cold[..., 2].mean() > cold[..., 0].mean() + 40, "cold cells blue in jet"

    with pytest.raises(ValueError, match="pass the image the CAM was made from"):
        visualize.draw_cam_and_boxes(image_bgr[:32], cam_map, np.zeros((0, 4)))


def test_sampling_spreads_over_the_classes_and_is_seeded():
    records = DatasetCatalog.get(DATASET)
    indices = visualize.sample_across_classes(records, 8, seed=0)
    assert indices == sorted(set(indices)) and len(indices) == 8
    assert sorted(records[index]["class_id"] for index in indices) == list(range(8))
    assert visualize.sample_across_classes(records, 8, seed=0) == indices
    assert visualize.sample_across_classes(records, 8, seed=1) != indices
    assert len(set(visualize.sample_across_classes(records, len(records), seed=0))) == len(records)


def write_pseudo_box_json(path, records, image_root, boxes_per_record):
    images = [{"id": i + 1, "file_name": os.path.relpath(record["file_name"], image_root), "height": 128,
               "width": 128, "class_id": record["class_id"]} for i, record in enumerate(records)]
    annotations = [{"id": len(images) * 10 + k, "image_id": i + 1, "category_id": records[i]["class_id"] + 1,
                    "bbox": box, "area": box[2] * box[3], "iscrowd": 0}
                   for i, boxes in enumerate(boxes_per_record) for k, box in enumerate(boxes)]
    with open(path, "w") as f:
        json.dump({"info": {"image_root": image_root, "settings": {"options": {"scales": [288, 576]}}},
                   "images": images, "annotations": annotations, "categories": []}, f)
    return str(path)


def test_boxes_are_read_from_a_generated_json_by_image_path(tmp_path):
    records = DatasetCatalog.get(DATASET)[:3]
    image_root = os.path.dirname(os.path.dirname(records[0]["file_name"]))
    json_file = write_pseudo_box_json(tmp_path / "boxes.json", records[:2], image_root,
                                      [[[1, 2, 10, 20]], [[0, 0, 5, 5], [3, 4, 6, 7]]])
    boxes, stored_options = visualize.read_pseudo_box_json(json_file, records[1::-1], image_root=None)
    np.testing.assert_array_equal(boxes[0], [[0, 0, 5, 5], [3, 4, 9, 11]])  # XYWH -> XYXY, record order
    np.testing.assert_array_equal(boxes[1], [[1, 2, 11, 22]])
    assert stored_options == {"scales": [288, 576]}
    with pytest.raises(KeyError, match="--boxes file generated for this --dataset"):
        visualize.read_pseudo_box_json(json_file, records, image_root=None)


def test_panels_use_the_json_boxes_when_given(random_classifier, tmp_path):
    model, _ = random_classifier
    records = DatasetCatalog.get(DATASET)
    indices = visualize.sample_across_classes(records, 2, seed=3)
    image_root = os.path.dirname(os.path.dirname(records[0]["file_name"]))
    json_file = write_pseudo_box_json(tmp_path / "boxes.json", [records[i] for i in indices], image_root,
                                      [[[1, 2, 10, 20]] * 3, []])
    options = PseudoBoxOptions(scales=(64,), flip=False)
    panels, titles = visualize.pseudo_box_panels(model, DATASET, 2, seed=3, options=options, boxes_json=json_file)
    names = [f"#{i} {MetadataCatalog.get(DATASET).thing_classes[records[i]['class_id']]}" for i in indices]
    assert [title.split(":")[0] for title in titles] == names
    assert "3 pseudo boxes, best IoU" in titles[0] and "0 pseudo boxes, best IoU 0.00" in titles[1]
    assert panels[0].shape == panels[1].shape and panels[0].shape[0] == 256


def test_command_line_writes_the_figure_atomically(random_classifier, tmp_path):
    _, weights = random_classifier
    output = tmp_path / "figures" / "boxes.png"
    visualize.main(["--config-file", CONFIG, "--weights", weights, "--dataset", DATASET, "--output", str(output),
                    "--num-images", "3", "--columns", "3", *FAST_CAMS])
    figure = cv2.imread(str(output))
    assert figure is not None and figure.shape[1] > figure.shape[0] > 100, "one row of three panels"
    assert os.listdir(output.parent) == ["boxes.png"], "no temporary file left"
    with pytest.raises(ValueError, match=r"--num-images must be in \[1, 160\]"):
        visualize.main(["--config-file", CONFIG, "--weights", weights, "--dataset", DATASET, "--output",
                        str(output), "--num-images", "161", *FAST_CAMS])


# ---------------------------------------------------------------------------------------------
# Reference box extraction and benchmark


def test_reference_fits_the_exact_rectangle_of_a_uniform_block():
    cam = np.zeros((12, 16))
    cam[2:6, 3:10] = 1.0
    np.testing.assert_allclose(reference_boxes_from_cam(cam, weighting="uniform"), [[3, 2, 10, 6]], atol=1e-12)


def hand_made_cams():
    """Maps with several components: two blocks, a ring with a blob inside, diagonal neighbours, equal twins."""
    two_blocks = np.zeros((20, 30))
    two_blocks[2:10, 2:14] = 0.9
    two_blocks[12:18, 18:28] = np.linspace(0.5, 1.0, 10)
    ring = np.zeros((21, 21))
    cv2.circle(ring, (10, 10), 8, 1.0, thickness=3)
    ring[9:12, 9:12] = 0.6
    diagonal = np.kron(np.diag([1.0, 2, 3, 4]), np.ones((3, 3)))  # blocks touching at corners
    twins = np.zeros((10, 20))
    twins[2:6, 2:6] = twins[2:6, 12:16] = 1.0
    return [two_blocks, ring, diagonal, twins]


def random_cams():
    """Random bumps over faint noise (several blobs of various sizes above each threshold), and
    ragged blurred noise (components whose pixels touch diagonally: 4- and 8-connectivity differ)."""
    rng = np.random.default_rng(0)
    cams = []
    for height, width in [(24, 32), (40, 40), (17, 23), (32, 48)]:
        rows, columns = np.mgrid[:height, :width]
        cam = 0.05 * rng.random((height, width))
        for _ in range(rng.integers(3, 6)):
            y, x, sigma, peak = rng.uniform(0, height), rng.uniform(0, width), rng.uniform(1.5, 4), rng.uniform(0.6, 1)
            cam += peak * np.exp(-((rows - y) ** 2 + (columns - x) ** 2) / (2 * sigma**2))
        cams.append(cam)
    cams.append(cv2.GaussianBlur(rng.random((30, 30)), (0, 0), 0.7))
    return cams


@pytest.mark.parametrize("connectivity,component_area,weighting,max_components",
                         list(itertools.product((4, 8), ("pixels", "rectangle"), ("cam", "uniform"), (0, 2))))
def test_reference_agrees_with_boxes_from_cam(connectivity, component_area, weighting, max_components):
    arguments = dict(connectivity=connectivity, component_area=component_area, weighting=weighting,
                     max_components_per_threshold=max_components, min_area_ratio=0.3)
    several_boxes = 0
    for cam in hand_made_cams() + random_cams():
        for nms_iou in (0.8, 1.0):
            ours = boxes_from_cam(cam, nms_iou=nms_iou, **arguments)
            reference = reference_boxes_from_cam(cam, nms_iou=nms_iou, **arguments)
            np.testing.assert_allclose(reference, ours, atol=1e-9, err_msg=f"{cam.shape} nms {nms_iou}")
            several_boxes += len(ours) > 2
    assert several_boxes >= 10, "the maps must exercise several components"


def test_box_set_comparison_counts_differences():
    a = [np.array([[0.0, 0, 10, 10], [20, 20, 30, 30]]), np.array([[0.0, 0, 4, 4]])]
    assert compare_box_sets(a, a) == {"same_box_sets": 1.0, "mean_matched_iou": 1.0, "unmatched_boxes": 0,
                                      "largest_coordinate_difference": 0.0}
    b = [np.array([[20.0, 20, 30, 30], [0, 0, 10, 10]]), np.array([[0.0, 0, 4, 2], [50, 50, 60, 60]])]
    agreement = compare_box_sets(a, b)
    assert agreement["same_box_sets"] == 0.5, "order does not matter, a shifted or extra box does"
    assert agreement["mean_matched_iou"] == pytest.approx((1 + 1 + 0.5) / 3)
    assert agreement["unmatched_boxes"] == 1 and agreement["largest_coordinate_difference"] == 2.0


def test_benchmark_runs_on_a_few_images(random_classifier, tmp_path, capsys):
    _, weights = random_classifier
    results = dap_pseudo_boxes.main(["--weights", weights, "--num-images", "4", "--batch-size", "2", "--repeats", "1",
                                     "--worst-case-sizes", "16", "--output-dir", str(tmp_path), *FAST_CAMS])
    assert results["images"] == 4
    assert results["agreement"]["same_box_sets"] == 1.0, "reference and boxes_from_cam agree on real CAMs"
    assert results["plain_agreement"]["same_box_sets"] == 1.0, "so does the plain SciPy/NumPy loop"
    assert results["layout_agreement"]["unmatched_boxes"] == 0, "channels_last CAMs give the same boxes"
    assert set(results["ms_per_image"]) == {"default", "channels_last", "ours", "plain", "reference"}
    assert results["worst_cases"][0][:3] == ["16x16 checkerboard", 128, 128]
    assert list(results["thresholds"]) == ["0.2", "0.3", "0.4", "0.5", "Multi"]
    assert list(results["nms"]) == ["0.5", "0.6", "0.7", "0.8", "0.9", "1"]
    assert all(results["thresholds"][tau]["boxes_per_image"] >= 1 for tau in ("0.2", "0.5")), "the peak is above tau"
    assert results["nms"]["1"]["boxes_per_image"] == max(row["boxes_per_image"] for row in results["nms"].values())
    assert results["thresholds"]["Multi"] == results["nms"]["0.8"], "Multi at NMS 0.8 is the default setting"
    assert "recall@0.5" in results["nms"]["0.8"], "the synthetic split has real boxes"
    assert sorted(os.listdir(tmp_path)) == ["dap_pseudo_boxes.md", "dap_pseudo_boxes.png"]
    printed = capsys.readouterr().out
    lines = [" ".join(line.split()) for line in printed.splitlines()]  # tables' cells without their padding
    assert "| CAM threshold | 0.2 | 0.3 | 0.4 | 0.5 | Multi |" in lines
    assert any(line.startswith("| paper boxes / image (IN-1M) | 2.047 |") for line in lines)
    with open(tmp_path / "dap_pseudo_boxes.md") as f:
        assert f.read() == printed


def test_benchmark_names_the_training_command_when_weights_are_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="python train_net.py --config-file"):
        dap_pseudo_boxes.main(["--weights", str(tmp_path / "none.pth")])
