"""The DAP detector as a classifier (paper Sec. 4, "Accuracy on ImageNet") at CPU size: the CPU
Faster R-CNN of synthetic_pretrain_faster_rcnn_cpu.py (after DAP pre-training) labels each image of
the embedded synthetic classification split with the class whose detections have the largest
summed confidence; top-1/top-5 accuracy under ``detector_classification``. Evaluation only:

    python train_net.py --config-file configs/dap/synthetic_detector_as_classifier_cpu.py \\
        --eval-only [train.init_checkpoint=PATH/TO/detector/model_final.pth]
"""
from omegaconf import OmegaConf

import detectron2.data.transforms as T
from detectron2.config import LazyCall as L
from detectron2.data import build_detection_test_loader

from dap.evaluation import DetectorAsClassifierEvaluator
from projects.common.data import DetectionDatasetMapper, get_classification_dataset_dicts

from .synthetic_pretrain_faster_rcnn_cpu import model, train

dataloader = OmegaConf.create()
dataloader.test = L(build_detection_test_loader)(
    dataset=L(get_classification_dataset_dicts)(names="synthetic_shapes_cls_val"),
    # the detector's test pipeline (dicts keep their class_id), sized for the 128 px images
    mapper=L(DetectionDatasetMapper)(
        is_train=False,
        augmentations=[L(T.ResizeShortestEdge)(short_edge_length=128, max_size=256)],
        image_format="BGR",
    ),
    num_workers=1,
)
dataloader.evaluator = L(DetectorAsClassifierEvaluator)(dataset_name="${..test.dataset.names}")

train.init_checkpoint = "output/dap/synthetic/pretrain/model_final.pth"
train.output_dir = "output/dap/synthetic/detector_as_classifier"
