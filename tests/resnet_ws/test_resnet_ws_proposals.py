"""projects.resnet_ws.proposals: Selective Search boxes, detectron2 proposal pickles (generation,
resume, shards, .mat conversion) and pictures."""
import ctypes
import glob
import os
import pickle

import cv2
import numpy as np
import pytest
import scipy.io

from detectron2.data import DatasetCatalog, DatasetMapper
from detectron2.data.build import load_proposals_into_dataset
from detectron2.structures import BoxMode

from projects.resnet_ws.proposals import generate as proposal_generation
from projects.resnet_ws.proposals import (
    ProposalOptions,
    convert_mcg_mats,
    convert_selective_search_mat,
    draw_proposals,
    generate_proposals,
    main,
    matlab_boxes_to_xyxy,
    proposal_statistics,
    rank_scores,
    selective_search,
)

DATASET = "resnet_ws_proposals_test"
NUM_IMAGES = 6
HEIGHT, WIDTH = 72, 96
RECTANGLE = (30, 20, 80, 60)  # XYXY of the red rectangle of ``_image``: pixels 30..79 x 20..59


def _image(index: int) -> np.ndarray:
    """Noisy grey background, a red rectangle (``RECTANGLE`` shifted by the index) and a blue disc."""
    rng = np.random.default_rng(index)
    image = rng.integers(100, 130, size=(HEIGHT, WIDTH, 3)).astype(np.uint8)
    x1, y1, x2, y2 = RECTANGLE
    image[y1 : y2, x1 + index : x2 + index] = (0, 0, 220)
    cv2.circle(image, (12, 12), 8, (200, 40, 0), thickness=-1)
    return image


def _records(folder: str):
    """Dicts whose image_id (int) differs from the file stem, to check which one is used where."""
    records = []
    for index in range(NUM_IMAGES):
        x1, y1, x2, y2 = RECTANGLE
        records.append({
            "file_name": os.path.join(folder, f"shape_{index}.png"),
            "image_id": 1000 + index,
            "height": HEIGHT,
            "width": WIDTH,
            "annotations": [
                {"bbox": [x1 + index, y1, x2 + index, y2], "bbox_mode": BoxMode.XYXY_ABS, "category_id": 0},
                {"bbox": [4, 4, 16, 16], "bbox_mode": BoxMode.XYWH_ABS, "category_id": 1},
            ],
        })
    return records


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("images"))
    for index in range(NUM_IMAGES):
        cv2.imwrite(os.path.join(folder, f"shape_{index}.png"), _image(index))
    DatasetCatalog.register(DATASET, lambda: _records(folder))
    yield folder
    DatasetCatalog.remove(DATASET)


@pytest.fixture(scope="module")
def reference_file(dataset, tmp_path_factory):
    """Proposals of the whole dataset, computed in one uninterrupted run in this process."""
    output = str(tmp_path_factory.mktemp("reference") / "proposals.pkl")
    statistics = generate_proposals([DATASET], output)
    return output, statistics


def _load(path):
    with open(path, "rb") as f:
        return pickle.load(f)


def test_selective_search_keeps_opencvs_order_in_detectron2_coordinates():
    image = _image(0)
    boxes, scores = selective_search(image, min_size=0, max_proposals=0, seed=3)
    # the same seeded OpenCV call, by hand: (x, y, w, h) -> (x, y, x + w, y + h) in the same order
    search = cv2.ximgproc.segmentation.createSelectiveSearchSegmentation()
    search.setBaseImage(image)
    search.switchToSelectiveSearchFast()
    ctypes.CDLL(None).srand(3)
    rectangles = search.process()
    assert len(np.unique(rectangles, axis=0)) == len(rectangles)  # nothing to deduplicate here
    expected = np.concatenate([rectangles[:, :2], rectangles[:, :2] + rectangles[:, 2:]], axis=1)
    np.testing.assert_array_equal(boxes, expected.astype(np.float32))
    assert boxes.dtype == np.float32 and scores.dtype == np.float32
    np.testing.assert_array_equal(scores, rank_scores(len(boxes)))
    assert scores[0] == 1.0 and np.all(np.diff(scores) < 0)
    assert np.all(boxes[:, :2] >= 0) and np.all(boxes[:, 2] <= WIDTH) and np.all(boxes[:, 3] <= HEIGHT)
    assert list(RECTANGLE) in boxes.tolist()  # the red rectangle exactly
    # the same seed gives the same order; the filters keep that order
    again, _ = selective_search(image, min_size=0, max_proposals=0, seed=3)
    np.testing.assert_array_equal(again, boxes)
    large = (boxes[:, 2] - boxes[:, 0] >= 10) & (boxes[:, 3] - boxes[:, 1] >= 10)
    filtered, filtered_scores = selective_search(image, min_size=10, max_proposals=5, seed=3)
    np.testing.assert_array_equal(filtered, boxes[large][:5])
    np.testing.assert_array_equal(filtered_scores, np.float32([1.0, 0.8, 0.6, 0.4, 0.2]))


