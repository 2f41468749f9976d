"""
The whole DAP workflow on the embedded synthetic data, on CPU (the README's main job):

    python -m dap.workflow [--shots 5 20] [--seed 0] [--output-dir output/dap/synthetic] [--backbone NAME]

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
continues where it stopped when started again. The pseudo boxes go where the pre-training
config reads them (output/dap/synthetic/pseudo_boxes), whatever --output-dir says.

``--backbone NAME`` runs the same chain with the configs ``dap/synthetic_classifier_NAME_cpu.py``,
``dap/synthetic_pretrain_faster_rcnn_NAME_cpu.py`` and ``dap/synthetic_finetune_faster_rcnn_NAME_cpu.py``
(another backbone of the collection, README.md "Combinations"; their pseudo boxes and default
output directory: output/dap/synthetic_NAME).
"""

import json
import os
import sys
from typing import List, Optional, Sequence, Tuple

from tabulate import tabulate

from detectron2.data import MetadataCatalog

from projects.common import engine
from projects.common.config import get_config_file
from projects.common.io import save_figure_atomically, write_json_atomically
from projects.common.metrics import last_evaluation
from projects.common.weights import load_trained_weights
from projects.common.workflow import Workflow, train_command, workflow_main

OUTPUT_DIR = "output/dap/synthetic"  # where the configs below read and write by default
# configs of the collection, by name (projects.common.config); "{}" is "" or "_<backbone>"
CLASSIFIER_CONFIG = "dap/synthetic_classifier{}_cpu.py"
PRETRAIN_CONFIG = "dap/synthetic_pretrain_faster_rcnn{}_cpu.py"
FINETUNE_CONFIG = "dap/synthetic_finetune_faster_rcnn{}_cpu.py"
DETECTOR_AS_CLASSIFIER_CONFIG = "dap/synthetic_detector_as_classifier_cpu.py"
CLASSIFICATION_SET, DETECTION_SET = "synthetic_shapes_cls_train", "synthetic_shapes_train"
# CAMs of 128 px images: two scales as in the paper (2x and 4x the short side of 288 / 576 px
# ImageNet crops is not possible here), upsampled to image pixels since the feature grid is 4x4
PSEUDO_BOX_OPTIONS = ["--scales", "128", "256", "--resolution", "image"]
METRICS = {"bbox/AP": "COCO AP", "bbox/AP50": "AP50", "voc/AP50": "VOC AP50 (area)",
           "voc/AP50_11pt": "VOC AP50 (07 11-point)"}  # result key: report column
INITIALISATIONS = ("cls", "dap")


def configs_of(backbone: Optional[str]) -> Tuple[str, str, str]:
    """The classifier, pre-training and fine-tuning configs of the chain with ``backbone`` (None:
    the default chain's half-width ResNet-18), each checked to exist."""
    suffix = f"_{backbone}" if backbone else ""
    configs = tuple(config.format(suffix) for config in (CLASSIFIER_CONFIG, PRETRAIN_CONFIG, FINETUNE_CONFIG))
    for config in configs:
        if not os.path.isfile(get_config_file(config)):
            raise FileNotFoundError(f"--backbone {backbone} needs the config {config}: write it like the "
                                    "tied_resnet50 ones (configs/dap/synthetic_*_tied_resnet50_cpu.py)")
    return configs


def run_workflow(output_dir: str, shots: Sequence[int], seed: int, backbone: Optional[str] = None) -> str:
    """Run (or finish) every step; returns the report's markdown."""
    workflow = Workflow("dap.workflow")
    classifier_config, pretrain_config, finetune_config = configs_of(backbone)
    paths = {name: os.path.join(output_dir, name) for name in ("classifier", "pretrain", "finetune")}
    classifier_weights = os.path.join(paths["classifier"], "model_final.pth")
    pseudo_boxes = _pseudo_box_json(pretrain_config)
    cls_init, dap_init = os.path.join(output_dir, "cls_init.pth"), os.path.join(output_dir, "dap_init.pth")
    python = sys.executable

    workflow.run("1. classifier", train_command(classifier_config, paths["classifier"]), classifier_weights)
    workflow.run("2. pseudo boxes", [python, "-m", "dap.generate_pseudo_boxes", "--config-file", classifier_config,
                                     "--weights", classifier_weights, "--dataset", CLASSIFICATION_SET,
                                     "--output", pseudo_boxes, *PSEUDO_BOX_OPTIONS], pseudo_boxes)
    figure = os.path.join(output_dir, "pseudo_boxes.png")
    workflow.run("2b. pseudo-box picture", [python, "-m", "dap.visualize", "--config-file", classifier_config,
                                            "--weights", classifier_weights, "--dataset", "synthetic_shapes_cls_val",
                                            "--output", figure, *PSEUDO_BOX_OPTIONS], figure)
    workflow.run("3a. CLS initialisation", [python, "-m", "projects.common.checkpoint", "--input", classifier_weights,
                                            "--output", cls_init, "--fpn"], cls_init)
    pretrained = os.path.join(paths["pretrain"], "model_final.pth")
    workflow.run("3b. detector pre-training",
                 train_command(pretrain_config, paths["pretrain"], f"train.init_checkpoint={cls_init}"), pretrained)
    detector_as_classifier = os.path.join(output_dir, "detector_as_classifier.json")
    workflow.call("3c. pre-trained detector as a classifier",
                  lambda: _evaluate_detector_as_classifier(pretrain_config, pretrained, detector_as_classifier),
                  detector_as_classifier)
    workflow.run("4a. DAP initialisation",
                 [python, "-m", "dap.transfer", "--input", pretrained, "--output", dap_init], dap_init)
    runs = {}
    for k in shots:
        for initialisation, weights in zip(INITIALISATIONS, (cls_init, dap_init)):
            run_dir = os.path.join(paths["finetune"], f"{initialisation}_{k}shot_seed{seed}")
            runs[(initialisation, k)] = run_dir
            workflow.run(f"4b. {k}-shot fine-tuning from {initialisation.upper()}",
                         train_command(finetune_config, run_dir, f"train.init_checkpoint={weights}",
                                       f"dataloader.train.dataset.names={DETECTION_SET}_{k}shot_seed{seed}"),
                         os.path.join(run_dir, "model_final.pth"))

    _plot(runs, shots, os.path.join(output_dir, "kshot.png"))
    lines = _report_lines(pseudo_boxes, paths, runs, shots, detector_as_classifier) + workflow.timing_lines()
    report = "\n".join(lines) + "\n"
    with open(os.path.join(output_dir, "report.md"), "w") as f:
        f.write(report)
    return report


