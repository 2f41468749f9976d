#!/usr/bin/env python
"""CPU eval latency of a SAN ResNet against a plain ResNet of the same shape, per resolution, in
the default memory format and in channels_last (times from benchmarks/timing.py: the four
variants interleaved, process CPU time, median of the repeats).

In eval mode every generated convolution caches its kernel per scale encoding and memory format
(MetaConv2d), so after the first call at a resolution SAN runs plain convolutions with private
BN: its latency should match the plain ResNet's. channels_last is switched on as a user would,
``model.to(memory_format=torch.channels_last)``: the stem's output turns channels_last and the
generated kernels are cached in it. The first call at a new resolution also generates every
kernel (one ``Linear(1, kernel size)`` per convolution); that one-time cost is timed separately,
over all generated convolutions with an empty cache, and reported next to one plain forward.

    python benchmarks/san_latency.py [--depth 18 --width 1.0 --batch 1 --repeats 7 --threads 1] \
        [--resolutions 224 192 160 128 96] [--markdown out.md] [--plot out.png]
"""
import argparse
import copy
import os
import statistics
import sys
import time

import torch
from tabulate import tabulate

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from detectron2.modeling.backbone import BasicStem, ResNet  # noqa: E402

from benchmarks.timing import describe, interleaved, use_threads  # noqa: E402
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


def kernel_generation_ms(backbone, resolution, repeats):
    """Median process CPU time to generate every kernel of ``backbone`` for ``resolution`` from
    an empty cache."""
    convolutions = [m for m in backbone.modules() if isinstance(m, MetaConv2d)]
    encoding = scale_encoding(resolution)
    times = []
    for _ in range(repeats):
        backbone.eval()  # empties every kernel cache
        start = time.process_time()
        for convolution in convolutions:
            convolution.kernel(encoding)
        times.append(time.process_time() - start)
    return 1000 * statistics.median(times)


def latency_rows(depth, width, batch, resolutions, repeats):
    """Rows (resolution, plain ms, SAN ms, SAN / plain, plain channels_last ms, SAN channels_last
    ms, SAN / plain in channels_last, SAN default / SAN channels_last, generation ms,
    generation / plain forward)."""
    san = SANResNet(depth=depth, resolutions=TRAINING_RESOLUTIONS, width=width).eval()
    plain = plain_resnet(depth, width).eval()
    san_channels_last = copy.deepcopy(san).to(memory_format=torch.channels_last)
    plain_channels_last = copy.deepcopy(plain).to(memory_format=torch.channels_last)
    rows = []
    with torch.no_grad():
        for resolution in resolutions:
            x = torch.randn(batch, 3, resolution, resolution)
            times = interleaved({
                "plain": lambda: plain(x), "san": lambda: san(x),
                "plain_cl": lambda: plain_channels_last(x), "san_cl": lambda: san_channels_last(x),
            }, repeats)  # the warm-up call fills SAN's kernel caches
            plain_ms, san_ms, plain_cl_ms, san_cl_ms = (times[name].ms for name in ("plain", "san", "plain_cl", "san_cl"))
            generation_ms = kernel_generation_ms(san, resolution, repeats)
            rows.append([resolution, plain_ms, san_ms, san_ms / plain_ms, plain_cl_ms, san_cl_ms,
                         san_cl_ms / plain_cl_ms, san_ms / san_cl_ms, generation_ms, generation_ms / plain_ms])
    return rows


def latency_table(rows):
    header = ["resolution", "plain ms", "SAN ms", "SAN / plain", "plain CL ms", "SAN CL ms", "SAN / plain (CL)",
              "SAN default / CL", "kernel generation ms", "generation / plain forward"]
    return tabulate(rows, headers=header, tablefmt="github",
                    floatfmt=("", ".1f", ".1f", ".2f", ".1f", ".1f", ".2f", ".2f", ".1f", ".2f"))


def plot(rows, path, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    resolutions = [row[0] for row in rows]
    figure, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    axes[0].plot(resolutions, [row[1] for row in rows], "-o", label="plain ResNet")
    axes[0].plot(resolutions, [row[2] for row in rows], "-s", label="SAN, cached kernels")
    axes[0].plot(resolutions, [row[4] for row in rows], "--o", label="plain ResNet, channels_last")
    axes[0].plot(resolutions, [row[5] for row in rows], "--s", label="SAN, channels_last")
    axes[0].plot(resolutions, [row[8] for row in rows], "-^", label="SAN kernel generation (once)")
    axes[0].set_ylabel("ms (median)")
    axes[1].plot(resolutions, [row[3] for row in rows], "-s", label="SAN cached / plain")
    axes[1].plot(resolutions, [row[6] for row in rows], "--s", label="SAN / plain, channels_last")
    axes[1].plot(resolutions, [row[9] for row in rows], "-^", label="generation / plain forward")
    axes[1].axhline(1.0, color="gray", linewidth=0.8)
    axes[1].set_ylabel("time ratio")
    for axis in axes:
        axis.set_xlabel("input resolution (px)")
        axis.legend(fontsize=8)
    figure.suptitle(title, fontsize=9)
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
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--markdown", help="also write the table to this markdown file")
    parser.add_argument("--plot", help="write the latency plot to this PNG")
    args = parser.parse_args(argv)
    use_threads(args.threads)
    torch.manual_seed(0)
    setting = f"ResNet-{args.depth} x{args.width:g}, batch {args.batch}, eval; {describe(args.repeats)}"
    rows = latency_rows(args.depth, args.width, args.batch, args.resolutions, args.repeats)
    text = f"SAN vs plain ResNet latency ({setting}; CL = channels_last):\n\n{latency_table(rows)}"
    print(text)
    if args.markdown:
        write_bytes_atomically(args.markdown, (text + "\n").encode())
    if args.plot:
        plot(rows, args.plot, f"SAN latency on CPU ({setting})")
    return rows


if __name__ == "__main__":
    main()