def test_selective_search_on_a_resized_copy_scales_boxes_back():
    image = cv2.resize(_image(0), (2 * WIDTH, 2 * HEIGHT), interpolation=cv2.INTER_NEAREST)
    boxes, _ = selective_search(image, max_image_size=WIDTH, min_size=0, max_proposals=0)
    # segmented at half size: every coordinate is twice an integer, inside the full-size image
    np.testing.assert_array_equal(boxes % 2, 0)
    assert boxes[:, 2].max() <= 2 * WIDTH and boxes[:, 3].max() <= 2 * HEIGHT
    assert [2 * c for c in RECTANGLE] in boxes.tolist()
    assert len(np.unique(boxes, axis=0)) == len(boxes)
    with pytest.raises(ValueError, match="mode"):
        selective_search(image, mode="slow")


def test_proposal_statistics_hand_computed():
    records = [
        {"annotations": [
            {"bbox": [0, 0, 10, 10], "bbox_mode": BoxMode.XYXY_ABS},
            {"bbox": [20, 20, 10, 10], "bbox_mode": BoxMode.XYWH_ABS},  # = XYXY [20, 20, 30, 30]
            {"bbox": [50, 50, 60, 60], "bbox_mode": BoxMode.XYXY_ABS, "iscrowd": 1},  # not counted
        ]},
        {"annotations": [{"bbox": [0, 0, 8, 8], "bbox_mode": BoxMode.XYXY_ABS}]},
        {},  # no real boxes
    ]
    boxes = [
        np.array([[0, 0, 10, 10], [20, 20, 30, 36]], dtype=np.float32),  # IoUs 1 and 100/160
        np.array([[0, 0, 8, 4]], dtype=np.float32),  # IoU 32/64
        np.zeros((0, 4), dtype=np.float32),
    ]
    statistics = proposal_statistics(boxes, records)
    assert statistics["images"] == 3 and statistics["boxes_per_image"] == pytest.approx(1.0)
    assert statistics["gt_boxes"] == 3
    assert statistics["recall@0.5"] == pytest.approx(100.0)  # 1, 0.625, 0.5
    assert statistics["recall@0.7"] == pytest.approx(100.0 / 3)
    assert statistics["mean_best_iou"] == pytest.approx((1 + 0.625 + 0.5) / 3)


def test_generated_file_loads_in_detectron2_in_selective_search_order(dataset, reference_file):
    output, statistics = reference_file
    content = _load(output)
    assert content["ids"] == [1000 + index for index in range(NUM_IMAGES)]
    assert content["bbox_mode"] == BoxMode.XYXY_ABS
    image_0_boxes, _ = selective_search(_image(0))
    np.testing.assert_array_equal(content["boxes"][0], image_0_boxes)
    assert statistics["images"] == NUM_IMAGES
    assert statistics["boxes_per_image"] == pytest.approx(np.mean([len(b) for b in content["boxes"]]))
    assert statistics["gt_boxes"] == 2 * NUM_IMAGES
    assert statistics["recall@0.7"] == pytest.approx(100.0)  # both shapes are separate segments
    assert not os.path.exists(output + ".parts")

    records = load_proposals_into_dataset(DatasetCatalog.get(DATASET), output)
    for record, boxes, scores in zip(records, content["boxes"], content["objectness_logits"]):
        np.testing.assert_array_equal(record["proposal_boxes"], boxes)  # sorting kept the order
        np.testing.assert_array_equal(record["proposal_objectness_logits"], scores)
    mapper = DatasetMapper(is_train=False, augmentations=[], image_format="BGR", precomputed_proposal_topk=7)
    mapped = mapper(records[2])
    assert len(mapped["proposals"]) == 7
    np.testing.assert_array_equal(mapped["proposals"].proposal_boxes.tensor.numpy(), content["boxes"][2][:7])


