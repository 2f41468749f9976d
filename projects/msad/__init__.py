"""Multi-scale aligned distillation (CVPR 2021): a multi-scale fusion teacher and low-resolution
students whose feature pyramids are aligned with the teacher's.

Importing it registers the teacher / student meta-architectures and the aligned backbones' yacs
builders (options: ``add_msad_config``). FCOS, the detector they are trained with, is the
collection's (projects.common.modeling); it stays importable from here.
"""
from projects.common.modeling import FCOS, FCOSHead  # noqa: F401

from .backbone import (  # noqa: F401
    AlignedFPN,
    DualResolutionBackbone,
    ResNetWithC1,
    aligned_resnet_fpn,
    build_aligned_resnet_fpn_backbone,
    build_dual_resolution_backbone,
)
from .config import add_msad_config  # noqa: F401
from .distillation import AlignedDistillationStudent, DualResolutionStudent, MultiScaleFusionTeacher  # noqa: F401
from .fusion import CrossFeatureFusion  # noqa: F401
