"""The step runner of the projects' end-to-end workflows (``python -m dap.workflow``,
``python -m projects.resnet_ws.workflow``, ``python -m projects.msad.workflow``): every step is an
ordinary command of the collection, printed before it runs, skipped when its result exists, so
an interrupted workflow continues where it stopped when started again."""
import argparse
import os
import subprocess
import sys
import time
from typing import Callable, Dict, List, Union


class Workflow:
    """Runs the steps of one workflow and records how long each took."""

    def __init__(self, name: str):
        self.name = name
        self.timings: Dict[str, float] = {}

    def run(self, description: str, command: List[str], result: str) -> None:
        """Run ``command`` unless ``result`` exists; its output goes straight to the terminal."""
        self._step(description, result, f"{description}:\n  {' '.join(command)}",
                   lambda: subprocess.run(command, check=True))

    def call(self, description: str, step: Callable[[], object], result: str) -> None:
        """Like ``run`` for a step done in this process: ``step()`` unless ``result`` exists."""
        self._step(description, result, description, step)

    def _step(self, description: str, result: str, announcement: str, step: Callable[[], object]) -> None:
        if os.path.exists(result):
            self.log(f"{description}: done before ({result})")
            return
        self.log(announcement)
        start = time.perf_counter()
        step()
        self.timings[description] = time.perf_counter() - start

    def log(self, message: str) -> None:
        print(f"[{self.name}] {message}", flush=True)

    def timing_lines(self) -> List[str]:
        """A report's closing line with the wall time of the steps run now (none if all were done)."""
        if not self.timings:
            return []
        return ["", "Step times: " + ", ".join(f"{name} {seconds / 60:.1f} min" for name, seconds in self.timings.items())]


def workflow_main(run_workflow, description: str, default_output_dir: Union[str, Callable[[dict], str]], argv=None,
                  add_arguments=None) -> str:
    """The command line of a workflow: ``--output-dir`` and the options ``add_arguments(parser)``
    adds, passed to ``run_workflow(output_dir, **options)``; prints and returns its report.
    ``default_output_dir`` is a path, or a function of the other options that gives one."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--output-dir")
    if add_arguments is not None:
        add_arguments(parser)
    options = vars(parser.parse_args(argv))
    output_dir = options.pop("output_dir")
    if output_dir is None:
        output_dir = default_output_dir(options) if callable(default_output_dir) else default_output_dir
    os.makedirs(output_dir, exist_ok=True)
    report = run_workflow(output_dir, **options)
    print(report)
    return report


def train_command(config: str, output_dir: str, *overrides: str) -> List[str]:
    """The launcher (``train_net.py``, i.e. ``python -m projects.common.engine``) on ``config``
    into ``output_dir``; ``--resume`` continues an interrupted run (a fresh start when there is no
    checkpoint yet)."""
    return [sys.executable, "-m", "projects.common.engine", "--config-file", config, "--resume",
            f"train.output_dir={output_dir}", *overrides]
