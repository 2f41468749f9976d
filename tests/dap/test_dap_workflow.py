"""The DAP chain through the real configs and tools, shrunk to a few iterations: classifier ->
pseudo boxes -> CLS initialisation -> detector pre-training -> DAP initialisation -> k-shot
fine-tuning from CLS and from DAP -> the workflow's report and plot."""
import json
import os

import pytest
import torch

from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import instantiate
from detectron2.data import DatasetCatalog, MetadataCatalog

from projects.common import engine
from dap import register_pseudo_box_dataset, workflow
from dap.pseudo_boxes import PseudoBoxOptions, generate_pseudo_boxes
from dap.transfer import write_detector_init_checkpoint
from projects.common.checkpoint import convert_classifier_checkpoint

pytestmark = pytest.mark.slow  # trains or installs: the slow tier (pytest -m "not slow" skips it)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PSEUDO_BOX_IMAGES = "dap_chain_cls_images"  # 3 classification images per class
TEST_IMAGES = "dap_chain_val_images"  # 4 detection val images


def _register_subsets():
    if PSEUDO_BOX_IMAGES in DatasetCatalog.list():
        return
    DatasetCatalog.register(PSEUDO_BOX_IMAGES, lambda: [
        d for d in DatasetCatalog.get("synthetic_shapes_cls_train") if d["image_id"].endswith(("_00000", "_00001", "_00002"))
    ])
    source = MetadataCatalog.get("synthetic_shapes_cls_train")
    MetadataCatalog.get(PSEUDO_BOX_IMAGES).set(thing_classes=source.thing_classes, image_root=source.image_root)
    DatasetCatalog.register(TEST_IMAGES, lambda: DatasetCatalog.get("synthetic_shapes_val")[:4])
    val = MetadataCatalog.get("synthetic_shapes_val")  # COCOEvaluator scores only the predicted images
    MetadataCatalog.get(TEST_IMAGES).set(thing_classes=val.thing_classes, json_file=val.json_file)


def _train(config, output_dir, *overrides, eval_only=False):
    args = engine.parse_args([
        "--config-file", os.path.join(REPO, "configs/dap", config), *(["--eval-only"] if eval_only else []),
        f"train.output_dir={output_dir}", "train.max_iter=3", "train.eval_period=3", "train.log_period=1",
        "train.checkpointer.period=3", "dataloader.train.total_batch_size=2", *overrides,
    ])
    return engine.main(args)


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    _register_subsets()
    root = tmp_path_factory.mktemp("dap_chain")
    paths = {name: str(root / name) for name in ("classifier", "pretrain", "finetune")}
    _train("synthetic_classifier_cpu.py", paths["classifier"], "dataloader.train.total_batch_size=8")
    classifier_weights = os.path.join(paths["classifier"], "model_final.pth")

    model = instantiate(engine.load_config(os.path.join(REPO, "configs/dap/synthetic_classifier_cpu.py")).model)
    DetectionCheckpointer(model).load(classifier_weights)
    pseudo_boxes = str(root / "pseudo_boxes" / "train.json")
    os.makedirs(os.path.dirname(pseudo_boxes))
    generate_pseudo_boxes(model.eval(), PSEUDO_BOX_IMAGES, pseudo_boxes,
                          PseudoBoxOptions(scales=(64, 128), resolution="image"), num_workers=0)
    register_pseudo_box_dataset("dap_chain_pseudo_boxes", pseudo_boxes, MetadataCatalog.get(PSEUDO_BOX_IMAGES).image_root)

    cls_init, dap_init = str(root / "cls_init.pth"), str(root / "dap_init.pth")
    convert_classifier_checkpoint(classifier_weights, cls_init, fpn=True)
    _train("synthetic_pretrain_faster_rcnn_cpu.py", paths["pretrain"], f"train.init_checkpoint={cls_init}",
           "dataloader.train.dataset.names=dap_chain_pseudo_boxes", f"dataloader.test.dataset.names={TEST_IMAGES}")
    write_detector_init_checkpoint(os.path.join(paths["pretrain"], "model_final.pth"), dap_init)
    runs = {}
    for init, weights in (("cls", cls_init), ("dap", dap_init)):
        runs[(init, 5)] = os.path.join(paths["finetune"], f"{init}_5shot")
        _train("synthetic_finetune_faster_rcnn_cpu.py", runs[(init, 5)], f"train.init_checkpoint={weights}",
               "dataloader.train.dataset.names=synthetic_shapes_train_5shot_seed0",
               f"dataloader.test.dataset.names={TEST_IMAGES}")
    return root, paths, pseudo_boxes, runs, cls_init, dap_init


def test_dap_initialisation_carries_the_pretrained_detector_but_not_its_classifier(chain):
    root, paths, _, _, cls_init, dap_init = chain
    pretrained = torch.load(os.path.join(paths["pretrain"], "model_final.pth"), weights_only=False)["model"]
    dap, cls = torch.load(dap_init)["model"], torch.load(cls_init)["model"]
    assert "roi_heads.box_predictor.cls_score.weight" not in dap
    assert torch.equal(dap["proposal_generator.rpn_head.conv.weight"], pretrained["proposal_generator.rpn_head.conv.weight"])
    assert not any(key.startswith(("proposal_generator.", "roi_heads.")) for key in cls)  # CLS: backbone only
    # frozen BN and stem: pre-training left the classifier's stem untouched, the rest moved
    stem = "backbone.bottom_up.stem.conv1.weight"
    assert torch.equal(pretrained[stem], cls[stem])


def test_workflow_report_and_plot(chain):
    root, paths, pseudo_boxes, runs, _, _ = chain
    as_classifier = str(root / "detector_as_classifier.json")
    with open(as_classifier, "w") as f:
        json.dump({"detector_classification": {"top1": 50.0, "top5": 90.0}}, f)
    report = "\n".join(workflow._report_lines(pseudo_boxes, paths, runs, [5], as_classifier))
    table = [line.split("|")[1:-1] for line in report.splitlines() if line.startswith("|")]
    assert [cell.strip() for cell in table[0]] == [
        "k (images per class)", "init", "COCO AP", "AP50", "VOC AP50 (area)", "VOC AP50 (07 11-point)"]
    assert [[cell.strip() for cell in row[:2]] for row in table[2:]] == [["5", "CLS"], ["5", "DAP"], ["5", "DAP - CLS"]]
    cls, dap, difference = ([float(cell) for cell in row[2:]] for row in table[2:])
    assert all(cell.strip()[0] in "+-" for cell in table[4][2:])  # signed differences
    assert difference == pytest.approx([d - c for d, c in zip(dap, cls)], abs=0.11, nan_ok=True)  # AP of 3 iterations: nan
    assert "classifier top-1" in report and "mean_best_iou" in report
    assert "top-1 50.0 %" in report
    figure = str(root / "kshot.png")
    workflow._plot(runs, [5], figure)
    assert os.path.getsize(figure) > 10_000
