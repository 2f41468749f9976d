"""yacs options of ResNet-WS (``MODEL.RESNET_WS``, ``MODEL.WSOD``, ``MODEL.RAN``), for detectron2's
``DefaultPredictor`` and the YAML configs under configs/resnet_ws/yacs/."""
from detectron2.config import CfgNode

from projects.common.config import add_common_config

__all__ = ["add_resnet_ws_config"]


def add_resnet_ws_config(cfg: CfgNode) -> None:
    """Add the ResNet-WS options (and the shared ones, ``add_common_config``):

    - MODEL.RESNET_WS.OUTPUT_STRIDE: 8, the WSOD form of ResNet-WS / DenseNet-WS, or 16, the
      ImageNet classification form (depth, norm, width: MODEL.RESNETS);
    - MODEL.WSOD: the ``WeaklySupervisedRCNN``'s NUM_CLASSES, IN_FEATURE, NECK (a name of
      ``meta_arch.WSOD_NECKS``), HEAD_TYPE ("wsddn", "oicr", "oicr_reg"),
      SCALE_BY_PROPOSAL_SCORE and the test-time SCORE_THRESH_TEST / NMS_THRESH_TEST (None: the
      head's); proposals are RoI-pooled by MODEL.ROI_BOX_HEAD.POOLER_TYPE at POOLER_RESOLUTION,
      which the YAML configs set to the paper's "ROIPool" at 7. Inputs without proposals (what
      DefaultPredictor gives) get them from PROPOSAL_GENERATOR: "SelectiveSearch"
      (``SelectiveSearchProposals`` with SELECTIVE_SEARCH.{MODE, MAX_PROPOSALS, MIN_SIZE,
      MAX_IMAGE_SIZE}) or "" (none: every input must bring its own);
    - MODEL.RAN: the redundant adaptation neck's HIDDEN_DIMS and DROPOUT.
    """
    add_common_config(cfg)
    cfg.MODEL.RESNET_WS = CfgNode()
    cfg.MODEL.RESNET_WS.OUTPUT_STRIDE = 8
    cfg.MODEL.WSOD = CfgNode()
    cfg.MODEL.WSOD.NUM_CLASSES = 20
    cfg.MODEL.WSOD.IN_FEATURE = "res5"
    cfg.MODEL.WSOD.NECK = "RedundantAdaptationNeck"
    cfg.MODEL.WSOD.HEAD_TYPE = "oicr"
    cfg.MODEL.WSOD.SCALE_BY_PROPOSAL_SCORE = True
    cfg.MODEL.WSOD.SCORE_THRESH_TEST = None
    cfg.MODEL.WSOD.NMS_THRESH_TEST = None
    cfg.MODEL.WSOD.PROPOSAL_GENERATOR = ""
    cfg.MODEL.WSOD.SELECTIVE_SEARCH = CfgNode()
    cfg.MODEL.WSOD.SELECTIVE_SEARCH.MODE = "fast"
    cfg.MODEL.WSOD.SELECTIVE_SEARCH.MAX_PROPOSALS = 4000
    cfg.MODEL.WSOD.SELECTIVE_SEARCH.MIN_SIZE = 20.0
    cfg.MODEL.WSOD.SELECTIVE_SEARCH.MAX_IMAGE_SIZE = 0
    cfg.MODEL.RAN = CfgNode()
    cfg.MODEL.RAN.HIDDEN_DIMS = [4096, 4096]
    cfg.MODEL.RAN.DROPOUT = 0.5