def test_command_line_with_worker_processes_matches_and_refuses_to_overwrite(dataset, reference_file, tmp_path):
    output = str(tmp_path / "proposals.pkl")
    statistics = main(["--dataset", DATASET, "--output", output, "--num-workers", "2", "--flush-every", "2"])
    assert statistics == reference_file[1]
    for left, right in zip(_load(output)["boxes"], _load(reference_file[0])["boxes"]):
        np.testing.assert_array_equal(left, right)
    with pytest.raises(FileExistsError, match="--overwrite"):
        main(["--dataset", DATASET, "--output", output])


def test_resume_after_a_kill_loses_and_duplicates_nothing(dataset, reference_file, tmp_path, monkeypatch):
    output = str(tmp_path / "proposals.pkl")
    calls = []

    def killed_at_the_fifth_image(image, **kwargs):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return selective_search(image, **kwargs)

    monkeypatch.setattr(proposal_generation, "selective_search", killed_at_the_fifth_image)
    with pytest.raises(KeyboardInterrupt):
        generate_proposals([DATASET], output, flush_every=2)
    (part_file,) = glob.glob(output + ".parts/*.jsonl")
    with open(part_file) as f:
        assert len(f.readlines()) == 4  # two flushed pairs; the fifth image was lost
    with open(part_file, "a") as f:
        f.write('{"index": 4, "boxes": [[1.0, 2.0')  # a line cut by the kill: redone, not read
    assert not os.path.exists(output)

    with pytest.raises(ValueError, match="other settings"):
        generate_proposals([DATASET], output, ProposalOptions(max_proposals=100))
    calls.clear()
    generate_proposals([DATASET], output, flush_every=2)
    assert len(calls) == NUM_IMAGES - 4
    content, reference = _load(output), _load(reference_file[0])
    assert content["ids"] == reference["ids"]
    for left, right in zip(content["boxes"], reference["boxes"]):
        np.testing.assert_array_equal(left, right)


def test_shards_write_the_file_when_the_last_one_finishes(dataset, reference_file, tmp_path):
    output = str(tmp_path / "proposals.pkl")
    assert generate_proposals([DATASET], output, num_shards=2, shard_index=1, max_images=5) is None
    assert not os.path.exists(output)
    statistics = generate_proposals([DATASET], output, num_shards=2, shard_index=0, max_images=5)
    assert statistics["images"] == 5
    content, reference = _load(output), _load(reference_file[0])
    assert content["ids"] == reference["ids"][:5]
    for left, right in zip(content["boxes"], reference["boxes"][:5]):
        np.testing.assert_array_equal(left, right)
    with pytest.raises(ValueError, match="shard-index"):
        generate_proposals([DATASET], str(tmp_path / "other.pkl"), num_shards=2, shard_index=2)


def test_matlab_boxes_become_zero_based_xyxy():
    # [y1 x1 y2 x2] 1-based inclusive: rows 2..10, columns 1..20 -> x 0..20, y 1..10 (exclusive ends)
    np.testing.assert_array_equal(matlab_boxes_to_xyxy(np.array([[2, 1, 10, 20], [5, 6, 7, 8]])),
                                  [[0, 1, 20, 10], [5, 4, 8, 7]])


def _cell(values):
    cell = np.empty(len(values), dtype=object)
    cell[:] = values
    return cell


