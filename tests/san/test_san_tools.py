"""projects.san.resolution_table on two tiny checkpoints (a plain baseline and a SAN model),
projects.san.experiment and benchmarks/san_latency.py on a tiny shape."""
import csv
import os
import sys

import pytest
import torch

from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import instantiate
from detectron2.data import DatasetCatalog

from projects.common import engine
from projects.san import experiment as san_experiment
from projects.san import resolution_table as san_resolution_table

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BASELINE = os.path.join(REPO, "configs/san/baseline_R18_synthetic_cpu_64.py")
SAN = os.path.join(REPO, "configs/san/san_R18_synthetic_cpu.py")

PREDICTED_CLASS = 3


def save_checkpoint(config_file, path, overrides=()):
    """An untrained model of the config whose classifier always predicts ``PREDICTED_CLASS``."""
    torch.manual_seed(0)
    model = instantiate(engine.load_config(config_file, list(overrides)).model)
    with torch.no_grad():
        model.fc.weight.zero_()
        model.fc.bias.zero_()
        model.fc.bias[PREDICTED_CLASS] = 10.0
    DetectionCheckpointer(model, save_dir=os.path.dirname(path)).save(os.path.basename(path))
    return path + ".pth"


def test_resolution_table_of_a_baseline_and_san(tmp_path):
    baseline = save_checkpoint(BASELINE, str(tmp_path / "baseline"))
    san = save_checkpoint(SAN, str(tmp_path / "san"))
    output = str(tmp_path / "table" / "resolutions")
    rows = san_resolution_table.main([
        "--run", "baseline 64", BASELINE, baseline, "--run", "SAN", SAN, san,
        "--test-resolutions", "64", "56", "--calibration-batches", "1", "--output", output,
        "--opts", "dataloader.test.num_workers=0", "dataloader.train.num_workers=0",
        "dataloader.train.total_batch_size=4",
    ])
    # the checkpoints were loaded: every image is predicted as PREDICTED_CLASS
    val = DatasetCatalog.get("synthetic_shapes_cls_val")
    share = 100.0 * sum(r["class_id"] == PREDICTED_CLASS for r in val) / len(val)
    assert [(r["model"], r["inference"]) for r in rows] == [
        ("baseline 64", "-"), ("SAN", "proxy"), ("SAN", "ideal"), ("SAN", "data_free")]
    for row in rows:
        assert row[64] == pytest.approx(share) and row[56] == pytest.approx(share)

    with open(output + ".csv") as f:
        table = list(csv.reader(f))
    assert table[0] == ["model", "inference", "64", "56"] and len(table) == 5
    assert table[2][:2] == ["SAN", "proxy"] and float(table[2][2]) == pytest.approx(share, abs=0.01)
    with open(output + ".png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert sorted(os.listdir(os.path.dirname(output))) == ["resolutions.csv", "resolutions.png"]


def test_san_modes_differ_off_the_training_resolutions(tmp_path):
    """At a training resolution proxy and data-free are the same network; at 56 they are not."""
    cfg = engine.load_config(SAN, ["dataloader.test.num_workers=0", "model.backbone.width=0.25"])
    torch.manual_seed(0)
    model = instantiate(cfg.model).eval()
    for module in model.modules():  # distinct BN statistics per resolution, as after training
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    val = DatasetCatalog.get("synthetic_shapes_cls_val")[:4]

    def scores(mode, resolution):
        model.backbone.set_inference_mode(mode)
        san_resolution_table.set_test_resolution(cfg.dataloader.test, resolution)
        mapper = instantiate(cfg.dataloader.test.mapper)
        with torch.no_grad():
            return torch.stack([model([mapper(dict(r))])[0]["scores"] for r in val])

    assert torch.allclose(scores("proxy", 48), scores("data_free", 48), atol=1e-6)
    assert not torch.allclose(scores("proxy", 56), scores("data_free", 56), atol=1e-4)


def test_missing_checkpoint_names_the_config_to_train(tmp_path, capsys):
    with pytest.raises(SystemExit):
        san_resolution_table.main(["--run", "SAN", SAN, str(tmp_path / "none.pth"),
                                   "--test-resolutions", "64", "--output", str(tmp_path / "t")])
    assert "train configs/san/san_R18_synthetic_cpu.py" in capsys.readouterr().err.replace(REPO + "/", "")


def test_latency_benchmark_writes_ratio_table_and_plot(tmp_path):
    sys.path.insert(0, os.path.join(REPO, "benchmarks"))
    import san_latency

    markdown, plot = str(tmp_path / "latency.md"), str(tmp_path / "latency.png")
    rows = san_latency.main(["--width", "0.125", "--resolutions", "64", "40", "--repeats", "2",
                             "--markdown", markdown, "--plot", plot])
    assert [row[0] for row in rows] == [64, 40]
    for _, plain_ms, san_ms, ratio, plain_cl_ms, san_cl_ms, cl_ratio, cl_speedup, generation_ms, generation_ratio in rows:
        assert min(plain_ms, san_ms, plain_cl_ms, san_cl_ms, generation_ms) > 0
        assert ratio == pytest.approx(san_ms / plain_ms) and generation_ratio == pytest.approx(generation_ms / plain_ms)
        assert cl_ratio == pytest.approx(san_cl_ms / plain_cl_ms) and cl_speedup == pytest.approx(san_ms / san_cl_ms)
    with open(markdown) as f:
        text = " ".join(f.read().split())  # header cells without their padding
    assert "| SAN / plain |" in text and "| SAN / plain (CL) |" in text and "process CPU time, interleaved" in text
    with open(plot, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert sorted(os.listdir(tmp_path)) == ["latency.md", "latency.png"]


def test_plain_resnet_of_the_benchmark_has_sans_shape():
    sys.path.insert(0, os.path.join(REPO, "benchmarks"))
    import san_latency

    from projects.san import SANResNet

    for depth in (18, 50):
        plain, san = san_latency.plain_resnet(depth, 0.25), SANResNet(depth=depth, width=0.25)
        x = torch.randn(1, 3, 64, 64)
        assert plain.eval()(x)["res5"].shape == san.eval()(x)["res5"].shape


def test_experiment_summary_is_mean_and_sample_std_over_seeds():
    seeds = [[{"model": "SAN", "inference": "proxy", 64: 90.0, 32: 80.0}],
             [{"model": "SAN", "inference": "proxy", 64: 94.0, 32: 80.0}]]
    (row,) = san_experiment.summarise(seeds, [64, 32])
    assert row[64] == pytest.approx((92.0, 2.8284271)) and row[32] == (80.0, 0.0) and row["seeds"] == 2
    assert san_experiment.markdown([row], [64, 32]).splitlines() == [
        "| model   | inference   | 64         | 32         |",
        "|---------|-------------|------------|------------|",
        "| SAN     | proxy       | 92.0 ± 2.8 | 80.0 ± 0.0 |",
    ]
    assert san_experiment.run_label("configs/san/baseline_MobileNetV2_synthetic_cpu_48.py") == "baseline 48"
    assert san_experiment.run_label("configs/san/san_R18_synthetic_cpu.py") == "SAN"


@pytest.mark.slow
def test_experiment_trains_every_run_once_and_tabulates(tmp_path, capsys):
    """One seed, one iteration per run: 5 baselines + SAN trained through the launcher, evaluated,
    tabulated; a rerun trains nothing and gives the same table."""
    arguments = ["--family", "R18", "--seeds", "0", "--max-iter", "1", "--test-resolutions", "64",
                 "--modes", "proxy", "--output-dir", str(tmp_path), "--opts",
                 "dataloader.train.total_batch_size=4", "dataloader.train.num_workers=0",
                 "dataloader.test.num_workers=0"]
    first = san_experiment.main(arguments)
    assert [(row["model"], row["inference"]) for row in first] == [
        ("baseline 64", "-"), ("baseline 56", "-"), ("baseline 48", "-"), ("baseline 40", "-"),
        ("baseline 32", "-"), ("SAN", "proxy")]
    runs = sorted(os.listdir(tmp_path / "seed0"))
    assert [r for r in runs if not r.endswith(".log")] == [
        f"baseline_R18_synthetic_cpu_{r}" for r in (32, 40, 48, 56, 64)] + ["san_R18_synthetic_cpu", "table.json"]
    assert {"table.md", "table.csv", "table.png"} <= set(os.listdir(tmp_path))
    capsys.readouterr()
    assert san_experiment.main(arguments) == first
    assert capsys.readouterr().out.count("done already") == 6


def test_single_resolution_san_backbones_count_as_plain_baselines():
    for config, adaptive in (("baseline_MobileNetV2_synthetic_cpu_48.py", False), ("san_MobileNetV2_synthetic_cpu.py", True)):
        cfg = engine.load_config(os.path.join(REPO, "configs/san", config), ["model.backbone.width_mult=0.25"])
        assert san_resolution_table.is_scale_adaptive(instantiate(cfg.model)) is adaptive
