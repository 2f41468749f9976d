"""tools/metrics_table.py: the README tables of run results."""
import json
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "tools"))
from metrics_table import metrics_table  # noqa: E402


def write_run(path, records):
    path.mkdir()
    path.joinpath("metrics.json").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    return str(path)


def test_table_of_last_evaluations(tmp_path):
    a = write_run(tmp_path / "a", [{"iteration": 9, "total_loss": 1.0, "bbox/AP": 10.0, "occ/AP_r0": 3.0},
                                   {"iteration": 19, "total_loss": 0.5, "bbox/AP": 20.04, "occ/AP_r0": 4.0},
                                   {"iteration": 20, "total_loss": 0.4, "rpn/num_pos_anchors": 7.0}])
    b = write_run(tmp_path / "b", [{"iteration": 19, "bbox/AP": 30.0}])
    table = metrics_table([a, b], ["bbox/AP", "occ/AP_*"]).splitlines()
    assert table == [
        "| run   |   iteration |   bbox/AP |   occ/AP_r0 |",
        "|-------|-------------|-----------|-------------|",
        "| a     |          19 |      20.0 |         4.0 |",
        "| b     |          19 |      30.0 |         -   |",
    ]


def test_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="output_dir"):
        metrics_table([str(tmp_path)], ["bbox/AP"])
    run = write_run(tmp_path / "no_eval", [{"iteration": 1, "total_loss": 1.0}])
    with pytest.raises(ValueError, match="no evaluation"):
        metrics_table([run], ["bbox/AP"])
    run = write_run(tmp_path / "eval", [{"iteration": 1, "bbox/AP": 1.0}])
    with pytest.raises(KeyError, match="available"):
        metrics_table([run], ["bbox/AP", "segm/AP"])
