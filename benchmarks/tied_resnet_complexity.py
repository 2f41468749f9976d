"""Parameters and FLOPs of TiedResNet, TiedSENet, TiedResNeXt and TiedResNeSt vs the paper's
Tables 1, 5 and 6, and parameters of the SE/TiedSE and GCB/TiedGCB attention modules vs Tables 3
and 4 (TBC paper).

Classification form at 224x224: backbone + global average pool + 1000-way fc (detectron2's
``ResNet(num_classes=1000)``), with trainable BN so that its affine weight/bias count as
parameters, as torchvision's (ResNet-50: 25.557M). FLOPs are fvcore's convolution and linear
counts (one multiply-add = one FLOP, as papers report); norms, pooling and additions are left out.

    python -m benchmarks.tied_resnet_complexity [--markdown out.md]   # from the repository root
"""
import argparse
import warnings

import torch
from detectron2.modeling.backbone import BasicStem, ResNet
from fvcore.nn import FlopCountAnalysis, parameter_count
from tabulate import tabulate

from tied_conv import context_resnet_stages
from tied_conv.resnest import RESNEST_STEM_WIDTH, DeepStem, make_resnest_stages
from tied_conv.resnet import make_tied_resnet_stages

COUNTED_OPERATORS = ("conv", "linear", "addmm", "matmul")

# (model, paper #params (M), paper GFLOPs or None, build arguments; depth-only = plain ResNet)
ROWS = [
    ("ResNet50", 25.6, 4.2, dict(depth=50, tied=False)),
    ("ResNet101", 44.6, 7.9, dict(depth=101, tied=False)),
    ("TiedResNet50-S (4s x 18w)", 13.9, 2.5, dict(depth=50, variant="S")),
    ("TiedResNet50 (4s x 32w)", 22.0, 4.4, dict(depth=50)),
    ("TiedResNet101-S", 24.0, 4.8, dict(depth=101, variant="S")),
    ("TiedResNet101", 39.4, 8.6, dict(depth=101)),
    ("Table 5: TiedResNet50 2s x 48w", 23.8, 4.4, dict(depth=50, splits=2, base_width=48)),
    ("Table 5: TiedResNet50 4s x 32w", 22.0, 4.4, dict(depth=50, splits=4, base_width=32)),
    ("Table 5: TiedResNet50 6s x 24w", 23.0, 4.6, dict(depth=50, splits=6, base_width=24)),
    ("Table 5: TiedResNet50 8s x 18w", 23.8, 4.4, dict(depth=50, splits=8, base_width=18)),
    ("Table 6: mixer element-sum", 22.0, None, dict(depth=50, mixer="sum")),
    ("Table 6: mixer concatenate", 26.7, None, dict(depth=50, mixer="concat")),
    # TiedSENet: TiedSE (B=2) before the addition of every tied block; TiedResNeXt: "32x8d" =
    # 4 splits of 64w with 8-wide groups (Table A.2 names the Table 1 "-S" row so).
    ("TiedSENet101-S (TiedSE B=2)", 26.4, 5.2, dict(depth=101, variant="S", attention="se", attention_B=2)),
    ("TiedSENet101 (TiedSE B=2)", 41.8, 9.1, dict(depth=101, attention="se", attention_B=2)),
    ("TiedResNeXt101-S (4s x 64w, 8 groups/split)", 64.0, 14.6,
     dict(depth=101, base_width=64, split_groups=8)),
]

# (model, paper #params (M), paper GFLOPs, make_resnest_stages arguments): the paper's ResNeSt
# baseline and TiedResNeSt50-S, read as entry 1x1 + split-attention 3x3 tied (B=2) with the avd
# pool after the 3x3 (tied_conv/resnest.py explains the reading)
RESNEST_ROWS = [
    ("ResNeSt-50-fast (2s1x64d)", 27.5, 4.4, dict(depth=50, B=1, fast=True)),
    ("TiedResNeSt50-S (B=2, avd after the 3x3)", 16.5, 3.6, dict(depth=50, B=2, fast=False)),
]


def classification_model(depth: int, tied: bool = True, **tied_kwargs) -> ResNet:
    """ResNet or TiedResNet with BN, global pool and a 1000-way fc, output "linear"."""
    stem = BasicStem(in_channels=3, out_channels=64, norm="BN")
    if tied:
        stages = make_tied_resnet_stages(depth, norm="BN", **tied_kwargs)
    else:
        stages = ResNet.make_default_stages(depth, stride_in_1x1=False, norm="BN")
    return ResNet(stem, stages, num_classes=1000)  # outputs {"linear": logits}


