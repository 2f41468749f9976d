"""The collection's evaluators on COCO128's real annotations (crowd regions, 80 classes, images
without objects) with predictions jittered from them, against the reference implementations:
pycocotools' COCOeval on the official JSON, detectron2's ``voc_eval`` on VOC XML, and COCOeval
per occlusion bucket on the real overlaps."""
import contextlib
import copy
import io
import os

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.evaluation import COCOEvaluator
from detectron2.evaluation.coco_evaluation import instances_to_coco_json
from detectron2.evaluation.pascal_voc_evaluation import voc_eval
from detectron2.structures import BoxMode

from projects.common.evaluation import OcclusionEvaluator, VOCDetectionEvaluator
from projects.common.evaluation.occlusion import bucket_index, bucket_names

COCO_METRICS = ["AP", "AP50", "AP75", "APs", "APm", "APl"]


@pytest.fixture(scope="module")
def predictions(coco128, jittered_predictions):
    """Jittered boxes and masks for every COCO128 image (seed 0)."""
    return jittered_predictions(DatasetCatalog.get(coco128), len(MetadataCatalog.get(coco128).thing_classes),
                                with_masks=True)


def run(evaluator, pairs):
    evaluator.reset()
    for model_input, output in pairs:
        evaluator.process([model_input], [output])
    return evaluator.evaluate()


def pycocotools_stats(json_file, results, task):
    """COCOeval's 12 summary numbers, in percent, straight from the official JSON."""
    with contextlib.redirect_stdout(io.StringIO()):
        ground_truth = COCO(json_file)
        results = copy.deepcopy(results)
        if task == "segm":  # mask AP uses mask areas, as COCOEvaluator does
            for result in results:
                result.pop("bbox")
        coco_eval = COCOeval(ground_truth, ground_truth.loadRes(results), task)
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    return 100 * coco_eval.stats


def test_coco_evaluator_matches_pycocotools(coco128, predictions, tmp_path):
    """COCOEvaluator, with the fast C++ COCOeval (faster-coco-eval without detectron2's `_C`)
    and with the official one, gives pycocotools' numbers for boxes and masks."""
    metadata = MetadataCatalog.get(coco128)
    to_json_id = {contiguous: json_id for json_id, contiguous in metadata.thing_dataset_id_to_contiguous_id.items()}
    results = []
    for model_input, output in predictions:
        for result in instances_to_coco_json(output["instances"], model_input["image_id"]):
            results.append(dict(result, category_id=to_json_id[result["category_id"]]))
    expected = {task: pycocotools_stats(metadata.json_file, results, task) for task in ("bbox", "segm")}
    for use_fast_impl in (True, False):
        evaluator = COCOEvaluator(coco128, output_dir=str(tmp_path / f"fast_{use_fast_impl}"),
                                  use_fast_impl=use_fast_impl)
        assert evaluator._use_fast_impl == use_fast_impl
        evaluated = run(evaluator, predictions)
        for task, stats in expected.items():
            assert 10 < stats[0] < 90, stats  # a test that can tell right from wrong
            got = [evaluated[task][metric] for metric in COCO_METRICS]
            assert got == pytest.approx(stats[:6], abs=1e-9), (task, use_fast_impl)


def write_voc_annotations(records, class_names, root):
    """COCO128's boxes as VOC XML (crowd regions as difficult objects), rounded to VOC's integer
    1-based pixel boxes, and the records with the same boxes in detectron2 coordinates."""
    os.makedirs(os.path.join(root, "Annotations"))
    voc_records = []
    for record in records:
        objects, annotations = [], []
        for annotation in record["annotations"]:
            x0, y0, x1, y1 = BoxMode.convert(annotation["bbox"], annotation["bbox_mode"], BoxMode.XYXY_ABS)
            xmin, ymin, xmax, ymax = int(round(x0)) + 1, int(round(y0)) + 1, max(int(round(x1)), int(round(x0)) + 1), \
                max(int(round(y1)), int(round(y0)) + 1)
            crowd = annotation.get("iscrowd", 0)
            objects.append(f"<object><name>{class_names[annotation['category_id']]}</name><pose>Unspecified</pose>"
                           f"<truncated>0</truncated><difficult>{crowd}</difficult>"
                           f"<bndbox><xmin>{xmin}</xmin><ymin>{ymin}</ymin><xmax>{xmax}</xmax><ymax>{ymax}</ymax>"
                           "</bndbox></object>")
            annotations.append({"bbox": [xmin - 1, ymin - 1, xmax, ymax], "bbox_mode": BoxMode.XYXY_ABS,
                                "category_id": annotation["category_id"], "iscrowd": crowd})
        with open(os.path.join(root, "Annotations", f"{record['image_id']}.xml"), "w") as f:
            f.write(f"<annotation>{''.join(objects)}</annotation>")
        voc_records.append(dict(record, annotations=annotations))
    with open(os.path.join(root, "images.txt"), "w") as f:
        f.write("\n".join(str(record["image_id"]) for record in records) + "\n")
    return voc_records


