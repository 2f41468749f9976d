"""Appendix Fig. A1 / Sec. A.3 of ResNet-WS on this machine: time and peak memory of one TRAINING
iteration (forward + backward + SGD step, one image) versus the number of proposals, for

* ResNet-WS C5 + RAN, F5: ``resnet_ws_backbone`` (output stride 8, FrozenBN, whole backbone
  frozen) -> 7x7 RoIPool of res5 -> ``resnet_ws_neck`` (the redundant adaptation neck); only the
  neck and the head train;
* plain ResNet C4, F2 (Table A2): ``plain_resnet_backbone(depth, "C4")`` (res4, stride 16, stem
  and res2 frozen) -> 7x7 RoIPool -> ``res5_box_head`` (conv5_x per RoI, trained) in the
  detector's neck position: Res5BoxHead ends in (R, 2048) vectors (its 4x4 output averaged;
  (R, 512) for R18) and Table A2 puts the WSOD head right after conv5_x, with no adaptation
  neck.

Both with the OICR+REG head (``head_type="oicr_reg"``: WSDDN + 4 refinement branches, box
regression on the last), 20 classes (VOC), SGD with momentum 0.9 and weight decay 5e-4 at LR 0
(the same work per step; random data would make a real LR diverge). The
image is random noise with short side 600 (the paper's setting; long side 800 at the default
4:3 aspect), the proposals random boxes inside it (corners sorted uniform, so their sides
average a third of the image's), two image-level classes.

Time (benchmarks/timing.py): both detectors built in one fresh process, their iterations
interleaved, process CPU time on the CPU (wall time on CUDA), median over ``--repeats`` after
``--warmup``; the same run times the parts of each iteration by forward hooks (backbone, RoI
pooling, neck; the head's losses are the rest of the forward; backward + SGD step the rest of the
iteration) and counts the forward FLOPs of the backbone and the neck (fvcore, one multiply-add =
one FLOP), the table that explains where each detector's time goes.

Memory, per configuration (model, number of proposals) in a fresh (spawned) process so that no
other configuration's allocations are counted:

* CPU (Linux): before each timed iteration the process's freed heap is handed back to the OS
  (glibc ``malloc_trim``) and its peak resident set size (``VmHWM``) is reset to the current one
  (``/proc/self/clear_refs``, kernel >= 4.0). "iteration peak" = VmHWM after the iteration - RSS
  before it: activations, gradients and temporaries, not the weights or the momentum buffers
  (resident before), which "process peak" (VmHWM itself) includes together with Python, torch's
  libraries and the process's share of the parent's pages. Limits: RSS counts pages touched, so
  allocator caching or fragmentation can add to it, and pages swapped out would be missed.
* CUDA: ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats`` minus the
  allocated memory before: tensors only, without the caching allocator's reserve and the CUDA
  context that the paper's nvidia-smi figures include.

Memory is in MiB (2^20 bytes); iteration peak is the maximum over the timed iterations. On one
CPU thread a ResNet101 iteration takes 30-140 s at 1000-4000 proposals, so the default run
(4 counts x 2 models x (memory + timing) x 4 iterations) takes hours; ``--warmup 1 --repeats 1``
or ``--width 0.25`` (every channel count a quarter: FLOPs a sixteenth, in the same proportions)
for quicker runs.

    python -m benchmarks.resnet_ws_cost                       # R101, 1000..4000 proposals, 600 px
    python -m benchmarks.resnet_ws_cost --depth 18 --width 0.25 --short-side 256 \
        --proposals 250 500 --repeats 1 [--threads 1] [--markdown out.md] [--plot out.png]
"""
import argparse
import ctypes
import gc
import multiprocessing
import os
import runpy
import warnings
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Dict, List, NamedTuple

import torch
from fvcore.nn import FlopCountAnalysis
from tabulate import tabulate

from detectron2.config import LazyCall as L
from detectron2.config import instantiate
from detectron2.structures import Boxes, Instances
from detectron2.utils.events import EventStorage

from benchmarks.timing import PartTimes, describe, interleaved, use_threads
from projects.common.io import save_figure_atomically, write_bytes_atomically
from projects.resnet_ws.meta_arch import WeaklySupervisedRCNN

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL_PIECES = os.path.join(REPO, "configs", "resnet_ws", "models.py")
CPU_PIECES = os.path.join(REPO, "configs", "common", "models", "cpu.py")

DETECTORS = ("ws_c5_ran_f5", "plain_c4_f2")
HEAD_TYPE = "oicr_reg"
NUM_CLASSES = 20  # PASCAL VOC
CLASSES_PER_IMAGE = 2
MIB = 2**20


