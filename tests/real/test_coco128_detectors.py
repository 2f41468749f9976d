"""Every detector family of the collection trains two iterations on COCO128's real photographs
(80 classes, polygon masks, crowd regions) through the launcher and is evaluated on eight of them
(the grayscale one included), at CPU size with small images; the trained Faster R-CNN then
predicts on real photos through LazyPredictor and detectron2's DefaultPredictor."""
import argparse
import math
import os

import cv2
import pytest
from PIL import Image
from omegaconf import DictConfig, ListConfig

import detectron2.data.transforms as T
from detectron2.config import LazyCall as L
from detectron2.data import DatasetCatalog
from detectron2.modeling import RetinaNet

from projects.common import engine
from projects.common.predictor import LazyPredictor
from projects.resnet_ws.proposals import main as make_proposals

pytestmark = pytest.mark.slow  # trains through the launcher: the slow tier (pytest -m "not slow" skips it)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NUM_CLASSES = 80
FAMILIES = {
    "faster_rcnn": "configs/smoke/faster_rcnn_R18_FPN_synthetic.py",
    "mask_rcnn": "configs/tied_conv/synthetic_mask_rcnn_resnet50_fpn_cpu.py",
    "retinanet": "configs/tied_conv/synthetic_retinanet_resnet50_fpn_cpu.py",
    "fcos": "configs/msad/synthetic_fcos_R18_FPN_cpu.py",
    "msad_student": "configs/msad/synthetic_fcos_student_cpu.py",
    "tied_resnet_faster_rcnn": "configs/tied_conv/synthetic_faster_rcnn_tied_resnet50_fpn_cpu.py",
    "wsod_oicr": "configs/resnet_ws/synthetic_oicr_R18_WS_cpu.py",
}
EXPECTED_METRICS = {
    "mask_rcnn": ["bbox/AP", "segm/AP", "voc/AP50", "occlusion/bbox_AP_r0.0to0.2"],
    "wsod_oicr": ["voc/AP50", "corloc/CorLoc"],
}


def set_everywhere(node, key, value):
    """Set ``key`` to ``value`` in every mapping of a config tree that has it."""
    if isinstance(node, DictConfig):
        if key in node:
            node[key] = value
        for child in node.values():
            set_everywhere(child, key, value)
    elif isinstance(node, ListConfig):
        for child in node:
            set_everywhere(child, key, value)


def on_coco128(cfg, train_set, test_set, output_dir, proposal_file=None):
    """``cfg`` retargeted to COCO128: its 80 classes, the given train and test sets (evaluators
    included), short edges of 128-160 px at batch 2, no score threshold (an untrained model's
    detections still reach the evaluators), no initial weights, files under ``output_dir``."""
    set_everywhere(cfg.model, "num_classes", NUM_CLASSES)
    set_everywhere(cfg.model, "test_score_thresh", 0.0)
    if cfg.model._target_ is RetinaNet:  # its threshold is an argument the config leaves at 0.05
        cfg.model.test_score_thresh = 0.0
    cfg.dataloader.train.dataset.names = train_set
    cfg.dataloader.test.dataset.names = test_set
    set_everywhere(cfg.dataloader.evaluator, "dataset_name", test_set)
    set_everywhere(cfg.dataloader.evaluator, "output_dir", os.path.join(output_dir, "evaluation"))
    if proposal_file is not None:
        cfg.dataloader.train.dataset.proposal_files = [proposal_file]
        cfg.dataloader.test.dataset.proposal_files = [proposal_file]
    cfg.dataloader.train.mapper.augmentations = [
        L(T.ResizeShortestEdge)(short_edge_length=(128, 160), max_size=256, sample_style="choice"),
        L(T.RandomFlip)(horizontal=True),
    ]
    cfg.dataloader.test.mapper.augmentations = [L(T.ResizeShortestEdge)(short_edge_length=160, max_size=256)]
    cfg.dataloader.train.total_batch_size = 2
    cfg.dataloader.train.num_workers = cfg.dataloader.test.num_workers = 0
    cfg.train.update(init_checkpoint="", output_dir=output_dir, max_iter=2, eval_period=2, log_period=1, seed=0,
                     device="cpu")
    return cfg


