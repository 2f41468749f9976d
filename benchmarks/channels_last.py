"""Detectors at inference in the channels_last memory format against the default layout, per
config: time of one forward (benchmarks/timing.py: interleaved, process CPU time on the CPU,
wall time on a GPU) and how far the outputs move (backbone maps, relative to their largest
value; detections: same count, largest box-corner difference, largest score difference).

channels_last is switched on as a user would: ``model.to(memory_format=torch.channels_last)``
(the 4-D weights; the image batch stays as the model makes it, the first convolution turns
the activations to channels_last and they stay so).

    python -m benchmarks.channels_last                                    # MSAD student, TiedResNet-50
    python -m benchmarks.channels_last --configs CFG [CFG ...] --short-edge 800 --repeats 5
"""
import argparse
import copy
import warnings

import torch
from tabulate import tabulate

from detectron2.config import LazyConfig, instantiate

from benchmarks.timing import describe, interleaved, use_threads
from projects.common.io import write_bytes_atomically

DEFAULT_CONFIGS = [
    "configs/msad/coco_fcos_R50_student_1x.py",
    "configs/tied_conv/coco_faster_rcnn_tied_resnet50_fpn_2x.py",
]


def backbone_of(model: torch.nn.Module) -> torch.nn.Module:
    """The backbone whose maps are compared (an MSAD student's is its detector's)."""
    return getattr(model, "detector", model).backbone


def run_capturing_backbone(model, inputs):
    """(the model's outputs, its backbone's output maps) of one forward."""
    captured = {}
    handle = backbone_of(model).register_forward_hook(lambda module, args, output: captured.update(output))
    try:
        outputs = model(inputs)
    finally:
        handle.remove()
    return outputs, captured


def output_differences(reference, other):
    """(backbone max |diff| / max |value|, same number of detections, max box diff, max score diff)."""
    (outputs, maps), (other_outputs, other_maps) = reference, other
    relative = max(((maps[k] - other_maps[k]).abs().max() / maps[k].abs().max().clamp(min=1e-12)).item()
                   for k in maps)
    boxes = [o["instances"].pred_boxes.tensor for o in outputs]
    other_boxes = [o["instances"].pred_boxes.tensor for o in other_outputs]
    same_count = all(len(a) == len(b) for a, b in zip(boxes, other_boxes))
    box_difference = score_difference = float("nan")
    if same_count and any(len(a) for a in boxes):
        box_difference = max((a - b).abs().max().item() for a, b in zip(boxes, other_boxes) if len(a))
        score_difference = max((a["instances"].scores - b["instances"].scores).abs().max().item()
                               for a, b in zip(outputs, other_outputs) if len(a["instances"]))
    return relative, same_count, box_difference, score_difference


def measure(config_file: str, short_edge: int, aspect: float, repeats: int, device: str):
    """Row (config, input, default ms, channels_last ms, speed-up, output differences...)."""
    model = instantiate(LazyConfig.load(config_file).model).to(device).eval()
    channels_last = copy.deepcopy(model).to(memory_format=torch.channels_last)
    scale = getattr(model, "input_scale", 1.0)  # students: their input's share of the test image
    height, width = int(round(short_edge * scale)), int(round(short_edge * aspect * scale))
    generator = torch.Generator().manual_seed(0)
    image = torch.randint(0, 256, (3, height, width), generator=generator, dtype=torch.uint8).float()
    inputs = [{"image": image.to(device), "height": short_edge, "width": int(round(short_edge * aspect))}]
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        differences = output_differences(run_capturing_backbone(model, inputs),
                                         run_capturing_backbone(channels_last, inputs))
        times = interleaved({"default": lambda: model(inputs), "channels_last": lambda: channels_last(inputs)},
                            repeats, device=device)
    label = config_file.rsplit("/", 1)[-1].removesuffix(".py")
    default_ms, channels_last_ms = times["default"].ms, times["channels_last"].ms
    return [label, f"{height}x{width}", default_ms, channels_last_ms, default_ms / channels_last_ms, *differences]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=DEFAULT_CONFIGS)
    parser.add_argument("--short-edge", type=int, default=800, help="of the test image (students: 0.5x of it)")
    parser.add_argument("--aspect", type=float, default=4 / 3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--markdown", help="also write the table to this markdown file")
    args = parser.parse_args(argv)
    use_threads(args.threads)
    torch.manual_seed(0)
    rows = [measure(config, args.short_edge, args.aspect, args.repeats, args.device) for config in args.configs]
    header = ["model (untrained)", "input", "default ms", "channels_last ms", "speed-up",
              "backbone max rel. diff", "same detections", "max box diff (px)", "max score diff"]
    table = tabulate(rows, headers=header, tablefmt="github",
                     floatfmt=("", "", ".0f", ".0f", ".2f", ".1e", "", ".1e", ".1e"))
    text = f"Inference, default layout vs channels_last ({describe(args.repeats, args.device)}):\n\n{table}"
    print(text)
    if args.markdown:
        write_bytes_atomically(args.markdown, (text + "\n").encode())
    return rows


if __name__ == "__main__":
    main()
