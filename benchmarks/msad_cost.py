"""Compute of MSAD's models at inference, same backbone: the high-resolution detector (the
"S / H" student: the teacher's architecture at full input), the low-resolution student (0.5x
input, pyramid shifted by one level) and the dual-resolution fusion student (a thin high-res
pyramid + a low-res one, supplement Table 3). FLOPs of the whole model (fvcore through detectron2's
FlopCountAnalysis, one multiply-add = one FLOP, convs and linear layers) and time
(benchmarks/timing.py: the models interleaved, process CPU time on the CPU, wall time on a GPU),
split into the backbone's bottom-up ResNet, the rest of the backbone (FPN, C-FF), the head and
the rest (preprocessing, box decoding, NMS), with the ratios to the first model.

The low-resolution student's backbone sees a quarter of the pixels, but its shifted pyramid hands
the head maps of the high-resolution sizes, so its head costs what the first model's does by the
paper's design. Its floor, printed under the table, is the first model's time with the bottom-up
and FPN parts at a quarter and the head and the rest unchanged.

    python -m benchmarks.msad_cost                               # COCO R50 FCOS configs, 800 px
    python -m benchmarks.msad_cost --short-edge 256 --configs configs/msad/synthetic_fcos_student_cpu.py

A config's model is built untrained (weights do not change the cost) and run in eval mode on a
random image whose short edge is ``--short-edge`` for the full-resolution models and half of it
for the low-resolution student (its test mapper's resolution; the dual-resolution student halves
the image itself).
"""
import argparse
import warnings

import torch
from tabulate import tabulate

from detectron2.config import LazyConfig, instantiate
from detectron2.utils.analysis import FlopCountAnalysis

from benchmarks.timing import PartTimes, describe, interleaved, use_threads
from projects.common.io import write_bytes_atomically

COUNTED_OPERATORS = ("conv", "linear", "addmm", "matmul")
DEFAULT_CONFIGS = [
    "configs/msad/coco_fcos_R50_student_highres_1x.py",
    "configs/msad/coco_fcos_R50_student_1x.py",
    "configs/msad/coco_fcos_R50_dual_resolution_student_1x.py",
]
PARTS = ("bottom-up", "FPN", "head", "rest")


def gflops(counter) -> float:
    """Counted operators only (others, e.g. norms and interpolation, are ignored with a warning)."""
    counter.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    return sum(v for k, v in counter.by_operator().items() if k in COUNTED_OPERATORS) / 1e9


def timed_modules(model):
    """The modules whose time makes the parts: every bottom-up ResNet of the backbone, the
    backbone, the head."""
    detector = getattr(model, "detector", model)
    bottom_ups = [module for name, module in detector.backbone.named_modules() if name.rsplit(".", 1)[-1] == "bottom_up"]
    return {"bottom-up": bottom_ups, "backbone": [detector.backbone], "head": [detector.head]}


def build(config_file: str, short_edge: int, aspect: float):
    """(label, model, inputs, input size) of one config."""
    model = instantiate(LazyConfig.load(config_file).model).eval()
    scale = getattr(model, "input_scale", 1.0)  # students: their input's share of the test image
    height = int(round(short_edge * scale))
    width = int(round(short_edge * aspect * scale))
    image = torch.randint(0, 256, (3, height, width), dtype=torch.uint8).float()
    inputs = [{"image": image, "height": short_edge, "width": int(round(short_edge * aspect))}]
    label = config_file.rsplit("/", 1)[-1].removesuffix(".py")
    return label, model, inputs, f"{height}x{width}"


def measure(config_files, short_edge: int, aspect: float, repeats: int):
    """Per config: (label, input size, GFLOPs, total ms, {part: ms})."""
    built = [build(config, short_edge, aspect) for config in config_files]
    parts = {label: PartTimes(timed_modules(model)) for label, model, _, _ in built}

    def forward(label, model, inputs):
        def run():
            with parts[label].call():
                model(inputs)
        return run

    warmup = 1
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        flops = {label: gflops(FlopCountAnalysis(model, inputs)) for label, model, inputs, _ in built}
        times = interleaved({label: forward(label, model, inputs) for label, model, inputs, _ in built},
                            repeats, warmup=warmup)
    measured = []
    for label, _, _, size in built:
        bottom_up, backbone, head = (1000 * parts[label].median(name, skip=warmup) for name in ("bottom-up", "backbone", "head"))
        total = times[label].ms
        split = {"bottom-up": bottom_up, "FPN": backbone - bottom_up, "head": head, "rest": total - backbone - head}
        measured.append((label, size, flops[label], total, split))
        parts[label].remove()
    return measured


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=DEFAULT_CONFIGS,
                        help="configs of the models; the first is the reference of the saving")
    parser.add_argument("--short-edge", type=int, default=800)
    parser.add_argument("--aspect", type=float, default=4 / 3, help="width / height of the test image")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--markdown", help="also write the table to this markdown file")
    args = parser.parse_args(argv)
    use_threads(args.threads)
    torch.manual_seed(0)
    measured = measure(args.configs, args.short_edge, args.aspect, args.repeats)
    _, _, first_flops, first_ms, first_split = measured[0]
    rows = [[label, size, total_flops, total_flops / first_flops, ms, ms / first_ms]
            + [f"{split[part]:.0f} ({split[part] / first_split[part]:.2f})" for part in PARTS]
            for label, size, total_flops, ms, split in measured]
    header = ["model", "input", "GFLOPs", "FLOPs / first", "ms", "time / first"] + [f"{part} ms (/ first)" for part in PARTS]
    table = tabulate(rows, headers=header, tablefmt="github", floatfmt=("", "", ".1f", ".2f", ".0f", ".2f"),
                     disable_numparse=False)
    floor_ms = 0.25 * (first_split["bottom-up"] + first_split["FPN"]) + first_split["head"] + first_split["rest"]
    text = (f"MSAD inference cost ({describe(args.repeats)}, test image short edge {args.short_edge}):\n\n{table}\n\n"
            f"Floor of a 0.5x-input model whose head reads the first model's map sizes (bottom-up and FPN at "
            f"a quarter, head and rest unchanged): {floor_ms:.0f} ms = {floor_ms / first_ms:.2f} of the first.")
    print(text)
    if args.markdown:
        write_bytes_atomically(args.markdown, (text + "\n").encode())
    return [(label, size, total_flops, ms) for label, size, total_flops, ms, _ in measured]


if __name__ == "__main__":
    main()
