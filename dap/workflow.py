"""
The whole DAP workflow on the embedded synthetic data, on CPU (the README's main job):

    python -m dap.workflow [--shots 5 20] [--seed 0]      # results in output/dap/synthetic

1. classifier on synthetic_shapes_cls_train (configs/dap/synthetic_classifier_cpu.py);
2. CAM pseudo boxes of its images (python -m dap.generate_pseudo_boxes), scored against the
   synthetic ground truth, and a picture of them (python -m dap.visualize);
3. Faster R-CNN pre-trained on the pseudo boxes from the classifier's backbone
   (configs/dap/synthetic_pretrain_faster_rcnn_cpu.py), also scored as a classifier;
4. k-shot fine-tuning on synthetic_shapes_train from CLS (classifier backbone) and from DAP
   (pre-trained detector without its class-dependent layers, python -m dap.transfer)
   initialisation (configs/dap/synthetic_finetune_faster_rcnn_cpu.py);
then a CLS-vs-DAP table (printed and saved as report.md) and a plot (kshot.png), like the
paper's Fig. 3/4. Every step is an ordinary command of the collection, printed before it runs;
a step whose result exists is skipped and training steps resume, so an interrupted workflow
continues where it stopped when started again.
"""

import argparse
import json
import os
import sys
import time
from typing import Sequence

from projects.common.io import save_figure_atomically, write_json_atomically
from projects.common.workflow import Workflow, train_command
from projects.common.metrics import last_evaluation

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = os.path.join(REPO, "configs", "dap")
OUTPUT_DIR = "output/dap/synthetic"  # where the configs below read and write by default
CLASSIFIER_CONFIG = os.path.join(CONFIGS, "synthetic_classifier_cpu.py")
PRETRAIN_CONFIG = os.path.join(CONFIGS, "synthetic_pretrain_faster_rcnn_cpu.py")
FINETUNE_CONFIG = os.path.join(CONFIGS, "synthetic_finetune_faster_rcnn_cpu.py")
DETECTOR_AS_CLASSIFIER_CONFIG = os.path.join(CONFIGS, "synthetic_detector_as_classifier_cpu.py")
CLASSIFICATION_SET, DETECTION_SET = "synthetic_shapes_cls_train", "synthetic_shapes_train"
# CAMs of 128 px images: two scales as in the paper (2x and 4x the short side of 288 / 576 px
# ImageNet crops is not possible here), upsampled to image pixels since the feature grid is 4x4
PSEUDO_BOX_OPTIONS = ["--scales", "128", "256", "--resolution", "image"]
METRICS = ("bbox/AP", "bbox/AP50", "voc/AP50", "voc/AP50_11pt")
INITIALISATIONS = ("cls", "dap")


def run_workflow(output_dir: str, shots: Sequence[int], seed: int) -> str:
    """Run (or finish) every step; returns the report's markdown."""
    workflow = Workflow("dap.workflow")
    timings = workflow.timings
    paths = {name: os.path.join(output_dir, name) for name in ("classifier", "pretrain", "finetune")}
    classifier_weights = os.path.join(paths["classifier"], "model_final.pth")
    pseudo_boxes = _pseudo_box_json()
    cls_init, dap_init = os.path.join(output_dir, "cls_init.pth"), os.path.join(output_dir, "dap_init.pth")
    python = sys.executable

    workflow.run("1. classifier", train_command(CLASSIFIER_CONFIG, paths["classifier"]), classifier_weights)
    workflow.run("2. pseudo boxes", [python, "-m", "dap.generate_pseudo_boxes", "--config-file", CLASSIFIER_CONFIG,
                                     "--weights", classifier_weights, "--dataset", CLASSIFICATION_SET,
                                     "--output", pseudo_boxes, *PSEUDO_BOX_OPTIONS], pseudo_boxes)
    figure = os.path.join(output_dir, "pseudo_boxes.png")
    workflow.run("2b. pseudo-box picture", [python, "-m", "dap.visualize", "--config-file", CLASSIFIER_CONFIG,
                                            "--weights", classifier_weights, "--dataset", "synthetic_shapes_cls_val",
                                            "--output", figure, *PSEUDO_BOX_OPTIONS], figure)
    workflow.run("3a. CLS initialisation", [python, "-m", "projects.common.checkpoint", "--input", classifier_weights,
                                            "--output", cls_init, "--fpn"], cls_init)
    pretrained = os.path.join(paths["pretrain"], "model_final.pth")
    workflow.run("3b. detector pre-training",
                 train_command(PRETRAIN_CONFIG, paths["pretrain"], f"train.init_checkpoint={cls_init}"), pretrained)
    detector_as_classifier = os.path.join(output_dir, "detector_as_classifier.json")
    if not os.path.exists(detector_as_classifier):
        workflow.log("3c. pre-trained detector as a classifier (train_net.py --eval-only)")
        start = time.perf_counter()
        _evaluate_detector_as_classifier(pretrained, os.path.join(output_dir, "detector_as_classifier"),
                                         detector_as_classifier)
        timings["3c. detector as classifier"] = time.perf_counter() - start
    workflow.run("4a. DAP initialisation",
                 [python, "-m", "dap.transfer", "--input", pretrained, "--output", dap_init], dap_init)
    runs = {}
    for k in shots:
        for initialisation, weights in zip(INITIALISATIONS, (cls_init, dap_init)):
            run_dir = os.path.join(paths["finetune"], f"{initialisation}_{k}shot_seed{seed}")
            runs[(initialisation, k)] = run_dir
            workflow.run(f"4b. {k}-shot fine-tuning from {initialisation.upper()}",
                         train_command(FINETUNE_CONFIG, run_dir, f"train.init_checkpoint={weights}",
                                       f"dataloader.train.dataset.names={DETECTION_SET}_{k}shot_seed{seed}"),
                         os.path.join(run_dir, "model_final.pth"))

    report = _report(output_dir, pseudo_boxes, paths, runs, shots, timings, detector_as_classifier)
    _plot(runs, shots, os.path.join(output_dir, "kshot.png"))
    with open(os.path.join(output_dir, "report.md"), "w") as f:
        f.write(report)
    return report


