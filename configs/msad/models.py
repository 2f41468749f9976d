"""Building blocks of the MSAD configs (imported by them, not a config itself): a teacher and the
students made from any single-resolution detector config (FCOS, RetinaNet, Mask R-CNN).

Loss weights: lambda (fused path of the teacher) and gamma (aligned KD of the students) are 0.4
and 0.6 for the authors' FCOS 1x; supplement E gives 0.4, 0.8 for FCOS and RetinaNet and 0.2, 0.6
for Mask R-CNN with the 3x schedule.
"""
import copy

from detectron2.config import LazyCall as L

from projects.msad import (
    AlignedDistillationStudent,
    CrossFeatureFusion,
    DualResolutionBackbone,
    DualResolutionStudent,
    MultiScaleFusionTeacher,
    aligned_resnet_fpn,
)

IMAGENET_R50_CHECKPOINT = "detectron2://ImageNetPretrained/MSRA/R-50.pkl"
AUTHORS_SIZE_DIVISIBILITY = 256
"""The MSAD authors pad every high-resolution batch to a multiple of 256 (their students' too)."""


def aligned_backbone(detector, levels, depth=50, width=1.0, out_channels=256, norm="FrozenBN", freeze_at=2):
    """Give ``detector`` (a config) an ``aligned_resnet_fpn`` backbone with one level finer than
    its heads read: "p2-p7" for FCOS / RetinaNet (heads on p3..p7), "p1-p6" for Mask R-CNN (P1
    from C1, heads on p2..p6). ``width`` < 1: the slimmed ResNet-50s of supplement Table 1."""
    detector.backbone = L(aligned_resnet_fpn)(
        levels=levels, depth=depth, width=width, out_channels=out_channels, norm=norm, freeze_at=freeze_at
    )
    return detector


def fusion_teacher(detector, fusion_loss_weight, channels=256, size_divisibility=AUTHORS_SIZE_DIVISIBILITY):
    """The multi-scale fusion teacher (high-res + 0.5x copy, C-FF, L_H + L_L + lambda L_F), its
    batches padded to ``size_divisibility`` (the authors' 256; its students train on the same)."""
    return L(MultiScaleFusionTeacher)(
        detector=detector,
        fusion=L(CrossFeatureFusion)(channels=channels),
        fusion_loss_weight=fusion_loss_weight,
        size_divisibility=size_divisibility,
    )


def aligned_student(teacher, distill_weight, warmup_iters=500, input_scale=0.5):
    """A student of ``teacher``'s detector architecture at ``input_scale`` (0.5: the low-res
    student, pyramid shifted by one level; 1.0: the high-res student "S / H" of Table 1)."""
    return L(AlignedDistillationStudent)(
        detector=copy.deepcopy(teacher.detector),
        teacher=teacher,
        distill_weight=distill_weight,
        warmup_iters=warmup_iters,
        input_scale=input_scale,
    )


def dual_resolution_student(teacher, high_res_width, low_res_width, distill_weight, warmup_iters=500, channels=256):
    """Supplement Table 3: a ``high_res_width`` ResNet-50 pyramid on the input and a
    ``low_res_width`` one on its 0.5x copy, fused by C-FF, one head; distilled from ``teacher``."""
    detector = copy.deepcopy(teacher.detector)
    levels = detector.backbone.levels
    detector.backbone = L(DualResolutionBackbone)(
        high_res=L(aligned_resnet_fpn)(levels=levels, width=high_res_width, out_channels=channels, freeze_at=2),
        low_res=L(aligned_resnet_fpn)(levels=levels, width=low_res_width, out_channels=channels, freeze_at=2),
        fusion=L(CrossFeatureFusion)(channels=channels),
    )
    return L(DualResolutionStudent)(
        detector=detector, teacher=teacher, distill_weight=distill_weight, warmup_iters=warmup_iters
    )
