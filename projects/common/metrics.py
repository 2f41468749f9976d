"""Reading the metrics that train_net.py runs write (``<output_dir>/metrics.json``)."""
import fnmatch
import json
import os


def last_evaluation(run_dir, patterns):
    """The last metrics.json record holding a metric that matches one of ``patterns``."""
    path = os.path.join(run_dir, "metrics.json")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} does not exist: is {run_dir!r} a train_net.py output_dir?")
    with open(path) as f:
        records = [json.loads(line) for line in f if line.strip()]
    evaluations = [r for r in records if any(fnmatch.fnmatchcase(k, p) for k in r for p in patterns)]
    if not evaluations:
        raise ValueError(f"{path} has no evaluation with {patterns}: the run never reached an "
                         f"evaluation, or see its metric names: {sorted(records[-1]) if records else []}")
    return evaluations[-1]
