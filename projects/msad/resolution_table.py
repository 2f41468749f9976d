"""COCO AP of trained detectors across test resolutions: the MSAD supplement's Table 2 (a student
evaluated at 800 ... 160 px), for any config of the collection, printed as markdown and saved as
CSV and PNG.

    python -m projects.msad.resolution_table \\
        --run "student L" configs/msad/synthetic_fcos_student_cpu.py output/msad/synthetic_fcos_student_cpu/model_final.pth \\
        --run "teacher H&L" configs/msad/synthetic_fcos_teacher_cpu.py output/msad/synthetic_fcos_teacher_cpu/model_final.pth \\
        --run "teacher H" configs/msad/synthetic_fcos_teacher_cpu.py output/msad/synthetic_fcos_teacher_cpu/model_final.pth \\
            model.inference_path=high \\
        --test-sizes 256 192 160 128 96 64 --output output/msad/resolution_table

Each run is evaluated on its config's ``dataloader.test`` with the first test augmentation
(``ResizeShortestEdge``) set to each short edge in turn; its ``max_size`` keeps the config's
ratio to the short edge. Config overrides after a run's checkpoint apply to that run (e.g.
``model.inference_path=high`` evaluates a teacher's high-resolution path), ``--opts`` to all.
"""
import argparse
import csv
import io
import os

import torch
from tabulate import tabulate

from detectron2.config import instantiate

from projects.common.engine import do_test, load_config
from projects.common.io import save_figure_atomically, write_bytes_atomically
from projects.common.weights import load_trained_weights

METRICS = ("AP", "AP50", "AP75", "APs", "APm", "APl")


def set_test_size(test_loader_cfg, short_edge: int) -> None:
    """Resize test images to ``short_edge`` (max size scaled by the same factor)."""
    resize = test_loader_cfg.mapper.augmentations[0]
    ratio = resize.max_size / resize.short_edge_length
    resize.update(short_edge_length=short_edge, max_size=int(round(short_edge * ratio)))


def evaluate_run(label, config_file, checkpoint, test_sizes, opts):
    """Rows ``{"model", "size", <metric>: value}`` of one trained model."""
    cfg = load_config(config_file, opts)
    model = instantiate(cfg.model).to(cfg.train.device).eval()
    load_trained_weights(model, checkpoint)
    rows = []
    for size in test_sizes:
        set_test_size(cfg.dataloader.test, size)
        with torch.no_grad():
            results = do_test(cfg, model)
        if "bbox" not in results:
            raise ValueError(f"{config_file}: its evaluator gave no COCO 'bbox' results ({sorted(results)}); "
                             "the table needs detectron2's COCOEvaluator in dataloader.evaluator")
        rows.append({"model": label, "size": size, **{m: results["bbox"][m] for m in METRICS}})
    return rows


def markdown(rows):
    table = [[row["model"], row["size"], *(row[m] for m in METRICS)] for row in rows]
    return tabulate(table, headers=["model", "test size", *METRICS], tablefmt="github", floatfmt=".1f") + "\n"


def csv_bytes(rows) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["model", "size", *METRICS])
    for row in rows:
        writer.writerow([row["model"], row["size"], *(f"{row[m]:.2f}" for m in METRICS)])
    return text.getvalue().encode()


def save_plot(rows, path) -> None:
    """AP and AP_S against test size, one line per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    for label in dict.fromkeys(row["model"] for row in rows):
        own = [row for row in rows if row["model"] == label]
        for axis, metric in zip(axes, ("AP", "APs")):
            axis.plot([row["size"] for row in own], [row[metric] for row in own], "-o", label=label)
    for axis, metric in zip(axes, ("AP", "APs")):
        axis.set_xlabel("test short edge (px)")
        axis.set_ylabel(f"COCO {metric}")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.suptitle("Detection accuracy across test resolutions")
    figure.tight_layout()
    save_figure_atomically(figure, path)
    plt.close(figure)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", nargs="+", action="append", required=True,
                        metavar="LABEL CONFIG CHECKPOINT [KEY=VALUE]",
                        help="a trained model and its own config overrides (repeatable)")
    parser.add_argument("--test-sizes", type=int, nargs="+", required=True, help="test short edges (px)")
    parser.add_argument("--output", required=True, help="path prefix of the .csv and .png written")
    parser.add_argument("--opts", nargs="*", default=[], help="config overrides applied to every run")
    args = parser.parse_args(argv)
    for run in args.run:
        if len(run) < 3:
            parser.error(f"--run {' '.join(run)}: give LABEL CONFIG CHECKPOINT, then optional KEY=VALUE overrides")
        _, config_file, checkpoint = run[:3]
        if not os.path.isfile(checkpoint):
            parser.error(f"checkpoint {checkpoint!r} does not exist: train {config_file} first "
                         "(d2c-train --config-file ...) or fix the path")
    if min(args.test_sizes) < 1:
        parser.error("--test-sizes must be positive")

    rows = []
    for label, config_file, checkpoint, *overrides in args.run:
        rows += evaluate_run(label, config_file, checkpoint, args.test_sizes, [*args.opts, *overrides])
    print(markdown(rows), end="")
    write_bytes_atomically(args.output + ".csv", csv_bytes(rows))
    save_plot(rows, args.output + ".png")
    return rows


if __name__ == "__main__":
    main()
