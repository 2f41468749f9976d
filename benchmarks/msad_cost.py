"""Compute of MSAD's models at inference, same backbone: the high-resolution detector (the
"S / H" student: the teacher's architecture at full input), the low-resolution student (0.5x
input, pyramid shifted by one level) and the dual-resolution fusion student (a thin high-res
pyramid + a low-res one, supplement Table 3). FLOPs of the whole model (fvcore through detectron2's
FlopCountAnalysis, one multiply-add = one FLOP, convs and linear layers) and CPU latency (median),
as a markdown table with the ratios to the first model (the high-resolution one).

    python -m benchmarks.msad_cost                               # COCO R50 FCOS configs, 800 px
    python -m benchmarks.msad_cost --short-edge 256 --configs configs/msad/synthetic_fcos_student_cpu.py

A config's model is built untrained (weights do not change the cost) and run in eval mode on a
random image whose short edge is ``--short-edge`` for the full-resolution models and half of it
for the low-resolution student (its test mapper's resolution; the dual-resolution student halves
the image itself).
"""
import argparse
import statistics
import time
import warnings

import torch
from tabulate import tabulate

from detectron2.config import LazyConfig, instantiate
from detectron2.utils.analysis import FlopCountAnalysis

from projects.common.io import write_bytes_atomically

COUNTED_OPERATORS = ("conv", "linear", "addmm", "matmul")
DEFAULT_CONFIGS = [
    "configs/msad/coco_fcos_R50_student_highres_1x.py",
    "configs/msad/coco_fcos_R50_student_1x.py",
    "configs/msad/coco_fcos_R50_dual_resolution_student_1x.py",
]


def gflops(counter) -> float:
    """Counted operators only (others, e.g. norms and interpolation, are ignored with a warning)."""
    counter.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    return sum(v for k, v in counter.by_operator().items() if k in COUNTED_OPERATORS) / 1e9


def measure(config_file: str, short_edge: int, aspect: float, repeats: int):
    """(label, input size, GFLOPs, median ms) of one config's model."""
    model = instantiate(LazyConfig.load(config_file).model).eval()
    scale = getattr(model, "input_scale", 1.0)  # students: their input's share of the test image
    height = int(round(short_edge * scale))
    width = int(round(short_edge * aspect * scale))
    image = torch.randint(0, 256, (3, height, width), dtype=torch.uint8).float()
    inputs = [{"image": image, "height": short_edge, "width": int(round(short_edge * aspect))}]
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model_gflops = gflops(FlopCountAnalysis(model, inputs))
        model(inputs)  # warm-up
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            model(inputs)
            times.append(time.perf_counter() - start)
    label = config_file.rsplit("/", 1)[-1].removesuffix(".py")
    return label, f"{height}x{width}", model_gflops, 1000 * statistics.median(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=DEFAULT_CONFIGS,
                        help="configs of the models; the first is the reference of the saving")
    parser.add_argument("--short-edge", type=int, default=800)
    parser.add_argument("--aspect", type=float, default=4 / 3, help="width / height of the test image")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--markdown", help="also write the table to this markdown file")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    measured = [measure(c, args.short_edge, args.aspect, args.repeats) for c in args.configs]
    reference_flops, reference_ms = measured[0][2], measured[0][3]
    rows = [(label, size, total, total / reference_flops, ms, ms / reference_ms)
            for label, size, total, ms in measured]
    header = ["model", "input", "GFLOPs", "FLOPs / first", "CPU ms", "time / first"]
    table = tabulate(rows, headers=header, tablefmt="github", floatfmt=("", "", ".1f", ".2f", ".0f", ".2f"))
    text = (f"MSAD inference cost ({torch.get_num_threads()} CPU threads, torch {torch.__version__}, "
            f"test image short edge {args.short_edge}, median of {args.repeats}):\n\n{table}")
    print(text)
    if args.markdown:
        write_bytes_atomically(args.markdown, (text + "\n").encode())
    return measured


if __name__ == "__main__":
    main()