def test_voc_evaluator_matches_detectron2_voc_eval(coco128, predictions, tmp_path):
    """VOCDetectionEvaluator's per-class AP50 and its mean 11-point AP50 and AP75 equal detectron2's
    port of the VOC devkit on COCO128's boxes, over every class present."""
    records = DatasetCatalog.get(coco128)
    class_names = MetadataCatalog.get(coco128).thing_classes
    name = "coco128_voc_boxes"
    if name not in DatasetCatalog.list():
        voc_records = write_voc_annotations(records, class_names, str(tmp_path / "voc"))
        DatasetCatalog.register(name, lambda: voc_records)
        MetadataCatalog.get(name).set(thing_classes=class_names)
    results = run(VOCDetectionEvaluator(name), predictions)["voc"]

    template = str(tmp_path / "detections_{}.txt")
    by_class = {c: [] for c in class_names}
    for model_input, output in predictions:
        instances = output["instances"]
        for box, score, label in zip(instances.pred_boxes.tensor.tolist(), instances.scores.tolist(),
                                     instances.pred_classes.tolist()):
            # detectron2 coordinates -> VOC's 1-based pixel boxes, as detectron2's VOC evaluator writes them
            by_class[class_names[label]].append(
                f"{model_input['image_id']} {score:.9f} {box[0] + 1:.4f} {box[1] + 1:.4f} {box[2]:.4f} {box[3]:.4f}")
    present = []
    for class_name, lines in by_class.items():
        with open(template.format(class_name), "w") as f:
            f.write("\n".join(lines))
        if not np.isnan(results.get(f"AP50-{class_name}", np.nan)):
            present.append(class_name)
    assert len(present) > 60

    def devkit(class_name, threshold):
        """(area AP, 11-point AP) in percent from voc_eval's precision-recall curve; the 11 recall
        levels exact tenths (voc_eval's own np.arange(0, 1.1, 0.1) misses a recall of exactly 0.3,
        0.6 or 0.7, which COCO128's small classes reach: see eleven_point_average_precision)."""
        recall, precision, ap = voc_eval(template, str(tmp_path / "voc" / "Annotations" / "{}.xml"),
                                         str(tmp_path / "voc" / "images.txt"), class_name, ovthresh=threshold)
        levels = np.arange(11) / 10
        eleven_point = np.mean([precision[recall >= level].max() if (recall >= level).any() else 0.0
                                for level in levels])
        return 100 * ap, 100 * eleven_point

    at_50 = {class_name: devkit(class_name, 0.5) for class_name in present}
    for class_name, (area_ap, _) in at_50.items():
        assert results[f"AP50-{class_name}"] == pytest.approx(area_ap, abs=1e-6), class_name
    assert results["AP50_11pt"] == pytest.approx(np.mean([ap11 for _, ap11 in at_50.values()]), abs=1e-6)
    assert results["AP75"] == pytest.approx(np.mean([devkit(c, 0.75)[0] for c in present]), abs=1e-6)


def test_occlusion_evaluator_on_real_overlaps(coco128, predictions, tmp_path):
    """COCO128's real overlaps fill several occlusion buckets; each bucket's AP is COCOeval's on
    exactly the images whose box-occlusion ratio falls in it."""
    edges = (0.0, 0.2, 0.4, 0.6, 0.8)
    evaluator = OcclusionEvaluator(coco128, bucket_edges=edges, output_dir=str(tmp_path))
    metrics = run(evaluator, predictions)["occlusion"]
    json_file = MetadataCatalog.get(coco128).json_file
    ground_truth = COCO(json_file)
    ratios = OcclusionEvaluator.image_occlusion_ratios(ground_truth)
    with_objects = {r["image_id"] for r in DatasetCatalog.get(coco128)
                    if any(not a.get("iscrowd", 0) for a in r["annotations"])}
    assert ratios.keys() == with_objects and len(with_objects) < 128
    filled = [name for name in bucket_names(edges) if metrics[f"images_{name}"] > 0]
    assert len(filled) >= 3, metrics

    metadata = MetadataCatalog.get(coco128)
    to_json_id = {contiguous: json_id for json_id, contiguous in metadata.thing_dataset_id_to_contiguous_id.items()}
    for bucket, name in enumerate(bucket_names(edges)):
        image_ids = sorted(i for i, r in ratios.items() if bucket_index(r, edges) == bucket)
        assert metrics[f"images_{name}"] == len(image_ids)
        if not image_ids:
            continue
        results = [dict(r, category_id=to_json_id[r["category_id"]])
                   for model_input, output in predictions if model_input["image_id"] in image_ids
                   for r in instances_to_coco_json(output["instances"], model_input["image_id"])]
        with contextlib.redirect_stdout(io.StringIO()):
            coco_eval = COCOeval(ground_truth, ground_truth.loadRes(results), "bbox")
            coco_eval.params.imgIds = image_ids
            coco_eval.evaluate()
            coco_eval.accumulate()
            coco_eval.summarize()
        assert metrics[f"bbox_AP_{name}"] == pytest.approx(100 * coco_eval.stats[0], abs=1e-9), name
        assert metrics[f"bbox_AP75_{name}"] == pytest.approx(100 * coco_eval.stats[2], abs=1e-9), name
