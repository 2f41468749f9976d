"""The SAN experiment on the embedded data, end to end and over several seeds: trains the CPU SAN
of a backbone family and its individually trained baselines (one per training resolution) with
the collection's launcher for every seed, then evaluates all of them over the test resolutions
with ``projects.san.resolution_table``'s evaluation and prints the mean and standard deviation
over the seeds (the supplement's Tables 4/5/7 question: SAN vs baselines), saved as CSV and PNG.

    python -m projects.san.experiment --family R18 --seeds 0 1 2 --max-iter 600 \\
        --test-resolutions 80 68 64 60 56 52 48 44 40 36 32 28 24 --output-dir output/san/experiment_R18

Runs live in ``<output-dir>/seed<S>/<config name>/``. A finished run (``model_final.pth``) is not
trained again and an interrupted one continues from its last checkpoint (``--resume``), so the
command can simply be rerun after a stop. Every run keeps its config's optimisation; only the
seed, the length (the LR schedules are fractions of it) and the output folder are overridden.
"""
import argparse
import csv
import io
import json
import os
import statistics
import subprocess
import time

from tabulate import tabulate

from projects.common.io import write_bytes_atomically
from projects.common.workflow import train_command
from projects.san import INFERENCE_MODES
from projects.san.resolution_table import evaluate_run, save_plot

FAMILIES = {
    # family: (SAN config, its baselines' configs), by name; SAN trains at 64/48/32, the R18
    # baselines also at 56 and 40, resolutions SAN never sees (supplement Table 7)
    "R18": ("san/san_R18_synthetic_cpu.py",
            [f"san/baseline_R18_synthetic_cpu_{r}.py" for r in (64, 56, 48, 40, 32)]),
    "MobileNetV2": ("san/san_MobileNetV2_synthetic_cpu.py",
                    [f"san/baseline_MobileNetV2_synthetic_cpu_{r}.py" for r in (64, 48, 32)]),
}


def run_label(config_file: str) -> str:
    """'SAN' or 'baseline <resolution>' for the table."""
    name = os.path.splitext(os.path.basename(config_file))[0]
    return f"baseline {name.rsplit('_', 1)[1]}" if name.startswith("baseline") else "SAN"


def train(config_file: str, seed: int, max_iter: int, output_dir: str, extra_opts) -> str:
    """Train one run with the launcher unless it finished already; the path of its final weights.
    The launcher's output goes to ``<output_dir>.log``."""
    final = os.path.join(output_dir, "model_final.pth")
    if os.path.isfile(final):
        print(f"[san.experiment] done already: {final}", flush=True)
        return final
    command = train_command(
        config_file, output_dir, f"train.seed={seed}", f"train.max_iter={max_iter}",
        f"train.eval_period={max_iter}", f"train.checkpointer.period={max(max_iter // 4, 1)}", *extra_opts,
    )
    print("[san.experiment] " + " ".join(command), flush=True)
    os.makedirs(os.path.dirname(output_dir), exist_ok=True)
    start = time.time()
    log_file = output_dir + ".log"  # next to the run's folder
    with open(log_file, "a") as log:
        status = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT).returncode
    if status:
        with open(log_file) as log:
            tail = "".join(log.readlines()[-15:])
        raise RuntimeError(f"training {config_file} failed (exit {status}); the end of {log_file}:\n{tail}")
    print(f"[san.experiment] trained in {time.time() - start:.0f} s", flush=True)
    return final


def summarise(rows_per_seed, test_resolutions):
    """Mean and sample standard deviation (n - 1) over the seeds of every (model, inference) row."""
    summary = []
    for rows in zip(*rows_per_seed):
        row = {"model": rows[0]["model"], "inference": rows[0]["inference"], "seeds": len(rows)}
        for t in test_resolutions:
            values = [r[t] for r in rows]
            row[t] = (statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0)
        summary.append(row)
    return summary


def markdown(summary, test_resolutions):
    """The summary as a table of "mean ± std" cells, one column per test resolution, one decimal."""
    table = [[row["model"], row["inference"], *(f"{row[t][0]:.1f} ± {row[t][1]:.1f}" for t in test_resolutions)]
             for row in summary]
    headers = ["model", "inference", *(str(t) for t in test_resolutions)]
    return tabulate(table, headers=headers, tablefmt="github") + "\n"


def csv_bytes(summary, test_resolutions) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["model", "inference", "seeds", *(f"{t}_{k}" for t in test_resolutions for k in ("mean", "std"))])
    for row in summary:
        writer.writerow([row["model"], row["inference"], row["seeds"],
                         *(f"{v:.2f}" for t in test_resolutions for v in row[t])])
    return text.getvalue().encode()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", choices=sorted(FAMILIES), default="R18")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--max-iter", type=int, default=300, help="training iterations of every run")
    parser.add_argument("--test-resolutions", type=int, nargs="+",
                        default=[80, 68, 64, 60, 56, 52, 48, 44, 40, 36, 32, 28, 24],
                        help="default: the supplement's Table 5 grid at this scale (training +- 4 px) and beyond")
    parser.add_argument("--modes", nargs="+", choices=INFERENCE_MODES, default=list(INFERENCE_MODES),
                        help="inference modes of the SAN models")
    parser.add_argument("--calibration-batches", type=int, default=10)
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--opts", nargs="*", default=[],
                        help="config overrides applied to every run, in training and evaluation")
    args = parser.parse_args(argv)
    if len(set(args.seeds)) != len(args.seeds):
        parser.error(f"--seeds {args.seeds} repeats a seed")
    if args.max_iter < 1:
        parser.error("--max-iter must be at least 1")

    san_config, baseline_configs = FAMILIES[args.family]
    configs = baseline_configs + [san_config]
    rows_per_seed = []
    for seed in args.seeds:
        rows = []
        for config_file in configs:
            output_dir = os.path.join(args.output_dir, f"seed{seed}",
                                      os.path.splitext(os.path.basename(config_file))[0])
            checkpoint = train(config_file, seed, args.max_iter, output_dir, args.opts)
            rows += evaluate_run(run_label(config_file), config_file, checkpoint,
                                 args.test_resolutions, args.modes, args.calibration_batches, args.opts)
        rows_per_seed.append(rows)
        write_bytes_atomically(os.path.join(args.output_dir, f"seed{seed}", "table.json"),
                               json.dumps(rows, indent=1).encode())

    summary = summarise(rows_per_seed, args.test_resolutions)
    print(f"{args.family}, seeds {args.seeds}, {args.max_iter} iterations per run:")
    table = markdown(summary, args.test_resolutions)
    print(table, end="")
    prefix = os.path.join(args.output_dir, "table")
    write_bytes_atomically(prefix + ".md", table.encode())
    write_bytes_atomically(prefix + ".csv", csv_bytes(summary, args.test_resolutions))
    title = f"SAN {args.family} vs individually trained ({len(args.seeds)} seeds)"
    save_plot(summary, args.test_resolutions, prefix + ".png", title=title,
              ylabel="top-1 accuracy (%), mean ± std over seeds")
    return summary


if __name__ == "__main__":
    main()