class Measurement(NamedTuple):
    iteration_peak_mib: float  # peak memory beyond what was in use before the iteration
    process_peak_mib: float  # peak RSS of the process (CPU) or allocated tensors (CUDA)


# the timed parts of an iteration: forward hooks on these attributes of the model ("forward": the model)
TIMED_PARTS = {"forward": None, "backbone": "backbone", "RoI pooling": "pooler", "neck": "neck"}


def detector_label(detector: str, depth: int) -> str:
    return {"ws_c5_ran_f5": f"ResNet{depth}-WS C5+RAN F5", "plain_c4_f2": f"ResNet{depth} C4 F2"}[detector]


def detector_config(detector: str, depth: int, width: float = 1.0, num_classes: int = NUM_CLASSES):
    """LazyConfig of a ``WeaklySupervisedRCNN`` with the OICR+REG head built from
    configs/resnet_ws/models.py's pieces; ``width`` multiplies every channel count (backbone,
    conv5_x and the neck's hidden widths; the plain backbone is shrunk with
    configs/common/models/cpu.py's ``shrink_resnet``), 1.0 being the paper's networks."""
    if detector not in DETECTORS:
        raise ValueError(f"detector={detector!r} is not one of {DETECTORS}")
    pieces = runpy.run_path(MODEL_PIECES)
    common = dict(num_classes=num_classes, pixel_mean=pieces["PIXEL_MEAN"], pixel_std=pieces["PIXEL_STD"],
                  input_format="BGR", head_type=HEAD_TYPE)
    if detector == "ws_c5_ran_f5":
        hidden_dims = [int(round(d * width)) for d in pieces["NECK_HIDDEN_DIMS"][depth]]
        return L(WeaklySupervisedRCNN)(
            backbone=pieces["resnet_ws_backbone"](depth, width=width),
            in_feature="res5",
            neck=pieces["resnet_ws_neck"](depth, width=width, hidden_dims=hidden_dims),
            **common,
        )
    backbone = pieces["plain_resnet_backbone"](depth, "C4")
    if width != 1.0:
        runpy.run_path(CPU_PIECES)["shrink_resnet"](backbone, depth=depth, width=width, norm="FrozenBN")
    return L(WeaklySupervisedRCNN)(
        backbone=backbone,
        in_feature="res4",
        neck=pieces["res5_box_head"](depth, width=width),
        **common,
    )


def random_training_input(short_side: int, aspect: float, num_proposals: int, num_classes: int,
                          generator: torch.Generator) -> Dict:
    """A detectron2 training input: random uint8 BGR image of ``short_side`` x ``short_side *
    aspect``, ``num_proposals`` random boxes inside it with scores in [0, 1), and
    ``CLASSES_PER_IMAGE`` distinct image-level classes."""
    height, width = short_side, int(round(short_side * aspect))
    image = torch.randint(0, 256, (3, height, width), generator=generator, dtype=torch.uint8)
    x = torch.rand(num_proposals, 2, generator=generator).sort(dim=1).values * width
    y = torch.rand(num_proposals, 2, generator=generator).sort(dim=1).values * height
    proposals = Instances((height, width))
    proposals.proposal_boxes = Boxes(torch.stack([x[:, 0], y[:, 0], x[:, 1], y[:, 1]], dim=1))
    proposals.objectness_logits = torch.rand(num_proposals, generator=generator)
    instances = Instances((height, width))
    instances.gt_classes = torch.randperm(num_classes, generator=generator)[:CLASSES_PER_IMAGE]
    return {"image": image, "proposals": proposals, "instances": instances, "height": height, "width": width}


def memory_in_use(device: torch.device) -> int:
    """Bytes in use now, after resetting the peak that ``peak_memory`` reports to it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        return torch.cuda.memory_allocated(device)
    if not os.path.exists("/proc/self/clear_refs"):
        raise RuntimeError(
            "measuring peak memory on CPU needs Linux's /proc/self/clear_refs (kernel >= 4.0) to reset "
            "the peak RSS: run on Linux, or on CUDA"
        )
    gc.collect()
    libc = ctypes.CDLL(None)
    if hasattr(libc, "malloc_trim"):  # glibc: give the freed heap back, or the iteration reuses it unseen
        libc.malloc_trim(0)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # peak RSS (VmHWM) := current RSS
    return _proc_status_bytes("VmRSS")


def peak_memory(device: torch.device) -> int:
    """Peak bytes in use since the last ``memory_in_use``."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device)
    return _proc_status_bytes("VmHWM")


