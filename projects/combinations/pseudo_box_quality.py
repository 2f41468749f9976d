"""
CAM pseudo-box quality of DAP step-1 classifiers on other backbones, on the embedded synthetic data (CPU):

    python -m projects.combinations.pseudo_box_quality [--seeds 0 1 2] [--output-dir DIR]
    (default output directory: output/combinations/pseudo_box_quality)

README.md "Combinations", runs 2 and 4, and the pseudo boxes of run 1 over several seeds. For each
seed (``train.seed``), classifiers with DAP's step-1 recipe (300 iterations at batch 32 of 96 px
crops of synthetic_shapes_cls_train), each compared with the one of the same size it stands for:

* ResNet-18 at half width, the plain one (configs/dap/synthetic_classifier_cpu.py, final map at stride 32);
* ResNet18-WS (synthetic_classifier_resnet18_ws_cpu.py): the same depth with a stride-8 final map;
* SAN ResNet-18 trained at 128, 96 and 64 (synthetic_classifier_san_resnet18_cpu.py): each CAM
  scale among them runs with its own private BN;
* TiedResNet-50 and ResNet-50 at quarter width (synthetic_classifier_{tied_resnet50,resnet50}_cpu.py);

then ``python -m dap.generate_pseudo_boxes`` on the 160 images of synthetic_shapes_cls_val at the CAM
scales 64, 96, 128 and the DAP workflow's 128 + 256 (CAM at image resolution, with flip, each
classifier's cell geometry), scored against the real boxes. The report (report.md, per-seed CSV)
gives mean +- std over seeds of mean best IoU, recall@0.5 and boxes per image, and of each
classifier's paired difference to its reference trained with the same seed. Every step is an ordinary
command, printed before it runs and skipped when its result exists.
"""
import csv
import json
import os
import sys
from typing import Dict, List, Sequence

import numpy as np
from tabulate import tabulate

from projects.common.metrics import last_evaluation
from projects.common.workflow import Workflow, train_command, workflow_main

# name: (config, input position of feature cell 0's centre: 0.5 for "same"-padded ResNets, 7.5 for
# ResNet-WS, whose three 2x2 max-pools without padding shift it, the classifier it is compared with)
CLASSIFIERS = {
    "ResNet-18": ("dap/synthetic_classifier_cpu.py", 0.5, None),
    "ResNet18-WS": ("dap/synthetic_classifier_resnet18_ws_cpu.py", 7.5, "ResNet-18"),
    "SAN ResNet-18": ("dap/synthetic_classifier_san_resnet18_cpu.py", 0.5, "ResNet-18"),
    "ResNet-50": ("dap/synthetic_classifier_resnet50_cpu.py", 0.5, None),
    "TiedResNet-50": ("dap/synthetic_classifier_tied_resnet50_cpu.py", 0.5, "ResNet-50"),
}
SCALE_SETS = ((64,), (96,), (128,), (128, 256))
DATASET = "synthetic_shapes_cls_val"
METRICS = {"mean_best_iou": "mean best IoU", "recall@0.5": "recall@0.5 (%)", "boxes_per_image": "boxes / image"}


def _scales_name(scales: Sequence[int]) -> str:
    return "+".join(map(str, scales))


def run_workflow(output_dir: str, seeds: Sequence[int]) -> str:
    """Train what is missing, make the pseudo boxes, write report.md and results.csv; returns the report."""
    workflow = Workflow("combinations.pseudo_box_quality")
    rows = []
    for seed in seeds:
        for name, (config, cell_origin, _) in CLASSIFIERS.items():
            run_dir = os.path.join(output_dir, f"{name.replace(' ', '_')}_seed{seed}")
            weights = os.path.join(run_dir, "model_final.pth")
            workflow.run(f"{name}, seed {seed}: classifier", train_command(config, run_dir, f"train.seed={seed}"),
                         weights)
            top1 = last_evaluation(run_dir, ["classification/top1"])["classification/top1"]
            for scales in SCALE_SETS:
                output = os.path.join(run_dir, "pseudo_boxes", f"val_{_scales_name(scales)}.json")
                workflow.run(f"{name}, seed {seed}: pseudo boxes at {_scales_name(scales)}",
                             [sys.executable, "-m", "dap.generate_pseudo_boxes", "--config-file", config,
                              "--weights", weights, "--dataset", DATASET, "--output", output,
                              "--scales", *map(str, scales), "--resolution", "image",
                              "--cell-origin", str(cell_origin), "--num-workers", "0"],
                             output)
                with open(os.path.splitext(output)[0] + ".stats.json") as f:
                    statistics = json.load(f)
                rows.append({"classifier": name, "seed": seed, "scales": _scales_name(scales), "top1": top1,
                             **{key: ({**statistics["pseudo_boxes"], **statistics["quality_vs_ground_truth"]})[key]
                                for key in METRICS}})
    _write_csv(rows, os.path.join(output_dir, "results.csv"))
    report = _report(rows, seeds) + "\n" + "\n".join(workflow.timing_lines()) + "\n"
    with open(os.path.join(output_dir, "report.md"), "w") as f:
        f.write(report)
    return report


def _write_csv(rows: List[Dict], path: str) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _mean_std(values: Sequence[float], digits: int, sign: str = "") -> str:
    """Mean ± sample standard deviation (the mean alone for one value); ``sign="+"`` signs the mean."""
    values = np.asarray(values, dtype=np.float64)
    mean = f"{values.mean():{sign}.{digits}f}"
    return mean if len(values) == 1 else f"{mean} ± {values.std(ddof=1):.{digits}f}"


def _report(rows: List[Dict], seeds: Sequence[int]) -> str:
    """Per classifier and CAM scales: each metric, and mean best IoU minus its reference's (paired by seed)."""
    by_key = {(r["classifier"], r["scales"], r["seed"]): r for r in rows}
    table = []
    for name, (_, _, reference) in CLASSIFIERS.items():
        top1 = [by_key[(name, _scales_name(SCALE_SETS[0]), seed)]["top1"] for seed in seeds]
        for scales in map(_scales_name, SCALE_SETS):
            values = {key: [by_key[(name, scales, seed)][key] for seed in seeds] for key in METRICS}
            difference = "" if reference is None else _mean_std(
                [by_key[(name, scales, s)]["mean_best_iou"] - by_key[(reference, scales, s)]["mean_best_iou"]
                 for s in seeds], 3, sign="+") + f" vs {reference}"
            table.append([name, _mean_std(top1, 1), scales, _mean_std(values["mean_best_iou"], 3), difference,
                          _mean_std(values["recall@0.5"], 1), _mean_std(values["boxes_per_image"], 2)])
    headers = ["classifier", "top-1 (%)", "CAM scales", METRICS["mean_best_iou"], "IoU difference (paired)",
               METRICS["recall@0.5"], METRICS["boxes_per_image"]]
    return "\n".join([
        f"## CAM pseudo boxes on {DATASET} (seeds {', '.join(map(str, seeds))}: mean ± std)",
        "",
        tabulate(table, headers=headers, tablefmt="github", disable_numparse=True),
    ])


def main(argv=None) -> str:
    def add_arguments(parser):
        parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="train.seed of the classifiers")

    return workflow_main(run_workflow, __doc__.strip().splitlines()[0], "output/combinations/pseudo_box_quality",
                         argv, add_arguments)


if __name__ == "__main__":
    main()
