"""benchmarks/timing.py, the helper every benchmark times with, and the benchmarks of the collection
that have no project of their own (COCO evaluation, channels_last inference)."""
import time

import numpy as np
import pytest
import torch
from torch import nn

from benchmarks import channels_last, coco_eval_speed
from benchmarks.timing import PartTimes, Timing, describe, interleaved, use_threads


def test_variants_run_in_turns_each_round_starting_one_later():
    calls = []
    variants = {name: (lambda name=name: calls.append(name)) for name in "abc"}
    times = interleaved(variants, repeats=3, warmup=1)
    assert calls == list("abc") + list("abc") + list("bca") + list("cab")
    assert all(len(timing.cpu_seconds) == len(timing.wall_seconds) == 3 for timing in times.values())


def test_process_cpu_time_counts_work_not_waiting():
    def busy():
        end = time.process_time() + 0.02
        while time.process_time() < end:
            pass

    times = interleaved({"busy": busy, "sleep": lambda: time.sleep(0.02)}, repeats=2, warmup=0)
    assert times["busy"].median >= 0.02 and times["sleep"].median < 0.01  # the CPU clock by default on CPU
    assert min(times["sleep"].wall_seconds) >= 0.02
    timing = Timing([0.3, 0.1, 0.2], [1.0, 2.0, 3.0], clock="wall time")
    assert (timing.min, timing.median, timing.ms) == (1.0, 2.0, 2000.0)


class Busy(nn.Module):
    """Spends ``seconds`` of CPU time per call."""

    def __init__(self, seconds):
        super().__init__()
        self.seconds = seconds

    def forward(self, x):
        end = time.process_time() + self.seconds
        while time.process_time() < end:
            pass
        return x


def test_part_times_sum_the_modules_of_a_part_per_call():
    inner, outer = Busy(0.01), nn.Sequential(Busy(0.01), Busy(0.01))
    parts = PartTimes({"inner": [inner], "outer": [outer], "both": [inner, outer]})
    inner(None)  # outside a call: not recorded
    for _ in range(3):
        with parts.call():
            outer(inner(None))
    assert parts.median("inner") == pytest.approx(0.01, rel=0.2) and parts.median("outer") == pytest.approx(0.02, rel=0.2)
    assert parts.median("both", skip=1) == pytest.approx(0.03, rel=0.2) and len(parts._seconds["both"]) == 3
    parts.remove()
    with parts.call():
        inner(None)
    assert parts._seconds["inner"][-1] == 0.0


def test_description_names_clock_threads_and_device():
    threads = torch.get_num_threads()
    try:
        assert use_threads(1) == 1 and torch.get_num_threads() == 1
        assert describe(5).startswith("process CPU time, interleaved, median of 5, 1 CPU thread, cpu, torch ")
    finally:
        torch.set_num_threads(threads)
    with pytest.raises(ValueError, match="repeats >= 1"):
        interleaved({"a": lambda: None}, repeats=0)


def test_coco_evaluation_benchmark_agrees_with_pycocotools(tmp_path):
    markdown = tmp_path / "coco.md"
    result = coco_eval_speed.main(["--images", "20", "--repeats", "1", "--markdown", str(markdown)])
    assert result["largest_difference"] < 1e-12
    assert set(result["seconds"]) == {"pycocotools", "fast"} and min(result["seconds"].values()) > 0
    assert 0 < result["stats"]["fast"][0] < 1 and "| speed-up |" in " ".join(markdown.read_text().split())


def test_synthetic_coco_has_the_objects_and_detections_it_says():
    ground_truth, results = coco_eval_speed.synthetic_coco(10)
    assert len(ground_truth.getImgIds()) == 10 and len(ground_truth.getCatIds()) == coco_eval_speed.CATEGORIES
    per_image = np.bincount([r["image_id"] for r in results])[1:]
    assert per_image.min() >= coco_eval_speed.DETECTIONS_PER_IMAGE - 12


def test_channels_last_benchmark_runs_the_same_detector_both_ways(tmp_path):
    rows = channels_last.main(["--configs", "configs/msad/synthetic_fcos_student_cpu.py", "--short-edge", "128",
                               "--repeats", "1", "--markdown", str(tmp_path / "cl.md")])
    (label, size, default_ms, channels_last_ms, speedup, relative, same_count, _, _), = rows
    assert label == "synthetic_fcos_student_cpu" and size == "64x85"
    assert default_ms > 0 and channels_last_ms > 0 and speedup == pytest.approx(default_ms / channels_last_ms)
    assert relative < 1e-4 and same_count
