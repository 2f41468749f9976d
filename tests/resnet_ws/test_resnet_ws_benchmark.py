"""benchmarks/resnet_ws_cost.py (appendix Fig. A1): the two detectors it builds, its random
inputs, its peak-memory measurement on a known allocation, and a tiny end-to-end run (R18 at
quarter width, 128 px, 50 and 100 proposals) with its table, markdown file and PNG."""
import numpy as np
import pytest
import torch

from detectron2.config import instantiate

from benchmarks import resnet_ws_cost as benchmark
from projects.resnet_ws.backbones import Res5BoxHead

DEPTH, WIDTH, SHORT_SIDE = 18, 0.25, 128


def trainable_count(module):
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def test_ws_detector_trains_only_neck_and_oicr_reg_head():
    model = instantiate(benchmark.detector_config("ws_c5_ran_f5", DEPTH, WIDTH))
    assert model.box_head is None and model.in_feature == "res5"
    assert trainable_count(model.backbone) == 0  # F5
    # R18 res5 at width 0.25: 128 channels x 7 x 7 -> RAN (4096, 4096) x 0.25 = (1024, 1024)
    assert trainable_count(model.neck) == (6272 * 1024 + 1024) + (1024 * 1024 + 1024)
    # OICR+REG, 20 classes: WSDDN 2 x Linear(1024, 20), 4 x Linear(1024, 21), Linear(1024, 80)
    assert len(model.head.refinements) == 4
    assert trainable_count(model.head) == 2 * 20500 + 4 * 21525 + 82000


def test_c4_detector_is_f2_backbone_with_trainable_conv5_and_no_neck():
    model = instantiate(benchmark.detector_config("plain_c4_f2", DEPTH, WIDTH))
    assert model.in_feature == "res4" and model.backbone.output_shape()["res4"].channels == 64
    frozen = [model.backbone.stem, model.backbone.res2]
    assert all(trainable_count(m) == 0 for m in frozen)
    assert all(p.requires_grad for m in (model.backbone.res3, model.backbone.res4) for p in m.parameters())
    assert model.box_head is None and isinstance(model.neck, Res5BoxHead)
    assert model.neck.in_channels == 64 and model.neck.output_size == 128
    assert model.head.mil.classification_stream.in_features == 128


def test_random_input_has_proposals_inside_the_image():
    generator = torch.Generator().manual_seed(0)
    x = benchmark.random_training_input(600, 4 / 3, 500, 20, generator)
    assert x["image"].shape == (3, 600, 800) and x["image"].dtype == torch.uint8
    boxes = x["proposals"].proposal_boxes.tensor
    assert boxes.shape == (500, 4) and len(x["proposals"].objectness_logits) == 500
    assert (boxes[:, 0] <= boxes[:, 2]).all() and (boxes[:, 1] <= boxes[:, 3]).all()
    assert boxes.min() >= 0 and boxes[:, 2].max() <= 800 and boxes[:, 3].max() <= 600
    classes = x["instances"].gt_classes
    assert len(classes) == 2 and len(set(classes.tolist())) == 2 and 0 <= classes.min() and classes.max() < 20


def test_peak_memory_sees_a_transient_allocation():
    device = torch.device("cpu")
    in_use = benchmark.memory_in_use(device)
    transient = np.ones(64 * benchmark.MIB // 8)  # 64 MiB, touched, freed before the peak is read
    del transient
    growth = (benchmark.peak_memory(device) - in_use) / benchmark.MIB
    assert 63 <= growth < 80


@pytest.mark.slow
def test_tiny_benchmark_run(tmp_path, capsys):
    """One proposal count: one process timing and profiling both detectors, one per detector for memory."""
    plot_path, markdown_path = tmp_path / "cost.png", tmp_path / "cost.md"
    rows = benchmark.main([
        "--depth", str(DEPTH), "--width", str(WIDTH), "--short-side", str(SHORT_SIDE),
        "--proposals", "50", "--repeats", "1", "--plot", str(plot_path), "--markdown", str(markdown_path),
    ])
    models = ["ResNet18-WS C5+RAN F5", "ResNet18 C4 F2"]
    assert [(row[0], row[1]) for row in rows] == [(50, models[0]), (50, models[1])]
    for _, _, seconds, iteration_peak, process_peak in rows:
        assert 0 < seconds < 30 and 0 < iteration_peak <= process_peak
    # the WS detector's gradients (neck + head, float32) alone are resident at the optimizer step
    ws_gradient_mib = 4 * (6272 * 1024 + 1024 + 1024 * 1024 + 1024 + 2 * 20500 + 4 * 21525 + 82000) / 2**20
    assert rows[0][3] >= ws_gradient_mib
    table = markdown_path.read_text()
    lines = [" ".join(line.split()) for line in table.splitlines()]  # the table's cells without their padding
    assert "| proposals | model | s/iter | iteration peak MiB | process peak MiB |" in lines
    assert any(line.startswith("| 50 | ResNet18 C4 F2 |") for line in lines) and "128x171 image" in table
    assert "process CPU time, interleaved" in table
    profile_header = ("| proposals | model | s/iter | backbone s | RoI pooling s | neck s | head losses s | "
                      "backward + SGD step s | backbone GFLOPs | neck GFLOPs |")
    assert profile_header in lines
    assert table.strip() in capsys.readouterr().out
    assert plot_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_profile_parts_add_up_to_the_iteration():
    """In-process (no spawn): both detectors' iterations split into parts that sum to the whole."""
    profile = benchmark.time_and_profile(DEPTH, WIDTH, 20, 64, 4 / 3, warmup=1, repeats=1, device="cpu", threads=1)
    assert set(profile) == set(benchmark.DETECTORS)
    for measured in profile.values():
        assert sum(measured["parts"].values()) == pytest.approx(measured["seconds"])
        assert all(seconds >= 0 for name, seconds in measured["parts"].items() if name != "head losses")
        assert measured["gflops"]["backbone"] > 0 and measured["gflops"]["neck"] > 0


def test_bad_detector_name_is_rejected():
    with pytest.raises(ValueError, match="plain_c4_f2"):
        benchmark.detector_config("c4", DEPTH)