def _evaluate_detector_as_classifier(weights: str, output_dir: str, result_file: str) -> None:
    """Top-1/top-5 of the detector on synthetic_shapes_cls_val (Sec. 4.3), saved as JSON."""
    import train_net

    args = train_net.parse_args(["--config-file", DETECTOR_AS_CLASSIFIER_CONFIG, "--eval-only",
                                 f"train.init_checkpoint={weights}", f"train.output_dir={output_dir}"])
    write_json_atomically(result_file, train_net.main(args))


def _pseudo_box_json() -> str:
    """Where the pre-training config reads its pseudo boxes (the config registers that dataset)."""
    from detectron2.data import MetadataCatalog

    from train_net import load_config

    cfg = load_config(PRETRAIN_CONFIG)
    return MetadataCatalog.get(cfg.dataloader.train.dataset.names).json_file


def _report(output_dir, pseudo_boxes, paths, runs, shots, timings, detector_as_classifier) -> str:
    with open(os.path.splitext(pseudo_boxes)[0] + ".stats.json") as f:
        statistics = json.load(f)
    boxes, quality = statistics["pseudo_boxes"], statistics.get("quality_vs_ground_truth", {})
    classifier = last_evaluation(paths["classifier"], ["classification/top1"])
    pretrain = last_evaluation(paths["pretrain"], ["bbox/AP"])
    with open(detector_as_classifier) as f:
        as_classifier = json.load(f)["detector_classification"]
    lines = [
        "## DAP workflow on the synthetic data (CPU)",
        "",
        f"- classifier top-1 on synthetic_shapes_cls_val: {classifier['classification/top1']:.1f} %",
        f"- pseudo boxes on {boxes['images']} training images: {boxes['boxes_per_image']:.2f} per image, "
        f"mean size {boxes['mean_box_width']:.1f} x {boxes['mean_box_height']:.1f} px; against the real boxes: "
        + ", ".join(f"{name} {value:.2f}" for name, value in quality.items()),
        f"- pre-trained detector on synthetic_shapes_val without fine-tuning (same 8 classes): "
        f"AP {pretrain['bbox/AP']:.1f}, AP50 {pretrain['bbox/AP50']:.1f}; as a classifier (summed detection "
        f"confidences, Sec. 4.3) on synthetic_shapes_cls_val: top-1 {as_classifier['top1']:.1f} %, "
        f"top-5 {as_classifier['top5']:.1f} %",
        "",
        "| k (images per class) | init | " + " | ".join(METRICS) + " |",
        "|---|---|" + "---|" * len(METRICS),
    ]
    for k in shots:
        results = {init: last_evaluation(runs[(init, k)], list(METRICS)) for init in INITIALISATIONS}
        for init in INITIALISATIONS:
            lines.append(f"| {k} | {init.upper()} | " + " | ".join(f"{results[init][m]:.1f}" for m in METRICS) + " |")
        lines.append(f"| {k} | DAP - CLS | " + " | ".join(
            f"{results['dap'][m] - results['cls'][m]:+.1f}" for m in METRICS) + " |")
    if timings:
        lines += ["", "Wall time of the steps run now: " + ", ".join(
            f"{name} {seconds / 60:.1f} min" for name, seconds in timings.items())]
    return "\n".join(lines) + "\n"


def _plot(runs, shots, path) -> None:
    """AP and VOC AP50 vs k for both initialisations (the paper's Fig. 3/4), as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for axis, metric in zip(axes, ("bbox/AP", "voc/AP50")):
        for init in INITIALISATIONS:
            values = [last_evaluation(runs[(init, k)], [metric])[metric] for k in shots]
            axis.plot(list(shots), values, marker="o", label=init.upper())
        axis.set_xlabel("images per class (k)")
        axis.set_ylabel(metric)
        axis.set_xticks(list(shots))
        axis.grid(alpha=0.3)
        axis.legend()
    figure.suptitle("k-shot fine-tuning on synthetic_shapes_train, evaluated on synthetic_shapes_val")
    figure.tight_layout()
    save_figure_atomically(figure, path, dpi=110)
    plt.close(figure)


def main(argv: Sequence[str] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0],
                                     epilog=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shots", type=int, nargs="+", default=[5, 20], help="k values to fine-tune with")
    parser.add_argument("--seed", type=int, default=0, choices=(0, 1, 2), help="which k-shot split")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    report = run_workflow(OUTPUT_DIR, args.shots, args.seed)
    print(report + f"\nTotal: {(time.perf_counter() - start) / 60:.1f} min. Report, kshot.png and "
          f"pseudo_boxes.png are in {OUTPUT_DIR}", flush=True)


if __name__ == "__main__":
    main()