@pytest.fixture(scope="module")
def wsod_proposals(coco128_eval_set, tmp_path_factory):
    """Selective Search proposals (fast mode, segmented at 256 px) of the evaluation images."""
    output = str(tmp_path_factory.mktemp("proposals") / f"{coco128_eval_set}.pkl")
    make_proposals(["--dataset", coco128_eval_set, "--output", output, "--max-image-size", "256",
                    "--max-proposals", "500"])
    return output


@pytest.fixture(scope="module")
def trained(coco128, coco128_eval_set, tmp_path_factory, request):
    """``trained(family)`` -> (config, final metrics), each family trained once per module."""
    runs = {}

    def train(family):
        if family not in runs:
            output_dir = str(tmp_path_factory.mktemp(family))
            weakly_supervised = family == "wsod_oicr"
            proposal_file = request.getfixturevalue("wsod_proposals") if weakly_supervised else None
            # WSOD trains on the images it has proposals for; the others on all of COCO128
            train_set = coco128_eval_set if weakly_supervised else coco128
            cfg = on_coco128(engine.load_config(os.path.join(REPO, FAMILIES[family])), train_set,
                             coco128_eval_set, output_dir, proposal_file)
            trainer = engine.do_train(argparse.Namespace(resume=False), cfg)
            runs[family] = cfg, {name: value for name, (value, _) in trainer.storage.latest().items()}
        return runs[family]

    return train


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_family_trains_and_evaluates_on_coco128(family, trained):
    cfg, metrics = trained(family)
    assert math.isfinite(metrics["total_loss"])
    assert os.path.isfile(os.path.join(cfg.train.output_dir, "model_final.pth"))
    for name in EXPECTED_METRICS.get(family, ["bbox/AP", "bbox/AP50", "voc/AP50"]):
        assert 0.0 <= metrics[name] <= 100.0, (name, metrics[name])


@pytest.fixture(scope="module")
def photos(coco128_eval_set):
    """Three real photographs as BGR arrays (cv2.imread), the grayscale one last."""
    records = DatasetCatalog.get(coco128_eval_set)
    files = [records[0]["file_name"], records[1]["file_name"], records[-1]["file_name"]]
    assert Image.open(files[-1]).mode == "L"
    return [cv2.imread(path) for path in files]


def test_lazy_predictor_on_real_photos(trained, photos):
    cfg, _ = trained("faster_rcnn")
    predictor = LazyPredictor(cfg, checkpoint=os.path.join(cfg.train.output_dir, "model_final.pth"), device="cpu")
    for image in photos:
        instances = predictor(image)["instances"]
        assert instances.image_size == image.shape[:2]
        assert len(instances) > 0
        boxes = instances.pred_boxes.tensor
        assert (boxes[:, 2] <= image.shape[1]).all() and (boxes[:, 3] <= image.shape[0]).all()
        assert ((instances.pred_classes >= 0) & (instances.pred_classes < NUM_CLASSES)).all()


def test_default_predictor_on_real_photos(trained, photos, default_predictor_matches_lazy):
    """detectron2's DefaultPredictor on the smoke config's YAML twin predicts what LazyPredictor
    does, with the weights trained on COCO128, on each photo (the grayscale one included)."""
    cfg, _ = trained("faster_rcnn")
    for image in photos:
        default_predictor_matches_lazy(
            "smoke/yacs/faster_rcnn_R18_FPN_synthetic.yaml", "smoke/faster_rcnn_R18_FPN_synthetic.py", image,
            test_size=(160, 256),
            yacs_options=["MODEL.ROI_HEADS.NUM_CLASSES", str(NUM_CLASSES), "MODEL.ROI_HEADS.SCORE_THRESH_TEST", "0.0"],
            lazy_overrides=[f"model.roi_heads.num_classes={NUM_CLASSES}",
                            "model.roi_heads.box_predictor.test_score_thresh=0.0"],
            checkpoint=os.path.join(cfg.train.output_dir, "model_final.pth"),
        )
