"""yacs options of the MSAD models (``MODEL.MSAD``), for detectron2's ``DefaultPredictor`` and the
YAML configs under configs/msad/yacs/."""
from detectron2.config import CfgNode

from projects.common.config import add_common_config

__all__ = ["add_msad_config"]


def add_msad_config(cfg: CfgNode) -> None:
    """Add ``cfg.MODEL.MSAD`` (and the shared options, ``add_common_config``), defaulting to the
    authors' FCOS recipe of configs/msad/models.py:

    - DETECTOR: the meta-architecture the teacher and students wrap ("FCOS", "RetinaNet",
      "GeneralizedRCNN"), built from the same config;
    - PYRAMID_LEVELS: "p2-p7" (heads on P3..P7) or "p1-p6" (R-CNN heads on P2..P6) of
      ``build_aligned_resnet_fpn_backbone``;
    - the teacher: FUSION_HIDDEN_CHANNELS (C-FF), FUSION_LOSS_WEIGHT (lambda), LOW_RES_SCALE,
      INFERENCE_PATH ("fused", "high", "low"), SIZE_DIVISIBILITY (batch padding; 0: the smallest
      that aligns the levels);
    - the students: DISTILL_WEIGHT (gamma), DISTILL_WARMUP_ITERS, STUDENT_INPUT_SCALE, and
      DUAL_RESOLUTION.{HIGH_RES_WIDTH, LOW_RES_WIDTH} of ``build_dual_resolution_backbone``.
    """
    add_common_config(cfg)
    cfg.MODEL.MSAD = CfgNode()
    cfg.MODEL.MSAD.DETECTOR = "FCOS"
    cfg.MODEL.MSAD.PYRAMID_LEVELS = "p2-p7"
    cfg.MODEL.MSAD.FUSION_HIDDEN_CHANNELS = 32
    cfg.MODEL.MSAD.FUSION_LOSS_WEIGHT = 0.4
    cfg.MODEL.MSAD.LOW_RES_SCALE = 0.5
    cfg.MODEL.MSAD.INFERENCE_PATH = "fused"
    cfg.MODEL.MSAD.SIZE_DIVISIBILITY = 256
    cfg.MODEL.MSAD.DISTILL_WEIGHT = 0.6
    cfg.MODEL.MSAD.DISTILL_WARMUP_ITERS = 500
    cfg.MODEL.MSAD.STUDENT_INPUT_SCALE = 0.5
    cfg.MODEL.MSAD.DUAL_RESOLUTION = CfgNode()
    cfg.MODEL.MSAD.DUAL_RESOLUTION.HIGH_RES_WIDTH = 0.5
    cfg.MODEL.MSAD.DUAL_RESOLUTION.LOW_RES_WIDTH = 1.0
