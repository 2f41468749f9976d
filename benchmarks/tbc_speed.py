#!/usr/bin/env python
"""TBC paper, Fig. 3, on this machine: time of group vs tied block convolution as B (= groups)
grows at fixed FLOPs, forward and forward+backward, median of repeated runs.

At B = 1 both are the standard convolution C -> C. For B > 1 the output width grows to C*B so
that every layer costs the same multiply-adds, H*W*k^2*C*C (the paper: "the total FLOPs at these
values were fixed by changing the total filter number").

Second table: our TiedBlockConv2d against two other ways of computing TBC on the same shapes,
as time ratios: the authors' reshape-based layer (a plain Conv2d on the input viewed as
(N*B, C/B, H, W), output size computed by hand) and a grouped convolution whose weight is the
shared one tiled B times.

    python benchmarks/tbc_speed.py [--channels 128 --size 56 --batch 4 --repeats 7] \
        [--markdown out.md] [--plot out.png]
"""
import argparse
import os
import statistics
import sys
import time

import torch
from tabulate import tabulate
from torch import nn
from torch.nn import functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tied_conv import TiedBlockConv2d  # noqa: E402


class AuthorsStyleTBC(nn.Module):
    """The reshape-based TBC as the authors' public layer computes it (for timing only)."""

    def __init__(self, in_channels, out_channels, kernel_size, padding, B):
        super().__init__()
        self.B, self.out_channels, self.kernel_size, self.padding = B, out_channels, kernel_size, padding
        self.conv = nn.Conv2d(in_channels // B, out_channels // B, kernel_size, padding=padding, bias=False)

    def forward(self, x):
        n, c, h, w = x.size()
        h_out = (h + 2 * self.padding - self.kernel_size) + 1  # stride 1 only
        w_out = (w + 2 * self.padding - self.kernel_size) + 1
        return self.conv(x.view(n * self.B, c // self.B, h, w)).view(n, self.out_channels, h_out, w_out)


class TiledWeightTBC(nn.Module):
    """TBC as a grouped convolution with the shared weight repeated B times (for timing only)."""

    def __init__(self, in_channels, out_channels, kernel_size, padding, B):
        super().__init__()
        self.B, self.padding = B, padding
        self.weight = nn.Parameter(torch.randn(out_channels // B, in_channels // B, kernel_size, kernel_size))

    def forward(self, x):
        return F.conv2d(x, self.weight.repeat(self.B, 1, 1, 1), padding=self.padding, groups=self.B)


def median_seconds(layer, x, repeats, backward):
    """Median wall time of ``repeats`` calls after two warm-up calls."""
    times = []
    for i in range(repeats + 2):
        start = time.perf_counter()
        y = layer(x)
        if backward:
            y.sum().backward()
        elapsed = time.perf_counter() - start
        if i >= 2:
            times.append(elapsed)
    return statistics.median(times)


def fixed_flops_table(args, blocks):
    """Rows (B, GC forward, TBC forward, GC fwd+bwd, TBC fwd+bwd) in milliseconds."""
    c, rows = args.channels, []
    for B in blocks:
        x = torch.randn(args.batch, c, args.size, args.size, requires_grad=True)
        group = nn.Conv2d(c, c * B, 3, padding=1, groups=B, bias=False)
        tied = TiedBlockConv2d(c, c * B, 3, padding=1, bias=False, B=B)
        row = [B]
        for backward in (False, True):
            for layer in (group, tied):
                with torch.set_grad_enabled(backward):
                    row.append(1000 * median_seconds(layer, x, args.repeats, backward))
        rows.append([row[0], row[1], row[2], row[3], row[4]])
    return rows


def implementation_table(args, blocks):
    """Rows (B, ours ms, authors' ms, tiled ms, authors'/ours, tiled/ours), forward+backward."""
    c, rows = args.channels, []
    for B in blocks:
        x = torch.randn(args.batch, c, args.size, args.size, requires_grad=True)
        ours = TiedBlockConv2d(c, c, 3, padding=1, bias=False, B=B)
        authors = AuthorsStyleTBC(c, c, 3, 1, B)
        tiled = TiledWeightTBC(c, c, 3, 1, B)
        times = [1000 * median_seconds(layer, x, args.repeats, True) for layer in (ours, authors, tiled)]
        rows.append([B, *times, times[1] / times[0], times[2] / times[0]])
    return rows


def plot(rows, path, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    blocks = [row[0] for row in rows]
    figure, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    for axis, (gc, tbc, label) in zip(axes, ((1, 2, "forward"), (3, 4, "forward + backward"))):
        axis.plot(blocks, [row[gc] for row in rows], "-o", label="group conv (groups = B)")
        axis.plot(blocks, [row[tbc] for row in rows], "-s", label="tied block conv")
        axis.set_xscale("log", base=2)
        axis.set_xlabel("B (= groups), FLOPs fixed")
        axis.set_ylabel("ms per call (median)")
        axis.set_title(label)
        axis.legend()
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", type=int, default=128)
    parser.add_argument("--size", type=int, default=56)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--blocks", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--markdown", help="also write the tables to this markdown file")
    parser.add_argument("--plot", help="write the Fig. 3 style plot to this PNG")
    args = parser.parse_args(argv)
    torch.manual_seed(0)

    setting = (f"input {args.batch}x{args.channels}x{args.size}x{args.size}, 3x3, "
               f"{torch.get_num_threads()} CPU threads, torch {torch.__version__}")
    speed = fixed_flops_table(args, args.blocks)
    implementations = implementation_table(args, args.blocks)
    text = "\n\n".join([
        f"Fixed FLOPs ({setting}), ms per call, median of {args.repeats}:",
        tabulate(speed, headers=["B", "GC fwd", "TBC fwd", "GC fwd+bwd", "TBC fwd+bwd"], tablefmt="github",
                 floatfmt=".1f"),
        f"TBC implementations, {args.channels} -> {args.channels}, fwd+bwd ms and time ratio to ours:",
        tabulate(implementations,
                 headers=["B", "ours", "authors' reshape", "tiled grouped", "authors'/ours", "tiled/ours"],
                 tablefmt="github", floatfmt=("", ".1f", ".1f", ".1f", ".2f", ".2f")),
    ])
    print(text)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text + "\n")
    if args.plot:
        plot(speed, args.plot, f"TBC paper, Fig. 3, on CPU ({setting})")


if __name__ == "__main__":
    main()
