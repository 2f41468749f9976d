"""projects.common.workflow: steps run once, finished steps are skipped, failures stop the run."""
import subprocess
import sys

import pytest

from projects.common.workflow import Workflow, train_command, workflow_main


def test_a_step_runs_until_its_result_exists(tmp_path, capsys):
    result = tmp_path / "done.txt"
    command = [sys.executable, "-c", f"open({str(result)!r}, 'w').write('ok')"]
    workflow = Workflow("test.workflow")
    workflow.run("1. make it", command, str(result))
    assert result.read_text() == "ok" and list(workflow.timings) == ["1. make it"]
    result.write_text("kept")
    workflow.run("1. make it", command, str(result))  # skipped: the result exists
    assert result.read_text() == "kept"
    out = capsys.readouterr().out
    assert "[test.workflow] 1. make it:\n" in out and "done before" in out
    assert workflow.timing_lines()[1].startswith("Step times: 1. make it ")


def test_a_step_in_this_process_runs_until_its_result_exists(tmp_path, capsys):
    result, calls = tmp_path / "done.json", []

    def step():
        calls.append(1)
        result.write_text("{}")

    workflow = Workflow("test.workflow")
    workflow.call("2. evaluate", step, str(result))
    workflow.call("2. evaluate", step, str(result))  # skipped: the result exists
    assert calls == [1] and list(workflow.timings) == ["2. evaluate"]
    assert "done before" in capsys.readouterr().out


def test_a_failing_step_stops_the_workflow(tmp_path):
    with pytest.raises(subprocess.CalledProcessError):
        Workflow("test.workflow").run("fails", [sys.executable, "-c", "raise SystemExit(3)"], str(tmp_path / "x"))


def test_train_command_resumes_into_the_output_dir():
    command = train_command("configs/x.py", "out/run", "a=1")
    assert command[1:3] == ["-m", "projects.common.engine"] and command[3:] == [
        "--config-file", "configs/x.py", "--resume", "train.output_dir=out/run", "a=1"]


def test_workflow_main_prints_the_report_of_its_output_dir(tmp_path, capsys):
    report = workflow_main(lambda output_dir: f"report of {output_dir}", "a workflow", "unused",
                           ["--output-dir", str(tmp_path / "out")])
    assert report == f"report of {tmp_path / 'out'}" and (tmp_path / "out").is_dir()
    assert report in capsys.readouterr().out


def test_workflow_main_passes_its_extra_options(tmp_path):
    def add_arguments(parser):
        parser.add_argument("--steps", type=int, default=1)

    report = workflow_main(lambda output_dir, steps: f"{steps} steps", "a workflow", str(tmp_path), ["--steps", "3"],
                           add_arguments)
    assert report == "3 steps"
