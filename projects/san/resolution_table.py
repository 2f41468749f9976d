"""Top-1 accuracy of trained classifiers over a list of test resolutions: the SAN supplement's
train-resolution x test-resolution tables (Tables 4, 5, 7: baselines trained at one resolution
against SAN), printed as markdown and saved as CSV and PNG.

    python -m projects.san.resolution_table \\
        --run "baseline 64" configs/san/baseline_R18_synthetic_cpu_64.py output/san/baseline_R18_synthetic_cpu_64/model_final.pth \\
        --run "baseline 32" configs/san/baseline_R18_synthetic_cpu_32.py output/san/baseline_R18_synthetic_cpu_32/model_final.pth \\
        --run SAN configs/san/san_R18_synthetic_cpu.py output/san/san_R18_synthetic_cpu/model_final.pth \\
        --test-resolutions 80 64 56 48 40 32 --modes proxy ideal data_free --calibration-batches 10 \\
        --output output/san/resolution_table

Every run is evaluated on its config's ``dataloader.test`` with the SAN validation resize (short
edge floor(T / 0.875), centre crop T). A SAN model (trained at several resolutions) gives
one row per inference mode (supplement Algorithms 2-4): "proxy", "ideal" (BN statistics
re-estimated at T on ``--calibration-batches`` training batches of the config's train loader,
random-resized crops of T) and "data_free"; other models give one row.
"""
import argparse
import csv
import io
import itertools
import os

import torch
from tabulate import tabulate

from detectron2.config import LazyCall as L
from detectron2.config import instantiate

from projects.common.engine import do_test, load_config
from projects.common.io import save_figure_atomically, write_bytes_atomically
from projects.common.weights import load_trained_weights
from projects.san import INFERENCE_MODES, MultiResolutionClassificationMapper, calibrate_batchnorm, set_test_resolution


def is_scale_adaptive(model) -> bool:
    """A SAN trained at several resolutions (one trained at a single resolution is a plain
    network: its only BN and its kernels at one encoding)."""
    return len(getattr(model.backbone, "resolutions", ())) > 1


def calibration_batches(cfg, model, resolution, num_batches):
    """``num_batches`` preprocessed training batches at ``resolution`` (random-resized crops with
    flips from the config's training set): the data of SAN's ideal inference."""
    train_loader = cfg.dataloader.train.copy()
    train_loader.mapper = L(MultiResolutionClassificationMapper)(
        resolutions=[resolution],
        crop_scale=cfg.dataloader.train.mapper.get("crop_scale", (0.08, 1.0)),
        image_format=cfg.dataloader.test.mapper.image_format,
    )
    train_loader.num_workers = cfg.dataloader.test.num_workers
    batches = itertools.islice(instantiate(train_loader), num_batches)
    return [model.preprocess_image(batch).tensor for batch in batches]


def top1_at(cfg, model, resolution) -> float:
    set_test_resolution(cfg.dataloader.test, resolution)
    return do_test(cfg, model)["classification"]["top1"]


def evaluate_run(label, config_file, checkpoint, test_resolutions, modes, num_calibration_batches, opts):
    """Rows ``{"model", "inference", <resolution>: top-1 ...}`` of one trained model."""
    cfg = load_config(config_file, opts)
    model = instantiate(cfg.model).to(cfg.train.device).eval()
    load_trained_weights(model, checkpoint)
    if not is_scale_adaptive(model):
        return [{"model": label, "inference": "-", **{t: top1_at(cfg, model, t) for t in test_resolutions}}]
    rows = []
    for mode in modes:
        model.backbone.set_inference_mode(mode)
        row = {"model": label, "inference": mode}
        for resolution in test_resolutions:
            if mode == "ideal":
                with torch.no_grad():
                    batches = calibration_batches(cfg, model, resolution, num_calibration_batches)
                calibrate_batchnorm(model.backbone, batches, resolution)
            row[resolution] = top1_at(cfg, model, resolution)
        rows.append(row)
    return rows


def markdown(rows, test_resolutions):
    """The table of top-1 accuracies, one column per test resolution, one decimal."""
    table = [[row["model"], row["inference"], *(row[t] for t in test_resolutions)] for row in rows]
    headers = ["model", "inference", *(str(t) for t in test_resolutions)]
    return tabulate(table, headers=headers, tablefmt="github", floatfmt=".1f") + "\n"


def csv_bytes(rows, test_resolutions) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["model", "inference", *test_resolutions])
    for row in rows:
        writer.writerow([row["model"], row["inference"], *(f"{row[t]:.2f}" for t in test_resolutions)])
    return text.getvalue().encode()


def save_plot(rows, test_resolutions, path, title="Accuracy across test resolutions: individually trained vs SAN",
              ylabel="top-1 accuracy (%)") -> None:
    """Top-1 against test resolution, one line per row of the table; a cell that is a
    (mean, std) pair (``projects.san.experiment``'s seeds) gets its error bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4.5))
    for row in rows:
        label = row["model"] if row["inference"] == "-" else f"{row['model']} ({row['inference']})"
        cells = [row[t] if isinstance(row[t], tuple) else (row[t], 0.0) for t in test_resolutions]
        axis.errorbar(test_resolutions, [mean for mean, _ in cells], yerr=[std for _, std in cells], capsize=3,
                      fmt="-o" if row["inference"] == "-" else "-s", label=label)
    axis.set_xlabel("test resolution (px)")
    axis.set_ylabel(ylabel)
    axis.set_title(title)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    save_figure_atomically(figure, path)
    plt.close(figure)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", nargs=3, action="append", required=True,
                        metavar=("LABEL", "CONFIG", "CHECKPOINT"), help="a trained model (repeatable)")
    parser.add_argument("--test-resolutions", type=int, nargs="+", required=True)
    parser.add_argument("--modes", nargs="+", choices=INFERENCE_MODES, default=list(INFERENCE_MODES),
                        help="inference modes of SAN models")
    parser.add_argument("--calibration-batches", type=int, default=10,
                        help="training batches that re-estimate BN statistics for 'ideal'")
    parser.add_argument("--output", required=True, help="path prefix of the .csv and .png written")
    parser.add_argument("--opts", nargs="*", default=[], help="config overrides applied to every run")
    args = parser.parse_args(argv)
    if "ideal" in args.modes and args.calibration_batches < 1:
        parser.error("--calibration-batches must be at least 1 for the 'ideal' mode")
    for _, config_file, checkpoint in args.run:
        if not os.path.isfile(checkpoint):
            parser.error(f"checkpoint {checkpoint!r} does not exist: train {config_file} first "
                         "(d2c-train --config-file ...) or fix the path")

    rows = []
    for label, config_file, checkpoint in args.run:
        rows += evaluate_run(label, config_file, checkpoint, args.test_resolutions, args.modes,
                             args.calibration_batches, args.opts)
    print(markdown(rows, args.test_resolutions), end="")
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    write_bytes_atomically(args.output + ".csv", csv_bytes(rows, args.test_resolutions))
    save_plot(rows, args.test_resolutions, args.output + ".png")
    return rows


if __name__ == "__main__":
    main()
