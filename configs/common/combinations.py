"""Every method of the collection as a CPU-sized model that takes any backbone by name (imported
by configs and tests, not a config itself): the CPU twins of configs/common/models with their
backbone swapped, the DAP classifier, the MSAD teacher and student on FCOS and the WSOD detector.

    model = faster_rcnn("tied_resnet50", num_classes=8, width=0.25)
    model = msad_teacher("tied_resnest50_s", num_classes=8, width=0.25)

``backbone_options`` go to ``build_named_backbone`` (``width``, ``norm``, ``freeze_at``, ...). The
backbone form each method needs, and so which backbone x method cells exist, is
``projects.combinations.matrix.METHODS``.
"""
from detectron2.config import LazyCall as L

from projects.combinations import weakly_supervised_rcnn
from projects.common.config import get_config
from projects.common.modeling import ImageClassifier

from ..msad.models import aligned_student, fusion_teacher
from .backbones import backbone, pyramid

# the collection's classifier normalisation (ImageNet mean / std, BGR, 0..255)
PIXEL_MEAN = [103.530, 116.280, 123.675]
PIXEL_STD = [57.375, 57.120, 58.395]


def classifier(name, num_classes, **backbone_options):
    """``ImageClassifier``: the classification form of ``name`` -> global pool -> fc (DAP step 1)."""
    return L(ImageClassifier)(backbone=backbone(name, **backbone_options), in_feature="res5",
                              num_classes=num_classes, pixel_mean=PIXEL_MEAN, pixel_std=PIXEL_STD,
                              input_format="BGR")


def _with_pyramid(model_config, name, top_block, aligned=False, **backbone_options):
    """The model of ``common/models/<model_config>`` (loaded afresh) on an FPN over ``name``."""
    model = get_config(f"common/models/{model_config}").model
    model.backbone = pyramid(name, out_channels=model.backbone.out_channels, top_block=top_block, aligned=aligned,
                             **backbone_options)
    return model


def faster_rcnn(name, num_classes, **backbone_options):
    """The CPU Faster R-CNN FPN (DAP's detector) on the pyramid form of ``name``."""
    model = _with_pyramid("faster_rcnn_fpn_cpu.py", name, "max_pool", **backbone_options)
    model.roi_heads.num_classes = num_classes
    return model


def mask_rcnn(name, num_classes, **backbone_options):
    model = _with_pyramid("mask_rcnn_fpn_cpu.py", name, "max_pool", **backbone_options)
    model.roi_heads.num_classes = num_classes
    return model


def retinanet(name, num_classes, **backbone_options):
    model = _with_pyramid("retinanet_cpu.py", name, "p6p7", **backbone_options)
    model.num_classes = num_classes
    return model


def fcos(name, num_classes, aligned=False, **backbone_options):
    """The CPU FCOS; ``aligned=True``: its pyramid one level finer (P2..P7) for MSAD."""
    model = _with_pyramid("fcos_cpu.py", name, "p6p7", aligned=aligned, **backbone_options)
    model.num_classes = num_classes
    return model


def msad_teacher(name, num_classes, fusion_loss_weight=0.4, size_divisibility=64, **backbone_options):
    """MSAD's multi-scale fusion teacher on the CPU FCOS with an aligned pyramid of ``name``
    (batches padded to 64, as configs/msad/synthetic_fcos_teacher_cpu.py)."""
    detector = fcos(name, num_classes, aligned=True, **backbone_options)
    return fusion_teacher(detector, fusion_loss_weight=fusion_loss_weight, channels=detector.backbone.out_channels,
                          size_divisibility=size_divisibility)


def msad_student(teacher, distill_weight=0.6, warmup_iters=50):
    """MSAD's low-resolution student of ``teacher`` (same backbone, pyramid shifted one level)."""
    return aligned_student(teacher, distill_weight=distill_weight, warmup_iters=warmup_iters)


def wsod(name, num_classes, head_type="oicr", neck_hidden_dims=(256, 256), pooled_size=2, **backbone_options):
    """WSDDN / OICR (``head_type``) with a redundant adaptation neck on the final map of ``name``
    (the CPU ResNet-WS detectors' neck and pooled size), on precomputed proposals."""
    return L(weakly_supervised_rcnn)(
        backbone=backbone(name, "feature_map", **backbone_options),
        neck_hidden_dims=list(neck_hidden_dims),
        pooled_size=pooled_size,
        num_classes=num_classes,
        pixel_mean=PIXEL_MEAN,
        pixel_std=PIXEL_STD,
        head_type=head_type,
        scale_by_proposal_score=False,
    )