def _proc_status_bytes(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                value, unit = line.split()[1:3]
                assert unit == "kB", line
                return int(value) * 1024
    raise RuntimeError(f"/proc/self/status has no {field} line")


def training_iteration(detector: str, depth: int, width: float, num_proposals: int, short_side: int,
                       aspect: float, device: torch.device, seed: int = 0):
    """(model, its input, a function running one training iteration: forward, backward, SGD step)."""
    torch.manual_seed(seed)
    model = instantiate(detector_config(detector, depth, width)).to(device).train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    # LR 0: the step costs the same, and random inputs cannot make the weights diverge between iterations
    optimizer = torch.optim.SGD(trainable, lr=0.0, momentum=0.9, weight_decay=5e-4)
    generator = torch.Generator().manual_seed(seed)
    inputs = [random_training_input(short_side, aspect, num_proposals, NUM_CLASSES, generator)]

    def iteration():
        losses = model(inputs)
        sum(losses.values()).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)  # gradients are the iteration's memory, not the baseline's

    return model, inputs, iteration


def measure(detector: str, depth: int, width: float, num_proposals: int, short_side: int, aspect: float,
            warmup: int, repeats: int, device: str, seed: int = 0) -> Measurement:
    """Memory of training iterations of one detector on one random input (see the module
    docstring); run it in a fresh process (``in_fresh_process``)."""
    if repeats < 1 or warmup < 0:
        raise ValueError(f"need repeats >= 1 and warmup >= 0, got repeats={repeats}, warmup={warmup}")
    device = torch.device(device)
    _, _, iteration = training_iteration(detector, depth, width, num_proposals, short_side, aspect, device, seed)
    iteration_peaks, process_peaks = [], []
    with EventStorage(0):
        for _ in range(warmup):
            iteration()
        for _ in range(repeats):
            in_use = memory_in_use(device)
            iteration()
            peak = peak_memory(device)
            iteration_peaks.append(peak - in_use)
            process_peaks.append(peak)
    return Measurement(max(iteration_peaks) / MIB, max(process_peaks) / MIB)


def forward_gflops(module: torch.nn.Module, args: tuple) -> float:
    """fvcore's FLOPs of ``module(*args)`` (one multiply-add = one FLOP)."""
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        counter = FlopCountAnalysis(module, args).unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        return counter.total() / 1e9


def time_and_profile(depth: int, width: float, num_proposals: int, short_side: int, aspect: float, warmup: int,
                     repeats: int, device: str, threads: int) -> Dict[str, dict]:
    """Both detectors' iterations interleaved in this process: per detector the median seconds of
    an iteration, of its parts (``TIMED_PARTS``, then "head losses" and "backward + SGD step" as
    the rests) and the forward GFLOPs of its backbone and neck. Run it in a fresh process."""
    use_threads(threads)
    device = torch.device(device)
    built = {detector: training_iteration(detector, depth, width, num_proposals, short_side, aspect, device)
             for detector in DETECTORS}
    parts, captured = {}, {}
    for detector, (model, _, _) in built.items():
        parts[detector] = PartTimes({name: [model if attribute is None else getattr(model, attribute)]
                                     for name, attribute in TIMED_PARTS.items()}, device)
        for name in ("backbone", "neck"):  # their first call's inputs, for the FLOP count
            getattr(model, name).register_forward_pre_hook(
                lambda module, args, key=(detector, name): captured.setdefault(key, tuple(a.detach() for a in args)))

    def timed(detector):
        def run():
            with parts[detector].call():
                built[detector][2]()
        return run

    with EventStorage(0):
        times = interleaved({detector: timed(detector) for detector in DETECTORS}, repeats, warmup, device)
    profile = {}
    for detector, (model, _, _) in built.items():
        seconds = {name: parts[detector].median(name, skip=warmup) for name in TIMED_PARTS}
        seconds["head losses"] = seconds["forward"] - seconds["backbone"] - seconds["RoI pooling"] - seconds["neck"]
        seconds["backward + SGD step"] = times[detector].median - seconds.pop("forward")
        gflops = {name: forward_gflops(getattr(model, name), captured[(detector, name)]) for name in ("backbone", "neck")}
        profile[detector] = {"seconds": times[detector].median, "parts": seconds, "gflops": gflops}
    return profile


def in_fresh_process(function, *arguments, description: str):
    """``function(*arguments)`` in a new, spawned process (a forked one can hang in OpenMP after
    the parent used several threads, and cannot run CUDA)."""
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as executor:
        try:
            return executor.submit(function, *arguments).result()
        except BrokenProcessPool as error:
            raise RuntimeError(
                f"the process {description} died, most likely killed for lack of memory: use fewer "
                "--proposals, a smaller --short-side or --width"
            ) from error


