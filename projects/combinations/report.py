"""
The tables of the cross-paper runs 1 and 3 (README.md, "Combinations"), from the output
directories of the workflows that made them:

    python -m projects.combinations.report [--backbones tied_resnet50 resnet50]

Run 1 reads ``python -m dap.workflow --backbone B --seed S`` (output/dap/synthetic_B): the
classifier, its CAM pseudo boxes of the 480 training images, the pre-trained detector, and the
k-shot fine-tunings of every k-shot split S found (mean ± std over splits). Run 3 reads
``python -m projects.msad.workflow --backbone B`` (output/msad/synthetic_B): the teacher's three
paths at 256 px and both students at 128 px. Runs 2 and 4 have their own report:
``python -m projects.combinations.pseudo_box_quality``.
"""
import argparse
import csv
import glob
import json
import os
import re
from typing import Dict, List, Sequence

import numpy as np
from tabulate import tabulate

from projects.common.metrics import last_evaluation

DAP_ROOT, MSAD_ROOT = "output/dap/synthetic_{}", "output/msad/synthetic_{}"
KSHOT_RUN = re.compile(r"(cls|dap)_(\d+)shot_seed(\d+)$")


def _mean_std(values: Sequence[float], digits: int = 1) -> str:
    values = np.asarray(values, dtype=np.float64)
    mean = f"{values.mean():.{digits}f}"
    return mean if len(values) == 1 else f"{mean} ± {values.std(ddof=1):.{digits}f} (n={len(values)})"


def kshot_results(finetune_dir: str) -> Dict[tuple, List[float]]:
    """(init, k) -> COCO box AP of every finished k-shot split under ``finetune_dir``."""
    results: Dict[tuple, List[float]] = {}
    for run_dir in sorted(glob.glob(os.path.join(finetune_dir, "*shot_seed*"))):
        match = KSHOT_RUN.search(run_dir)
        if match and os.path.isfile(os.path.join(run_dir, "model_final.pth")):
            init, k = match.group(1), int(match.group(2))
            results.setdefault((init, k), []).append(last_evaluation(run_dir, ["bbox/AP"])["bbox/AP"])
    return results


def dap_table(backbones: Sequence[str]) -> str:
    rows = []
    for backbone in backbones:
        root = DAP_ROOT.format(backbone)
        with open(os.path.join(root, "pseudo_boxes", "train.stats.json")) as f:
            statistics = json.load(f)
        quality = statistics["quality_vs_ground_truth"]
        with open(os.path.join(root, "detector_as_classifier.json")) as f:
            as_classifier = json.load(f)["detector_classification"]["top1"]
        kshot = kshot_results(os.path.join(root, "finetune"))
        row = [backbone,
               f"{last_evaluation(os.path.join(root, 'classifier'), ['classification/top1'])['classification/top1']:.1f}",
               f"{statistics['pseudo_boxes']['boxes_per_image']:.2f}", f"{quality['mean_best_iou']:.3f}",
               f"{quality['recall@0.5']:.1f}",
               f"{last_evaluation(os.path.join(root, 'pretrain'), ['bbox/AP'])['bbox/AP']:.1f}", f"{as_classifier:.1f}"]
        for k in sorted({k for _, k in kshot}):
            for init in ("cls", "dap"):
                row.append(f"{k}-shot {init.upper()}: {_mean_std(kshot.get((init, k), [np.nan]))}")
        rows.append(row)
    headers = ["backbone", "classifier top-1", "pseudo boxes / image", "mean best IoU", "recall@0.5 (%)",
               "pre-trained detector AP", "detector as classifier top-1", "k-shot fine-tuning, COCO AP"]
    return tabulate([row[:7] + ["; ".join(row[7:])] for row in rows], headers=headers, tablefmt="github",
                    disable_numparse=True)


def _read_rows(path: str) -> List[Dict]:
    with open(path) as f:
        return list(csv.DictReader(f))


def msad_table(backbones: Sequence[str]) -> str:
    rows = []
    for backbone in backbones:
        root = MSAD_ROOT.format(backbone)
        for row in _read_rows(os.path.join(root, "teacher_paths.csv")) + _read_rows(os.path.join(root, "students.csv")):
            rows.append([backbone, row["model"], row["size"], *(f"{float(row[m]):.1f}" for m in ("AP", "AP50", "AP75"))])
    return tabulate(rows, headers=["backbone", "model", "test size", "AP", "AP50", "AP75"], tablefmt="github",
                    disable_numparse=True)


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--backbones", nargs="+", default=["tied_resnet50", "resnet50"])
    args = parser.parse_args(argv)
    report = "\n\n".join(["### Run 1: DAP", dap_table(args.backbones), "### Run 3: MSAD", msad_table(args.backbones)])
    print(report)
    return report


if __name__ == "__main__":
    main()
