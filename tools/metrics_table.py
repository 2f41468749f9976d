#!/usr/bin/env python
"""Markdown table of the last evaluation of several train_net.py runs (their metrics.json).

    python tools/metrics_table.py output/run_a output/run_b --keys bbox/AP bbox/AP50 \
        "occlusion/bbox_AP_r0.8to1.0" [--markdown table.md]

A key may be a prefix ending in "*" (e.g. "occlusion/bbox_AP_*") to take every matching metric.
"""
import argparse
import fnmatch
import os

from tabulate import tabulate

from projects.common.metrics import last_evaluation


def metrics_table(run_dirs, patterns):
    """One row per run: its folder name, the iteration of its last evaluation and the metrics
    matching ``patterns`` (one decimal; "-" where the run did not evaluate a metric)."""
    results = [last_evaluation(run, patterns) for run in run_dirs]
    keys = []
    for pattern in patterns:
        matches = sorted({k for r in results for k in r if fnmatch.fnmatchcase(k, pattern)})
        if not matches:
            raise KeyError(f"no evaluated metric matches {pattern!r}; available: {sorted(results[0])}")
        keys += [k for k in matches if k not in keys]
    rows = [[os.path.basename(os.path.normpath(run)), result.get("iteration"), *(result.get(k) for k in keys)]
            for run, result in zip(run_dirs, results)]
    return tabulate(rows, headers=["run", "iteration", *keys], tablefmt="github", floatfmt=".1f", missingval="-") + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="train_net.py output directories")
    parser.add_argument("--keys", nargs="+", required=True, help="metric names or patterns with *")
    parser.add_argument("--markdown", help="also write the table to this file")
    args = parser.parse_args(argv)
    table = metrics_table(args.runs, args.keys)
    print(table, end="")
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(table)


if __name__ == "__main__":
    main()