def resnest_classification_model(depth: int, **resnest_kwargs) -> ResNet:
    """ResNeSt or TiedResNeSt (deep stem) with BN, global pool and a 1000-way fc, output "linear"."""
    stem_width = RESNEST_STEM_WIDTH[depth]
    stages = make_resnest_stages(depth, norm="BN", in_channels=2 * stem_width, **resnest_kwargs)
    return ResNet(DeepStem(3, stem_width, norm="BN"), stages, num_classes=1000)


def complexity(model: torch.nn.Module, size: int = 224):
    """(parameters in M, multiply-add GFLOPs of convolutions and linear layers) at size x size."""
    model.eval()
    flops = FlopCountAnalysis(model, torch.zeros(1, 3, size, size))
    flops.unsupported_ops_warnings(False)
    flops.uncalled_modules_warnings(False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit tracing deprecation notices
        by_operator = flops.by_operator()
    counted = sum(by_operator.get(name, 0) for name in COUNTED_OPERATORS)
    return parameter_count(model)[""] / 1e6, counted / 1e9


def complexity_table() -> str:
    """The markdown table of every row of ``ROWS`` and ``RESNEST_ROWS`` (models with equal
    arguments measured once)."""
    measured = {}
    models = [(classification_model, *row) for row in ROWS]
    models += [(resnest_classification_model, *row) for row in RESNEST_ROWS]
    rows = []
    for build, name, paper_params, paper_gflops, kwargs in models:
        key = (build, *sorted(kwargs.items()))
        if key not in measured:
            measured[key] = complexity(build(**kwargs))
        params, gflops = measured[key]
        rows.append([name, paper_params, params, paper_gflops, gflops])
    headers = ["model", "paper #params (M)", "ours #params (M)", "paper GFLOPs", "ours GFLOPs"]
    return tabulate(rows, headers=headers, tablefmt="github", floatfmt=("", ".1f", ".2f", ".1f", ".2f"),
                    missingval="-") + "\n"


# (table, module, B, paper #params (M), where in ResNet-50): SE in every bottleneck (SE-ResNet50);
# GCB with ratio 1/4 after the last 1x1 of the res3-res5 bottlenecks (GCNet, Mask R-CNN R50)
ATTENTION_ROWS = [
    ("Table 3", "SE", 1, 2.53, "se", ("res2", "res3", "res4", "res5"), {}),
    ("Table 3", "TiedSE", 2, 0.64, "se", ("res2", "res3", "res4", "res5"), {}),
    ("Table 3", "TiedSE", 4, 0.16, "se", ("res2", "res3", "res4", "res5"), {}),
    ("Table 3", "TiedSE", 8, 0.04, "se", ("res2", "res3", "res4", "res5"), {}),
    ("Table 4", "GCB", 1, 10.0, "gcb", ("res3", "res4", "res5"), {"ratio": 0.25}),
    ("Table 4", "TiedGCB", 2, 2.5, "gcb", ("res3", "res4", "res5"), {"ratio": 0.25}),
    ("Table 4", "TiedGCB", 4, 1.3, "gcb", ("res3", "res4", "res5"), {"ratio": 0.25}),
]


def attention_table() -> str:
    """Parameters of the attention modules alone, summed over a ResNet-50."""
    rows = []
    for table, name, blocks, paper, context, stages, kwargs in ATTENTION_ROWS:
        resnet_stages = context_resnet_stages(50, context=context, context_B=blocks, context_kwargs=kwargs,
                                              context_stages=stages, norm="BN")
        count = sum(p.numel() for stage in resnet_stages for block in stage
                    if hasattr(block, "context") for p in block.context.parameters())
        rows.append([table, name, blocks, paper, count / 1e6])
    headers = ["table", "module", "B", "paper #params (M)", "ours #params (M)"]
    return tabulate(rows, headers=headers, tablefmt="github", floatfmt=("", "", "", ".2f", ".3f")) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", help="also write the table to this markdown file")
    args = parser.parse_args()
    table = complexity_table() + "\n" + attention_table()
    print(table, end="")
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(table)


if __name__ == "__main__":
    main()
