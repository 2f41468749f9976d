"""ResNet-WS (ECCV 2020): residual backbones made to work for weakly supervised object detection,
with WSDDN / OICR heads on precomputed proposals.

Importing it registers the backbones and the meta-architectures (yacs options:
``add_resnet_ws_config``). The proposal tool is
``python -m projects.resnet_ws.proposals`` (not imported here: it needs OpenCV's contrib
modules and scipy only when run).
"""
from .neck import RedundantAdaptationNeck  # noqa: F401
from .backbones import DenseNetWS, Res5BoxHead, ResNetWS, build_densenet_ws_backbone, build_resnet_ws_backbone  # noqa: F401
from .classification import NeckClassifier  # noqa: F401
from .heads import OICRHead, WSDDNHead, build_weak_detection_head  # noqa: F401
from .meta_arch import WeaklySupervisedRCNN, WeaklySupervisedRCNNWithTTA  # noqa: F401
from .data import ProposalDatasetMapper, get_weak_detection_dataset_dicts, weak_detection_dataloader  # noqa: F401
from .evaluation import CorLocEvaluator  # noqa: F401
from .config import add_resnet_ws_config  # noqa: F401
