"""
MSAD on the embedded synthetic data, end to end on CPU:

    python -m projects.msad.workflow [--output-dir output/msad/synthetic] [--teacher-iterations 600] [--backbone NAME]

1. the multi-scale fusion teacher (configs/msad/synthetic_fcos_teacher_cpu.py: FCOS R18-FPN on
   ~256 px images and their 128 px copies, C-FF);
2. the low-resolution student initialised from it, with aligned distillation
   (configs/msad/synthetic_fcos_student_cpu.py), and the same student without distillation
   (``model.distill_weight=0``), the control that answers "does distillation help";
3. evaluation with ``python -m projects.msad.resolution_table``: the teacher's three paths at 256 px (supplement
   Table 1 "T H", "T L", "T H&L") and both students at 128 px ("S L"), then both students across
   test sizes (Table 2);
then a report (report.md, the tables, resolutions.png). Every step is an ordinary command of the
collection, printed before it runs; finished steps are skipped and training resumes, so an
interrupted workflow continues where it stopped when started again.

``--backbone NAME`` runs the same steps with the teacher and student configs
``msad/synthetic_fcos_NAME_{teacher,student}_cpu.py`` (another backbone of the collection,
README.md "Combinations"; default output directory output/msad/synthetic_NAME).
"""
import csv
import os
import sys
from typing import Optional, Tuple

from projects.common.config import get_config_file
from projects.common.workflow import Workflow, train_command, workflow_main
from projects.msad.resolution_table import METRICS, markdown

OUTPUT_DIR = "output/msad/synthetic"
# configs of the collection, by name; "{}" is "" or "_<backbone>"
TEACHER_CONFIG = "msad/synthetic_fcos{}_teacher_cpu.py"
STUDENT_CONFIG = "msad/synthetic_fcos{}_student_cpu.py"
HIGH_RES, LOW_RES = 256, 128
STUDENT_TEST_SIZES = (256, 192, 160, 128, 96, 64)


def _table_command(runs, test_sizes, output):
    command = [sys.executable, "-m", "projects.msad.resolution_table", "--test-sizes", *map(str, test_sizes), "--output", output]
    for run in runs:
        command += ["--run", *run]
    return command


def _read_table(path):
    """The rows of a CSV written by ``projects.msad.resolution_table``, with numbers as numbers."""
    with open(path) as f:
        return [{**row, "size": int(row["size"]), **{m: float(row[m]) for m in METRICS}} for row in csv.DictReader(f)]


def teacher_schedule(iterations: int):
    """Overrides that train the teacher ``iterations`` long with its config's step schedule
    stretched to it (LR x0.1 at 3/4 and 11/12 of the run; the warm-up stays 50 iterations)."""
    return [f"train.max_iter={iterations}"]


def configs_of(backbone: Optional[str]) -> Tuple[str, str]:
    """The teacher and student configs with ``backbone`` (None: the half-width ResNet-18 ones),
    each checked to exist."""
    suffix = f"_{backbone}" if backbone else ""
    configs = TEACHER_CONFIG.format(suffix), STUDENT_CONFIG.format(suffix)
    for config in configs:
        if not os.path.isfile(get_config_file(config)):
            raise FileNotFoundError(f"--backbone {backbone} needs the config {config}: write it like the "
                                    "tied_resnet50 ones (configs/msad/synthetic_fcos_tied_resnet50_*_cpu.py)")
    return configs


def run_workflow(output_dir: str, teacher_iterations: int = None, backbone: Optional[str] = None) -> str:
    """Run (or finish) every step; returns the report's markdown. ``teacher_iterations``: train
    the teacher longer or shorter than its config's 600 iterations."""
    workflow = Workflow("msad.workflow")
    teacher_config, student_config = configs_of(backbone)
    teacher_dir = os.path.join(output_dir, "teacher")
    teacher = os.path.join(teacher_dir, "model_final.pth")
    students = {"S L (distilled)": os.path.join(output_dir, "student"),
                "S L (no distillation)": os.path.join(output_dir, "student_no_kd")}

    schedule = teacher_schedule(teacher_iterations) if teacher_iterations else []
    workflow.run("1. fusion teacher", train_command(teacher_config, teacher_dir, *schedule), teacher)
    for (label, run_dir), weight in zip(students.items(), ("0.6", "0")):
        workflow.run(f"2. low-resolution student, {label[5:-1]}",
                     train_command(student_config, run_dir, f"train.init_checkpoint={teacher}",
                                   f"model.distill_weight={weight}"),
                     os.path.join(run_dir, "model_final.pth"))

    paths_table = os.path.join(output_dir, "teacher_paths")
    teacher_runs = [(f"T {name}", teacher_config, teacher, f"model.inference_path={path}")
                    for name, path in (("H", "high"), ("L", "low"), ("H&L", "fused"))]
    workflow.run("3a. teacher paths", _table_command(teacher_runs, [HIGH_RES], paths_table), paths_table + ".csv")
    student_runs = [(label, student_config, os.path.join(run_dir, "model_final.pth"))
                    for label, run_dir in students.items()]
    students_table = os.path.join(output_dir, "students")
    workflow.run("3b. students", _table_command(student_runs, [LOW_RES], students_table), students_table + ".csv")
    resolutions = os.path.join(output_dir, "resolutions")
    workflow.run("3c. students across test sizes", _table_command(student_runs, STUDENT_TEST_SIZES, resolutions),
                 resolutions + ".csv")

    report = "\n".join([
        "# MSAD on the synthetic data (CPU)\n",
        f"Teacher ({teacher_config}: FCOS, {HIGH_RES} px + {LOW_RES} px copies) and low-resolution students "
        f"({student_config}, {LOW_RES} px), COCO box AP on synthetic_shapes_val:\n",
        markdown(_read_table(paths_table + ".csv") + _read_table(students_table + ".csv")),
        "Students across test sizes (supplement Table 2; resolutions.png):\n",
        markdown(_read_table(resolutions + ".csv")),
    ] + workflow.timing_lines())
    with open(os.path.join(output_dir, "report.md"), "w") as f:
        f.write(report + "\n")
    return report


def main(argv=None) -> str:
    def add_arguments(parser):
        parser.add_argument("--teacher-iterations", type=int, help="default: the teacher config's 600")
        parser.add_argument("--backbone", help="another backbone's teacher and student, e.g. tied_resnet50 "
                                               "(configs msad/synthetic_fcos_<backbone>_{teacher,student}_cpu.py; "
                                               f"default output dir {OUTPUT_DIR}_<backbone>)")

    def output_dir(options):
        return f"{OUTPUT_DIR}_{options['backbone']}" if options["backbone"] else OUTPUT_DIR

    return workflow_main(run_workflow, __doc__.strip().splitlines()[0], output_dir, argv, add_arguments)


if __name__ == "__main__":
    main()