def cost_rows(depth: int, width: float, proposal_counts: List[int], short_side: int, aspect: float,
              warmup: int, repeats: int, device: str, threads: int):
    """(rows (proposals, model, s/iter, iteration peak MiB, process peak MiB), {proposals: profile}):
    per proposal count one process timing both detectors and one per detector measuring memory;
    rows are printed as they come, since the full-size runs are long."""
    rows, profiles = [], {}
    for num_proposals in proposal_counts:
        profile = in_fresh_process(time_and_profile, depth, width, num_proposals, short_side, aspect, warmup,
                                   repeats, device, threads, description=f"timing {num_proposals} proposals")
        profiles[num_proposals] = profile
        for detector in DETECTORS:
            memory = in_fresh_process(measure, detector, depth, width, num_proposals, short_side, aspect, warmup,
                                      repeats, device, description=f"measuring {detector_label(detector, depth)} "
                                      f"with {num_proposals} proposals")
            rows.append([num_proposals, detector_label(detector, depth), profile[detector]["seconds"], *memory])
            print(f"{num_proposals} proposals, {rows[-1][1]}: {rows[-1][2]:.2f} s/iter, "
                  f"iteration peak {memory.iteration_peak_mib:.0f} MiB", flush=True)
    return rows, profiles


def profile_table(profiles: Dict[int, dict], depth: int) -> str:
    """Per proposal count and detector: seconds of each part of an iteration and forward GFLOPs."""
    part_names = list(next(iter(next(iter(profiles.values())).values()))["parts"])
    rows = []
    for num_proposals, profile in profiles.items():
        for detector, measured in profile.items():
            rows.append([num_proposals, detector_label(detector, depth), measured["seconds"],
                         *(measured["parts"][name] for name in part_names),
                         measured["gflops"]["backbone"], measured["gflops"]["neck"]])
    header = ["proposals", "model", "s/iter"] + [f"{name} s" for name in part_names] + ["backbone GFLOPs", "neck GFLOPs"]
    return tabulate(rows, headers=header, tablefmt="github", floatfmt=".2f")


def cost_table(rows) -> str:
    header = ["proposals", "model", "s/iter", "iteration peak MiB", "process peak MiB"]
    return tabulate(rows, headers=header, tablefmt="github", floatfmt=("", "", ".2f", ".0f", ".0f"))


def plot(rows, path, title):
    """Two panels, time and iteration peak memory versus proposals, one line per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    for label, marker in zip(dict.fromkeys(row[1] for row in rows), "os^v"):
        own = [row for row in rows if row[1] == label]
        for axis, column in zip(axes, (2, 3)):
            axis.plot([row[0] for row in own], [row[column] for row in own], "-" + marker, label=label)
    for axis, ylabel in zip(axes, ("s / training iteration (median)", "iteration peak memory (MiB)")):
        axis.set_xlabel("proposals per image")
        axis.set_ylabel(ylabel)
        axis.legend(fontsize=8)
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    save_figure_atomically(figure, path)
    plt.close(figure)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", type=int, default=101, choices=[18, 50, 101])
    parser.add_argument("--width", type=float, default=1.0,
                        help="channel multiplier of both detectors (quick runs: e.g. 0.25)")
    parser.add_argument("--proposals", type=int, nargs="+", default=[1000, 2000, 3000, 4000])
    parser.add_argument("--short-side", type=int, default=600)
    parser.add_argument("--aspect", type=float, default=4 / 3, help="width / height of the image")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads of the timing processes")
    parser.add_argument("--markdown", help="also write the table to this markdown file")
    parser.add_argument("--plot", default="output/resnet_ws/training_cost_vs_proposals.png",
                        help="PNG of time and memory versus proposals")
    args = parser.parse_args(argv)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    rows, profiles = cost_rows(args.depth, args.width, args.proposals, args.short_side, args.aspect,
                               args.warmup, args.repeats, device, args.threads)
    height, width = args.short_side, int(round(args.short_side * args.aspect))
    setting = (f"depth {args.depth}, width x{args.width:g}, {height}x{width} image, {HEAD_TYPE}, "
               f"{args.warmup} warm-up; time: {describe(args.repeats, device, args.threads)}")
    text = (f"ResNet-WS training cost per iteration ({setting}):\n\n{cost_table(rows)}\n\n"
            f"Where the time of an iteration goes (seconds; forward GFLOPs):\n\n{profile_table(profiles, args.depth)}")
    print(text)
    if args.markdown:
        write_bytes_atomically(args.markdown, (text + "\n").encode())
    plot(rows, args.plot, f"ResNet-WS training cost vs proposals\n{setting}")
    return rows


if __name__ == "__main__":
    main()
