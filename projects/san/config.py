"""yacs options of SAN (``MODEL.SAN``), for detectron2's ``DefaultPredictor`` and the YAML configs
under configs/san/yacs/."""
from detectron2.config import CfgNode

from projects.common.config import add_common_config

__all__ = ["add_san_config"]


def add_san_config(cfg: CfgNode) -> None:
    """Add ``cfg.MODEL.SAN`` (and the shared options, ``add_common_config``): RESOLUTIONS, the
    training resolutions the backbones generate kernels and keep private BNs for (the LazyConfigs
    take them from ``dataloader.train.mapper.resolutions``); WIDTH_MULT of
    ``build_san_mobilenetv2_backbone`` (``build_san_resnet_backbone`` reads MODEL.RESNETS.WIDTH);
    CE_WEIGHT and DISTILLATION_WEIGHT of ``ScaleAdaptiveClassifier``'s training loss."""
    add_common_config(cfg)
    cfg.MODEL.SAN = CfgNode()
    cfg.MODEL.SAN.RESOLUTIONS = [224, 192, 160, 128, 96]
    cfg.MODEL.SAN.WIDTH_MULT = 1.0
    cfg.MODEL.SAN.CE_WEIGHT = 1.0
    cfg.MODEL.SAN.DISTILLATION_WEIGHT = 1.0
