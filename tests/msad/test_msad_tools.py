"""projects.msad.resolution_table and benchmarks/msad_cost.py on untrained CPU-sized models."""
import csv
import os

import pytest
import torch

from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import LazyConfig, instantiate
from detectron2.data import DatasetCatalog

from projects.msad import resolution_table as msad_resolution_table

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FCOS = os.path.join(REPO, "configs/msad/synthetic_fcos_R18_FPN_cpu.py")
TEACHER = os.path.join(REPO, "configs/msad/synthetic_fcos_teacher_cpu.py")
STUDENT = os.path.join(REPO, "configs/msad/synthetic_fcos_student_cpu.py")

FEW_IMAGES = "synthetic_shapes_val_first4"


@pytest.fixture(scope="module")
def few_images(dataset_subset):
    return dataset_subset("synthetic_shapes_val", FEW_IMAGES, count=4)


def save_untrained(config_file, directory):
    torch.manual_seed(0)
    model = instantiate(LazyConfig.load(config_file).model)
    DetectionCheckpointer(model, save_dir=str(directory)).save("untrained")
    return str(directory / "untrained.pth")


def test_set_test_size_keeps_the_max_size_ratio():
    cfg = LazyConfig.load(STUDENT)  # test resize 128, max 240
    msad_resolution_table.set_test_size(cfg.dataloader.test, 64)
    resize = cfg.dataloader.test.mapper.augmentations[0]
    assert (resize.short_edge_length, resize.max_size) == (64, 120)


def test_resolution_table_rows_files_and_per_run_overrides(tmp_path, few_images):
    checkpoint = save_untrained(TEACHER, tmp_path)
    output = str(tmp_path / "table" / "sizes")
    common = ["dataloader.test.num_workers=0", f"dataloader.test.dataset.names={few_images}",
              "model.detector.test_score_thresh=0.0",  # untrained: class probabilities ~ prior 0.01
              "dataloader.evaluator.evaluators.0.output_dir=" + str(tmp_path / "coco")]
    rows = msad_resolution_table.main([
        "--run", "T H&L", TEACHER, checkpoint,
        "--run", "T H", TEACHER, checkpoint, "model.inference_path=high",
        "--test-sizes", "128", "96", "--output", output, "--opts", *common])
    assert [(r["model"], r["size"]) for r in rows] == [("T H&L", 128), ("T H&L", 96), ("T H", 128), ("T H", 96)]
    for row in rows:  # untrained: finite APs in [0, 100] (NaN would mean nothing was evaluated)
        assert all(0.0 <= row[m] <= 100.0 for m in ("AP", "AP50"))
    with open(output + ".csv") as f:
        table = list(csv.reader(f))
    assert table[0] == ["model", "size", "AP", "AP50", "AP75", "APs", "APm", "APl"] and len(table) == 5
    with open(output + ".png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_resolution_table_refuses_a_missing_checkpoint(tmp_path, capsys):
    with pytest.raises(SystemExit):
        msad_resolution_table.main(["--run", "S", STUDENT, str(tmp_path / "none.pth"),
                                    "--test-sizes", "128", "--output", str(tmp_path / "t")])
    assert "train " + STUDENT in capsys.readouterr().err


def test_cost_benchmark_low_resolution_student_costs_less(tmp_path):
    from benchmarks import msad_cost

    markdown = str(tmp_path / "cost.md")
    measured = msad_cost.main(["--configs", FCOS, STUDENT, "--short-edge", "128", "--repeats", "1",
                               "--markdown", markdown])
    (_, high_size, high_flops, high_ms), (_, low_size, low_flops, low_ms) = measured
    assert (high_size, low_size) == ("128x171", "64x85")
    assert 0 < low_flops < 0.75 * high_flops and high_ms > 0 and low_ms > 0
    with open(markdown) as f:
        assert "| FLOPs / first |" in " ".join(f.read().split())  # a header cell, without its padding


def test_student_predicts_through_the_predictor_at_any_test_size(tmp_path):
    """Supplement Table 2 through LazyPredictor: the same student at two test sizes returns boxes in
    the original image's frame."""
    from projects.common.predictor import LazyPredictor
    from projects.common.engine import load_config

    checkpoint = save_untrained(STUDENT, tmp_path)
    image = DatasetCatalog.get("synthetic_shapes_val")[0]
    import cv2

    original = cv2.imread(image["file_name"])
    for size in (128, 96):
        cfg = load_config(STUDENT, ["model.detector.test_score_thresh=0.0", "train.device=cpu"])
        msad_resolution_table.set_test_size(cfg.dataloader.test, size)
        instances = LazyPredictor(cfg, checkpoint=checkpoint)(original)["instances"]
        assert instances.image_size == original.shape[:2] and len(instances) > 0
        boxes = instances.pred_boxes.tensor
        assert boxes[:, 2].max() <= original.shape[1] and boxes[:, 3].max() <= original.shape[0]
        assert boxes[:, 2].max() > 0.75 * original.shape[1]  # the virtual 2x frame is mapped back, not left at half size
