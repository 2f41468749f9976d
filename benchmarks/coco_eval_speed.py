"""COCO box evaluation as detectron2's ``COCOEvaluator`` runs it (``_evaluate_predictions_on_coco``:
``loadRes``, ``evaluate``, ``accumulate``, ``summarize``), with the official pycocotools
``COCOeval`` (``use_fast_impl=False``) and with the fast ``COCOeval_opt`` (``use_fast_impl=True``:
detectron2's C++ one when its extension is built, faster-coco-eval's C++ one without it, as
tools/install_detectron2.py patches it), on the same synthetic ground truth and detections.
Times from benchmarks/timing.py (interleaved, process CPU time, median of the repeats); the
12 COCO numbers of both must agree.

The data: ``--images`` images of 640x480 with 1-12 objects each of 20 categories, sizes from
small to large; per image every object detected with jittered corners (80 %) plus false
positives, 30 detections an image on average, scores uniform.

    python -m benchmarks.coco_eval_speed [--images 500 --repeats 5 --threads 1] [--markdown out.md]
"""
import argparse
import contextlib
import io

import numpy as np
from tabulate import tabulate

from detectron2.evaluation import coco_evaluation
from detectron2.evaluation.fast_eval_api import COCOeval_opt
from pycocotools.coco import COCO

from benchmarks.timing import describe, interleaved, use_threads
from projects.common.io import write_bytes_atomically

CATEGORIES = 20
WIDTH, HEIGHT = 640, 480
DETECTIONS_PER_IMAGE = 30
STATISTICS = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")


def synthetic_coco(images: int, seed: int = 0):
    """(pycocotools ``COCO`` ground truth, detection results in COCO's json format)."""
    rng = np.random.default_rng(seed)
    annotations, results = [], []
    for image_id in range(1, images + 1):
        objects = int(rng.integers(1, 13))
        sides = np.exp(rng.uniform(np.log(8), np.log(300), (objects, 2)))
        corners = rng.uniform(0, 1, (objects, 2)) * ([WIDTH, HEIGHT] - sides)
        categories = rng.integers(1, CATEGORIES + 1, objects)
        for (x, y), (w, h), category in zip(corners, sides, categories):
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": int(category),
                                "bbox": [float(x), float(y), float(w), float(h)], "area": float(w * h), "iscrowd": 0})
            if rng.random() < 0.8:
                jitter = rng.normal(0, 0.1, 4) * [w, h, w, h]
                results.append({"image_id": image_id, "category_id": int(category), "score": float(rng.random()),
                                "bbox": [float(x + jitter[0]), float(y + jitter[1]),
                                         float(max(w + jitter[2], 1)), float(max(h + jitter[3], 1))]})
        for _ in range(max(DETECTIONS_PER_IMAGE - objects, 0)):
            w, h = np.exp(rng.uniform(np.log(8), np.log(300), 2))
            x, y = rng.uniform(0, 1, 2) * [WIDTH - w, HEIGHT - h]
            results.append({"image_id": image_id, "category_id": int(rng.integers(1, CATEGORIES + 1)),
                            "score": float(rng.random()), "bbox": [float(x), float(y), float(w), float(h)]})
    ground_truth = COCO()
    ground_truth.dataset = {
        "images": [{"id": i, "width": WIDTH, "height": HEIGHT} for i in range(1, images + 1)],
        "annotations": annotations,
        "categories": [{"id": c, "name": f"class{c}"} for c in range(1, CATEGORIES + 1)],
    }
    with contextlib.redirect_stdout(io.StringIO()):
        ground_truth.createIndex()
    return ground_truth, results


def evaluate(ground_truth, results, use_fast_impl: bool) -> np.ndarray:
    """The 12 COCO numbers, as ``COCOEvaluator`` computes them (its printing silenced)."""
    with contextlib.redirect_stdout(io.StringIO()):
        return coco_evaluation._evaluate_predictions_on_coco(ground_truth, results, "bbox",
                                                             use_fast_impl=use_fast_impl).stats


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--markdown", help="also write the table to this markdown file")
    args = parser.parse_args(argv)
    use_threads(args.threads)
    ground_truth, results = synthetic_coco(args.images)
    stats = {}

    def run(name, use_fast_impl):
        def evaluation():
            stats[name] = evaluate(ground_truth, results, use_fast_impl)
        return evaluation

    fast_name = f"{COCOeval_opt.__module__}.COCOeval_opt"
    times = interleaved({"pycocotools": run("pycocotools", False), "fast": run("fast", True)}, args.repeats)
    difference = float(np.abs(stats["pycocotools"] - stats["fast"]).max())
    rows = [["pycocotools.cocoeval.COCOeval (use_fast_impl=False)", times["pycocotools"].median, 1.0],
            [f"{fast_name} (use_fast_impl=True)", times["fast"].median,
             times["pycocotools"].median / times["fast"].median]]
    table = tabulate(rows, headers=["evaluation", "seconds", "speed-up"], tablefmt="github", floatfmt=("", ".3f", ".1f"))
    text = (f"COCO box evaluation of {args.images} images, {len(results)} detections, {len(ground_truth.anns)} "
            f"objects ({describe(args.repeats)}):\n\n{table}\n\n"
            f"Largest difference of the 12 COCO numbers ({', '.join(STATISTICS)}): {difference:.1e}; "
            f"AP {stats['fast'][0]:.4f}.")
    print(text)
    if args.markdown:
        write_bytes_atomically(args.markdown, (text + "\n").encode())
    return {"seconds": {name: timing.median for name, timing in times.items()}, "stats": stats,
            "largest_difference": difference}


if __name__ == "__main__":
    main()