def test_selective_search_mat_conversion_is_exact(dataset, tmp_path):
    stems = [f"shape_{index}" for index in range(NUM_IMAGES)]
    boxes = [np.array([[2, 1, 10, 20], [1, 1, HEIGHT, WIDTH]], dtype=np.float64) + index for index in range(NUM_IMAGES)]
    boxes[3] = np.zeros((0, 4))  # an image without proposals
    # reversed order plus an image of another dataset: matched by name, not by position
    mat_file = str(tmp_path / "voc_2007_trainval.mat")
    scipy.io.savemat(mat_file, {"images": _cell(stems[::-1] + ["other_image"]),
                                "boxes": _cell(boxes[::-1] + [np.ones((1, 4))])})
    output = str(tmp_path / "ss.pkl")
    main(["convert", "--format", "ss", "--input", mat_file, "--dataset", DATASET, "--output", output])
    content = _load(output)
    assert content["ids"] == [1000 + index for index in range(NUM_IMAGES)]
    np.testing.assert_array_equal(content["boxes"][0], [[0, 1, 20, 10], [0, 0, WIDTH, HEIGHT]])
    np.testing.assert_array_equal(content["boxes"][5], [[5, 6, 25, 15], [5, 5, WIDTH + 5, HEIGHT + 5]])
    assert content["boxes"][3].shape == (0, 4) and content["objectness_logits"][3].shape == (0,)
    np.testing.assert_array_equal(content["objectness_logits"][0], [1.0, 0.5])  # file order kept
    records = load_proposals_into_dataset(DatasetCatalog.get(DATASET), output)
    np.testing.assert_array_equal(records[5]["proposal_boxes"], content["boxes"][5])

    scipy.io.savemat(mat_file, {"images": _cell(stems[1:]), "boxes": _cell(boxes[1:])})
    with pytest.raises(KeyError, match=r"1 images .* \['shape_0'\]"):
        convert_selective_search_mat(mat_file, [DATASET], output, overwrite=True)


def test_mcg_mat_conversion_is_exact_and_sorted_by_mcg_scores(dataset, tmp_path):
    mat_dir = tmp_path / "mcg"
    mat_dir.mkdir()
    for index in range(NUM_IMAGES):
        scipy.io.savemat(str(mat_dir / f"shape_{index}.mat"), {
            "boxes": np.array([[1, 2, 3, 4], [11, 12, 30, 40], [5, 5, 9, 9]], dtype=np.float64),
            "scores": np.array([[0.2], [0.9], [-0.5 + index]]),
        })
    output = str(tmp_path / "mcg.pkl")
    main(["convert", "--format", "mcg", "--input", str(mat_dir), "--dataset", DATASET, "--output", output])
    content = _load(output)
    assert content["ids"] == [1000 + index for index in range(NUM_IMAGES)]
    np.testing.assert_array_equal(content["boxes"][0], [[1, 0, 4, 3], [11, 10, 40, 30], [4, 4, 9, 9]])
    np.testing.assert_array_equal(content["objectness_logits"][0], np.float32([0.2, 0.9, -0.5]))
    records = load_proposals_into_dataset(DatasetCatalog.get(DATASET), output)
    np.testing.assert_array_equal(records[0]["proposal_boxes"], [[11, 10, 40, 30], [1, 0, 4, 3], [4, 4, 9, 9]])
    np.testing.assert_array_equal(records[2]["proposal_boxes"][0], [4, 4, 9, 9])  # its score 1.5 is the highest

    os.remove(mat_dir / "shape_2.mat")
    with pytest.raises(KeyError, match=r"\['shape_2'\]"):
        convert_mcg_mats(str(mat_dir), [DATASET], output, overwrite=True)


def test_pictures_show_the_top_proposals(dataset, reference_file, tmp_path):
    output_dir = tmp_path / "pictures"
    main(["visualize", "--proposals", reference_file[0], "--dataset", DATASET, "--output-dir", str(output_dir),
          "--num-images", "2", "--top", "5"])
    assert sorted(os.listdir(output_dir)) == ["shape_0.png", "shape_1.png"]
    picture = cv2.imread(str(output_dir / "shape_0.png"))
    assert picture.shape[0] == 512 and abs(picture.shape[1] - WIDTH * 512 / HEIGHT) <= 1  # 512 px short side
    top_5 = _load(reference_file[0])["boxes"][0][:5]
    real_boxes = [list(RECTANGLE), [4, 4, 20, 20]]
    np.testing.assert_array_equal(picture, draw_proposals(_image(0), top_5, np.array(real_boxes))[:, :, ::-1])
    without_boxes = draw_proposals(_image(0), np.zeros((0, 4)))[:, :, ::-1]

    def magenta(bgr):
        return (bgr[:, :, 0] > 180) & (bgr[:, :, 1] < 80) & (bgr[:, :, 2] > 180)

    assert magenta(picture).sum() > 500 and magenta(without_boxes).sum() == 0
