"""
ResNet-WS weakly supervised detection on the embedded synthetic data, end to end on CPU:

    python -m projects.resnet_ws.workflow [--output-dir output/resnet_ws/synthetic]

1. Selective Search proposals of synthetic_shapes_voc_train / _val (python -m
   projects.resnet_ws.proposals) and a picture of them;
2. ResNet18-WS + redundant adaptation neck pre-trained as a classifier on the classification
   split (configs/resnet_ws/synthetic_classifier_R18_WS_cpu.py; the paper's ImageNet step);
3. WSDDN, OICR and OICR+REG detectors from its weights (F5: backbone frozen), trained from
   image-level labels only (configs/resnet_ws/synthetic_{wsddn,oicr,oicr_reg}_R18_WS_cpu.py),
   evaluated by VOC AP50 on synthetic_shapes_voc_val and by CorLoc on their training images (the
   paper's CorLoc on trainval);
then a report (report.md). Every step is an ordinary command of the collection, printed before it
runs; finished steps are skipped and training resumes, so an interrupted workflow continues where
it stopped when started again.
"""
import json
import os
import sys

from tabulate import tabulate

from projects.common.io import write_json_atomically
from projects.common.metrics import last_evaluation
from projects.common.workflow import Workflow, train_command, workflow_main

CLASSIFIER_CONFIG = "resnet_ws/synthetic_classifier_R18_WS_cpu.py"  # configs of the collection, by name
HEADS = {"WSDDN": "wsddn", "OICR": "oicr", "OICR+REG": "oicr_reg"}
TRAIN_SET, TEST_SET = "synthetic_shapes_voc_train", "synthetic_shapes_voc_val"


def detector_config(head: str) -> str:
    return f"resnet_ws/synthetic_{head}_R18_WS_cpu.py"


def _corloc_on_training_images(config: str, weights: str, proposals: str, output_dir: str, result_file: str):
    """CorLoc (and VOC AP) of a trained detector on its training images, saved as JSON."""
    from projects.common import engine

    args = engine.parse_args([
        "--config-file", config, "--eval-only", f"train.init_checkpoint={weights}",
        f"train.output_dir={output_dir}", f"dataloader.test.dataset.names={TRAIN_SET}",
        f"dataloader.test.dataset.proposal_files=[{proposals}]",
    ])
    write_json_atomically(result_file, engine.main(args))


def run_workflow(output_dir: str) -> str:
    """Run (or finish) every step; returns the report's markdown."""
    workflow = Workflow("resnet_ws.workflow")
    python = sys.executable
    proposals = {name: os.path.join(output_dir, "proposals", f"{name}.pkl") for name in (TRAIN_SET, TEST_SET)}
    for name, path in proposals.items():
        workflow.run(f"1. Selective Search proposals of {name}",
                     [python, "-m", "projects.resnet_ws.proposals", "--dataset", name, "--output", path], path)
    pictures = os.path.join(output_dir, "proposal_pictures")
    workflow.run("1b. proposal pictures",
                 [python, "-m", "projects.resnet_ws.proposals", "visualize", "--proposals", proposals[TEST_SET],
                  "--dataset", TEST_SET, "--output-dir", pictures, "--num-images", "4", "--top", "20"], pictures)
    classifier_dir = os.path.join(output_dir, "classifier")
    classifier = os.path.join(classifier_dir, "model_final.pth")
    workflow.run("2. ResNet18-WS classifier", train_command(CLASSIFIER_CONFIG, classifier_dir), classifier)

    data = [f"dataloader.train.dataset.proposal_files=[{proposals[TRAIN_SET]}]",
            f"dataloader.test.dataset.proposal_files=[{proposals[TEST_SET]}]"]
    rows = []
    for label, head in HEADS.items():
        run_dir = os.path.join(output_dir, head)
        weights = os.path.join(run_dir, "model_final.pth")
        workflow.run(f"3. {label}", train_command(detector_config(head), run_dir,
                                                   f"train.init_checkpoint={classifier}", *data), weights)
        corloc_file = os.path.join(run_dir, "corloc_train.json")
        workflow.call(f"3b. {label} CorLoc on {TRAIN_SET}",
                      lambda: _corloc_on_training_images(detector_config(head), weights, proposals[TRAIN_SET],
                                                         os.path.join(run_dir, "corloc_train"), corloc_file),
                      corloc_file)
        with open(corloc_file) as f:
            corloc = json.load(f)["corloc"]["CorLoc"]
        test = last_evaluation(run_dir, ["voc/AP50", "corloc/CorLoc"])
        rows.append((label, test["voc/AP50"], test["voc/AP50_11pt"], test["corloc/CorLoc"], corloc))

    lines = [
        "# ResNet-WS weakly supervised detection on the synthetic data (CPU)", "",
        "Quarter-width ResNet18-WS (F5) + redundant adaptation neck, Selective Search proposals, image-level "
        f"labels only; VOC AP50 on {TEST_SET}, CorLoc on {TEST_SET} and on the training images ({TRAIN_SET}).", "",
        tabulate(rows, headers=["head", "VOC AP50", "VOC AP50 (07 11-point)", "CorLoc val", "CorLoc train"],
                 tablefmt="github", floatfmt=".1f"),
    ] + workflow.timing_lines()
    report = "\n".join(lines) + "\n"
    with open(os.path.join(output_dir, "report.md"), "w") as f:
        f.write(report)
    return report


def main(argv=None) -> str:
    return workflow_main(run_workflow, __doc__.strip().splitlines()[0], "output/resnet_ws/synthetic", argv)


if __name__ == "__main__":
    main()
