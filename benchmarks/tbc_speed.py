#!/usr/bin/env python
"""TBC paper, Fig. 3, and the forms of TBC on this machine (times from benchmarks/timing.py:
variants interleaved, process CPU time on the CPU, median of the repeats).

1. Fixed FLOPs (Fig. 3): group vs tied block convolution as B (= groups) grows, forward and
   forward+backward. At B = 1 both are the standard convolution C -> C; for B > 1 the output
   width grows to C*B so that every layer costs the same multiply-adds, H*W*k^2*C*C (the paper:
   "the total FLOPs at these values were fixed by changing the total filter number").
2. TBC against the dense convolution it replaces (C -> C, B^2 more parameters, B more FLOPs),
   forward+backward: the speed-up TBC buys.
3. Our ``TiedBlockConv2d`` against every other way of computing the same layer: the authors'
   reshape-based layer (a plain Conv2d on the input viewed as (N*B, C/B, H, W), output size by
   hand) and a grouped convolution whose weight is the shared one tiled B times, forward+backward
   and forward alone without gradients. Ours picks one of those two forms by shape
   (``TiedBlockConv2d.tiled_weight_is_faster``), so "best other / ours" should never be below 1
   by more than the noise.

    python benchmarks/tbc_speed.py [--channels 256 --size 28 --batch 4 --repeats 7 --threads 1] \
        [--markdown out.md] [--plot out.png]
"""
import argparse
import os
import sys

import torch
from tabulate import tabulate
from torch import nn
from torch.nn import functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.timing import describe, interleaved, use_threads  # noqa: E402
from projects.common.io import save_figure_atomically, write_bytes_atomically  # noqa: E402
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


def call(layer, x, backward):
    """A function running ``layer`` on ``x`` (and its backward pass), for ``interleaved``."""

    def run():
        with torch.set_grad_enabled(backward):
            y = layer(x)
            if backward:
                y.sum().backward()

    return run


def fixed_flops_table(args, blocks):
    """Rows (B, GC fwd, TBC fwd, GC fwd+bwd, TBC fwd+bwd) in milliseconds."""
    c, rows = args.channels, []
    for B in blocks:
        x = torch.randn(args.batch, c, args.size, args.size, requires_grad=True)
        group = nn.Conv2d(c, c * B, 3, padding=1, groups=B, bias=False)
        tied = TiedBlockConv2d(c, c * B, 3, padding=1, bias=False, B=B)
        times = interleaved({
            "gc": call(group, x, False), "tbc": call(tied, x, False),
            "gc_bwd": call(group, x, True), "tbc_bwd": call(tied, x, True),
        }, args.repeats)
        rows.append([B] + [times[name].ms for name in ("gc", "tbc", "gc_bwd", "tbc_bwd")])
    return rows


def dense_table(args, blocks):
    """Rows (B, dense ms, TBC ms, dense / TBC), C -> C forward+backward."""
    c, rows = args.channels, []
    for B in blocks:
        x = torch.randn(args.batch, c, args.size, args.size, requires_grad=True)
        times = interleaved({
            "dense": call(nn.Conv2d(c, c, 3, padding=1, bias=False), x, True),
            "tbc": call(TiedBlockConv2d(c, c, 3, padding=1, bias=False, B=B), x, True),
        }, args.repeats)
        rows.append([B, times["dense"].ms, times["tbc"].ms, times["dense"].median / times["tbc"].median])
    return rows


def implementation_table(args, blocks, backward):
    """Rows (B, C/B, ours ms, authors' ms, tiled ms, form ours runs, best other / ours)."""
    c, rows = args.channels, []
    for B in blocks:
        x = torch.randn(args.batch, c, args.size, args.size, requires_grad=backward)
        ours = TiedBlockConv2d(c, c, 3, padding=1, bias=False, B=B)
        layers = {"ours": ours, "authors": AuthorsStyleTBC(c, c, 3, 1, B), "tiled": TiledWeightTBC(c, c, 3, 1, B)}
        times = interleaved({name: call(layer, x, backward) for name, layer in layers.items()}, args.repeats)
        with torch.set_grad_enabled(backward):
            form = "tiled" if ours.tiled_weight_is_faster(x) else "reshape"
        best_other = min(times["authors"].median, times["tiled"].median)
        rows.append([B, c // B, times["ours"].ms, times["authors"].ms, times["tiled"].ms, form,
                     best_other / times["ours"].median])
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
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    save_figure_atomically(figure, path)
    plt.close(figure)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", type=int, default=256)
    parser.add_argument("--size", type=int, default=28)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--blocks", type=int, nargs="+", default=[1, 2, 4, 8, 16],
                        help="B of the fixed-FLOPs and dense tables")
    parser.add_argument("--implementation-blocks", type=int, nargs="+", default=[2, 4, 8, 16, 32, 64, 128],
                        help="B of the implementation tables (C/B from C/2 down to 2 channels a block)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--markdown", help="also write the tables to this markdown file")
    parser.add_argument("--plot", help="write the Fig. 3 style plot to this PNG")
    args = parser.parse_args(argv)
    use_threads(args.threads)
    torch.manual_seed(0)

    shape = f"input {args.batch}x{args.channels}x{args.size}x{args.size}, 3x3"
    setting = describe(args.repeats)
    speed = fixed_flops_table(args, args.blocks)
    dense = dense_table(args, [B for B in args.blocks if B > 1])
    implementation_header = ["B", "C/B", "ours", "authors' reshape", "tiled grouped", "ours runs", "best other / ours"]
    implementation_format = ("", "", ".2f", ".2f", ".2f", "", ".2f")
    implementations = {backward: implementation_table(args, args.implementation_blocks, backward)
                       for backward in (True, False)}
    text = "\n\n".join([
        f"Timing: {setting}.",
        f"Fixed FLOPs ({shape}), ms per call:",
        tabulate(speed, headers=["B", "GC fwd", "TBC fwd", "GC fwd+bwd", "TBC fwd+bwd"], tablefmt="github",
                 floatfmt=".1f"),
        f"TBC vs the dense convolution it replaces ({shape}, {args.channels} -> {args.channels}), fwd+bwd ms:",
        tabulate(dense, headers=["B", "dense", "TBC", "dense / TBC"], tablefmt="github",
                 floatfmt=("", ".1f", ".1f", ".2f")),
        f"TBC forms, {args.channels} -> {args.channels}, forward+backward ms:",
        tabulate(implementations[True], headers=implementation_header, tablefmt="github",
                 floatfmt=implementation_format),
        f"TBC forms, {args.channels} -> {args.channels}, forward without gradients, ms:",
        tabulate(implementations[False], headers=implementation_header, tablefmt="github",
                 floatfmt=implementation_format),
    ])
    print(text)
    if args.markdown:
        write_bytes_atomically(args.markdown, (text + "\n").encode())
    if args.plot:
        plot(speed, args.plot, f"TBC paper, Fig. 3, on CPU ({shape}; {setting})")
    return {"fixed_flops": speed, "dense": dense, "forms_backward": implementations[True],
            "forms_forward": implementations[False]}


if __name__ == "__main__":
    main()
