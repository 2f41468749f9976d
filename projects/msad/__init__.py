"""Multi-scale aligned distillation (seeds/003): a multi-scale fusion teacher and low-resolution
students whose feature pyramids are aligned with the teacher's.

Importing it registers the FCOS detector and the teacher / student meta-architectures.
"""
from .backbone import AlignedFPN, DualResolutionBackbone, ResNetWithC1, aligned_resnet_fpn  # noqa: F401
from .distillation import AlignedDistillationStudent, DualResolutionStudent, MultiScaleFusionTeacher  # noqa: F401
from .fcos import FCOS, FCOSHead  # noqa: F401
from .fusion import CrossFeatureFusion  # noqa: F401