def _evaluate_detector_as_classifier(pretrain_config: str, weights: str, result_file: str) -> None:
    """Top-1/top-5 of the detector of ``pretrain_config`` with ``weights`` on
    synthetic_shapes_cls_val (Sec. 4.3), saved as JSON: DETECTOR_AS_CLASSIFIER_CONFIG's evaluation
    with the pre-training config's model."""
    cfg = engine.load_config(DETECTOR_AS_CLASSIFIER_CONFIG)
    cfg.model = engine.load_config(pretrain_config).model
    model = engine.build_model(cfg)
    load_trained_weights(model, weights)
    write_json_atomically(result_file, engine.do_test(cfg, model))


def _pseudo_box_json(pretrain_config: str) -> str:
    """Where the pre-training config reads its pseudo boxes (the config registers that dataset)."""
    cfg = engine.load_config(pretrain_config)
    return MetadataCatalog.get(cfg.dataloader.train.dataset.names).json_file


def _report_lines(pseudo_boxes, paths, runs, shots, detector_as_classifier) -> List[str]:
    """The report's markdown: the pseudo boxes, the pre-trained detector and the CLS-vs-DAP table."""
    with open(os.path.splitext(pseudo_boxes)[0] + ".stats.json") as f:
        statistics = json.load(f)
    boxes, quality = statistics["pseudo_boxes"], statistics.get("quality_vs_ground_truth", {})
    classifier = last_evaluation(paths["classifier"], ["classification/top1"])
    pretrain = last_evaluation(paths["pretrain"], ["bbox/AP"])
    with open(detector_as_classifier) as f:
        as_classifier = json.load(f)["detector_classification"]
    return [
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
        _kshot_table(runs, shots),
    ]


def _kshot_table(runs, shots) -> str:
    """Per k: the CLS and DAP fine-tuning results and their difference (signed), one decimal."""
    rows = []
    for k in shots:
        results = {init: last_evaluation(runs[(init, k)], list(METRICS)) for init in INITIALISATIONS}
        rows += [[k, init.upper(), *(f"{results[init][metric]:.1f}" for metric in METRICS)] for init in INITIALISATIONS]
        rows.append([k, "DAP - CLS", *(f"{results['dap'][metric] - results['cls'][metric]:+.1f}" for metric in METRICS)])
    # cells formatted here (tabulate would drop the sign of the differences), numbers aligned right
    return tabulate(rows, headers=["k (images per class)", "init", *METRICS.values()], tablefmt="github",
                    disable_numparse=True, colalign=("right", "left") + ("right",) * len(METRICS))


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


def main(argv: Sequence[str] = None) -> str:
    def add_arguments(parser):
        parser.add_argument("--shots", type=int, nargs="+", default=[5, 20], help="k values to fine-tune with")
        parser.add_argument("--seed", type=int, default=0, choices=(0, 1, 2), help="which k-shot split")
        parser.add_argument("--backbone", help="another backbone's chain, e.g. tied_resnet50 (configs "
                                               "dap/synthetic_*_<backbone>_cpu.py; default output dir "
                                               f"{OUTPUT_DIR}_<backbone>)")

    def output_dir(options):
        return f"{OUTPUT_DIR}_{options['backbone']}" if options["backbone"] else OUTPUT_DIR

    return workflow_main(run_workflow, __doc__.strip().splitlines()[0], output_dir, argv, add_arguments)


if __name__ == "__main__":
    main()
