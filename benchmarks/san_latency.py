#!/usr/bin/env python
"""CPU eval latency of a SAN ResNet against a plain ResNet of the same shape, per resolution.

In eval mode every generated convolution caches its kernel per scale encoding (MetaConv2d), so
after the first call at a resolution SAN runs plain convolutions with private BN: its latency
should match the plain ResNet's. The first call at a new resolution also generates every kernel
(one ``Linear(1, kernel size)`` per convolution); that one-time cost is timed separately, over
all generated convolutions with an empty cache, and reported next to one plain forward.

    python benchmarks/san_latency.py [--depth 18 --width 1.0 --batch 1 --repeats 7] \
        [--resolutions 224 192 160 128 96] [--markdown out.md] [--plot out.png]
"""
import argparse
import os
import statistics
import sys
import time

import torch
from tabulate import tabulate

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from detectron2.modeling.backbone import BasicStem, ResNet  # noqa: E402

from projects.common.io import save_figure_atomically, write_bytes_atomically  # noqa: E402
from projects.common.modeling import scaled_resnet_stages  # noqa: E402
from projects.san import MetaConv2d, SANResNet, scale_encoding  # noqa: E402

TRAINING_RESOLUTIONS = (224, 192, 160, 128, 96)


def plain_resnet(depth, width):
    """detectron2's ResNet with SANResNet's shape: 7x7 stem, 3x3 max pool, the same channels."""
    stem_channels = int(round(64 * width))
    block_kwargs = {"norm": "BN"} if depth < 50 else {"norm": "BN", "stride_in_1x1": False}
    return ResNet(
        BasicStem(in_channels=3, out_channels=stem_channels, norm="BN"),
        scaled_resnet_stages(depth, width=width, stem_channels=stem_channels, **block_kwargs),
        out_features=["res5"],
    )


def interleaved_median_ms(functions, repeats):
    """Median wall time of each function over ``repeats`` rounds, after one warm-up call each
    (which fills SAN's kernel cache). The functions alternate within every round, so load from
    other processes on a shared machine hits them alike."""
    for function in functions:
        function()
    times = [[] for _ in functions]
    for _ in range(repeats):
        for function, function_times in zip(functions, times):
            start = time.perf_counter()
            function()
            function_times.append(time.perf_counter() - start)
    return [1000 * statistics.median(function_times) for function_times in times]


def kernel_generation_ms(backbone, resolution, repeats):
    """Median time to generate every kernel of ``backbone`` for ``resolution`` from an empty cache."""
    convolutions = [m for m in backbone.modules() if isinstance(m, MetaConv2d)]
    encoding = scale_encoding(resolution)
    times = []
    for _ in range(repeats):
        backbone.eval()  # empties every kernel cache
        start = time.perf_counter()
        for convolution in convolutions:
            convolution.kernel(encoding)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def latency_rows(depth, width, batch, resolutions, repeats):
    """Rows (resolution, plain ms, SAN cached ms, SAN / plain, generation ms, generation / plain)."""
    san = SANResNet(depth=depth, resolutions=TRAINING_RESOLUTIONS, width=width).eval()
    plain = plain_resnet(depth, width).eval()
    rows = []
    with torch.no_grad():
        for resolution in resolutions:
            x = torch.randn(batch, 3, resolution, resolution)
            plain_ms, san_ms = interleaved_median_ms([lambda: plain(x), lambda: san(x)], repeats)
            generation_ms = kernel_generation_ms(san, resolution, repeats)
            rows.append([resolution, plain_ms, san_ms, san_ms / plain_ms, generation_ms, generation_ms / plain_ms])
    return rows


def latency_table(rows):
    header = ["resolution", "plain ms", "SAN cached ms", "SAN / plain", "kernel generation ms",
              "generation / plain forward"]
    return tabulate(rows, headers=header, tablefmt="github", floatfmt=("", ".1f", ".1f", ".2f", ".1f", ".2f"))


def plot(rows, path, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    resolutions = [row[0] for row in rows]
    figure, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    axes[0].plot(resolutions, [row[1] for row in rows], "-o", label="plain ResNet")
    axes[0].plot(resolutions, [row[2] for row in rows], "-s", label="SAN, cached kernels")
    axes[0].plot(resolutions, [row[4] for row in rows], "-^", label="SAN kernel generation (once)")
    axes[0].set_ylabel("ms (median)")
    axes[1].plot(resolutions, [row[3] for row in rows], "-s", label="SAN cached / plain")
    axes[1].plot(resolutions, [row[5] for row in rows], "-^", label="generation / plain forward")
    axes[1].axhline(1.0, color="gray", linewidth=0.8)
    axes[1].set_ylabel("time ratio")
    for axis in axes:
        axis.set_xlabel("input resolution (px)")
        axis.legend(fontsize=8)
    figure.suptitle(title)
    figure.tight_layout()
    save_figure_atomically(figure, path)
    plt.close(figure)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", type=int, default=18, choices=[18, 34, 50, 101, 152])
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--resolutions", type=int, nargs="+", default=list(TRAINING_RESOLUTIONS))
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--markdown", help="also write the table to this markdown file")
    parser.add_argument("--plot", help="write the latency plot to this PNG")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    setting = (f"ResNet-{args.depth} x{args.width:g}, batch {args.batch}, eval, "
               f"{torch.get_num_threads()} CPU threads, torch {torch.__version__}")
    rows = latency_rows(args.depth, args.width, args.batch, args.resolutions, args.repeats)
    text = f"SAN vs plain ResNet latency ({setting}), median of {args.repeats}:\n\n{latency_table(rows)}"
    print(text)
    if args.markdown:
        write_bytes_atomically(args.markdown, (text + "\n").encode())
    if args.plot:
        plot(rows, args.plot, f"SAN latency on CPU ({setting})")
    return rows


if __name__ == "__main__":
    main()
