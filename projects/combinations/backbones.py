"""
Every backbone of the collection under one name, in the forms the methods need.

``build_named_backbone(name, form, width=None, norm="BN", freeze_at=0, **options)`` builds the
backbone ``name`` (``BACKBONES``) with the project's own builder (detectron2's ResNet,
``tied_conv.build_tied_resnet`` / ``build_tied_resnest``, ``projects.resnet_ws.ResNetWS`` /
``DenseNetWS``, ``projects.san.SANResNet`` / ``SANMobileNetV2``) in one of three forms (``FORMS``):

* ``"classification"``: the final map ``res5`` of fixed-size crops (``ImageClassifier``, DAP's
  CAMs, SAN's training resolutions);
* ``"feature_map"``: the final map ``res5`` of images of any size (WSOD's RoI pooling);
* ``"pyramid"``: ``res2``..``res5`` at strides 4, 8, 16, 32 of images of any size, for an FPN
  (Faster / Mask R-CNN, RetinaNet, FCOS, DAP's detector, MSAD's aligned pyramid).

A form a backbone cannot take is a ``NotApplicableError`` that names the backbone, what the form
needs and why the backbone lacks it. ``width`` multiplies every channel count (the CPU configs'
and tests' tiny networks); each backbone's default is its paper's (1.0, 0.5 for the slimmed
ResNet-50 of MSAD's supplement Table 1).

``feature_pyramid`` puts detectron2's FPN (or MSAD's ``AlignedFPN``) on a pyramid form, sizing its
top block from the bottom-up when it is built, so that swapping ``bottom_up`` is the only change a
detector config needs; ``weakly_supervised_rcnn`` does the same for the WSOD detector's neck.
"""
import dataclasses
from typing import Callable, Dict, Optional, Sequence, Tuple

from detectron2.modeling import Backbone
from detectron2.modeling.backbone import FPN, BasicStem, ResNet
from detectron2.modeling.backbone.fpn import LastLevelMaxPool, LastLevelP6P7

from projects.common.modeling.backbone import scaled_resnet_stages
from projects.msad import AlignedFPN
from projects.resnet_ws import DenseNetWS, RedundantAdaptationNeck, ResNetWS, WeaklySupervisedRCNN
from projects.san import SANBackbone, SANMobileNetV2, SANResNet
from tied_conv import build_tied_resnest, build_tied_resnet

__all__ = [
    "BACKBONES",
    "FORMS",
    "Lack",
    "NamedBackbone",
    "NotApplicableError",
    "build_named_backbone",
    "check_form",
    "feature_pyramid",
    "weakly_supervised_rcnn",
]

PYRAMID_FEATURES = ("res2", "res3", "res4", "res5")
PYRAMID_STRIDES = (4, 8, 16, 32)
FORMS = {
    "classification": "the final map 'res5' of fixed-size crops (classifiers, DAP's CAMs)",
    "feature_map": "the final map 'res5' of images of any size (WSOD's RoI pooling)",
    "pyramid": "res2..res5 at strides 4, 8, 16, 32 of images of any size (an FPN: Faster / Mask R-CNN, "
               "RetinaNet, FCOS, DAP's detector, MSAD's aligned pyramid)",
}


@dataclasses.dataclass(frozen=True)
class Lack:
    """Why a backbone lacks a form: ``summary`` for the README's matrix, ``reason`` for the error."""

    summary: str
    reason: str


WS_NO_PYRAMID = Lack("no pyramid: stride 8 after res2",
                     "it keeps one fine map: after the stride-8 res2 its stages stay at stride 8 (dilated res4 / res5, "
                     "the WSOD form) or 16 (the classification form), so it has no stride-16 / 32 levels for an FPN")
SAN_FIXED_RESOLUTIONS = Lack("fixed training resolutions",
                             "its kernels and private BN are chosen by the batch resolution min(H, W), which in "
                             "training must be one of its few training resolutions, while detection batches come at "
                             "any size (multi-scale resizing, any aspect ratio, padding)")
SAN_ONE_OUTPUT = Lack("one output, fixed training resolutions",
                      "it has one output (the final 1x1 conv's map at stride 32) and " + SAN_FIXED_RESOLUTIONS.reason)


class NotApplicableError(ValueError):
    """A backbone asked for a form (a method's requirement) it does not have."""


@dataclasses.dataclass(frozen=True)
class NamedBackbone:
    """One entry of ``BACKBONES``: its title, its builder ``build(out_features, width, norm,
    freeze_at, **options)``, its default width and, per form it lacks, why."""

    title: str
    build: Callable[..., Backbone]
    default_width: float = 1.0
    missing_forms: Dict[str, Lack] = dataclasses.field(default_factory=dict)

    def forms(self) -> Tuple[str, ...]:
        return tuple(form for form in FORMS if form not in self.missing_forms)


def _resnet(depth: int):
    def build(out_features, width, norm, freeze_at, stride_in_1x1=False):
        """detectron2's ResNet at ``width``; torchvision-style stride in the 3x3 conv by default
        (the collection's classifiers), ``stride_in_1x1=True`` for MSRA weights."""
        stem_channels = int(round(64 * width))
        block_options = {"norm": norm}
        if depth >= 50:
            block_options["stride_in_1x1"] = stride_in_1x1
        stages = scaled_resnet_stages(depth, width, stem_channels, **block_options)
        stem = BasicStem(3, stem_channels, norm=norm)
        return ResNet(stem, stages, out_features=list(out_features), freeze_at=freeze_at)
    return build


def _tied_resnet(variant: str):
    def build(out_features, width, norm, freeze_at, **options):
        return build_tied_resnet(depth=50, variant=variant, width=width, norm=norm, freeze_at=freeze_at,
                                 out_features=out_features, **options)
    return build


def _tied_resnest(out_features, width, norm, freeze_at, **options):
    return build_tied_resnest(depth=50, B=2, fast=False, width=width, norm=norm, freeze_at=freeze_at,
                              out_features=out_features, **options)


def _resnet_ws(depth: int):
    def build(out_features, width, norm, freeze_at, output_stride=8):
        """The WSOD form (stride 8) by default: the finer final map is the point of ResNet-WS."""
        return ResNetWS(depth, output_stride=output_stride, norm=norm, freeze_at=freeze_at,
                        out_features=out_features, width=width)
    return build


def _densenet_ws(out_features, width, norm, freeze_at, output_stride=8):
    """DenseNet121-WS; ``width`` scales the growth rate (32) and the stem (64)."""
    return DenseNetWS(output_stride=output_stride, norm=norm, freeze_at=freeze_at, out_features=out_features,
                      growth_rate=max(1, int(round(32 * width))), stem_channels=max(1, int(round(64 * width))))


def _check_san_norm(title: str, norm: str, freeze_at: int) -> None:
    if norm != "BN" or freeze_at != 0:
        raise ValueError(f"{title} normalises with its private BN and trains whole: norm={norm!r} and "
                         f"freeze_at={freeze_at} must be 'BN' and 0")


def _san_resnet(depth: int):
    def build(out_features, width, norm, freeze_at, resolutions=(224, 192, 160, 128, 96)):
        _check_san_norm(f"SAN ResNet-{depth}", norm, freeze_at)
        return SANResNet(depth, resolutions=resolutions, width=width, out_features=out_features)
    return build


def _san_mobilenetv2(out_features, width, norm, freeze_at, resolutions=(224, 192, 160, 128, 96)):
    _check_san_norm("SAN MobileNetV2", norm, freeze_at)
    return SANMobileNetV2(resolutions=resolutions, width_mult=width)


BACKBONES: Dict[str, NamedBackbone] = {
    "resnet18": NamedBackbone("ResNet-18", _resnet(18)),
    "resnet50": NamedBackbone("ResNet-50", _resnet(50)),
    "slimmed_resnet50": NamedBackbone("slimmed ResNet-50 (x0.5)", _resnet(50), default_width=0.5),
    "tied_resnet50": NamedBackbone("TiedResNet-50", _tied_resnet("default")),
    "tied_resnet50_s": NamedBackbone("TiedResNet-50-S", _tied_resnet("S")),
    "tied_resnest50_s": NamedBackbone("TiedResNeSt50-S", _tied_resnest),
    "resnet18_ws": NamedBackbone("ResNet18-WS", _resnet_ws(18), missing_forms={"pyramid": WS_NO_PYRAMID}),
    "resnet50_ws": NamedBackbone("ResNet50-WS", _resnet_ws(50), missing_forms={"pyramid": WS_NO_PYRAMID}),
    "densenet121_ws": NamedBackbone("DenseNet121-WS", _densenet_ws, missing_forms={"pyramid": WS_NO_PYRAMID}),
    "san_resnet18": NamedBackbone("SAN ResNet-18", _san_resnet(18), missing_forms={
        "feature_map": SAN_FIXED_RESOLUTIONS, "pyramid": SAN_FIXED_RESOLUTIONS}),
    "san_resnet50": NamedBackbone("SAN ResNet-50", _san_resnet(50), missing_forms={
        "feature_map": SAN_FIXED_RESOLUTIONS, "pyramid": SAN_FIXED_RESOLUTIONS}),
    "san_mobilenetv2": NamedBackbone("SAN MobileNetV2", _san_mobilenetv2, missing_forms={
        "feature_map": SAN_FIXED_RESOLUTIONS, "pyramid": SAN_ONE_OUTPUT}),
}


def check_form(name: str, form: str) -> NamedBackbone:
    """The entry of ``name``; raises when the name or the form is unknown, or the backbone lacks
    the form (``NotApplicableError``, saying why and which forms it has)."""
    if name not in BACKBONES:
        raise KeyError(f"backbone {name!r} is not one of the collection's: {sorted(BACKBONES)}")
    if form not in FORMS:
        raise ValueError(f"form={form!r} is not one of {sorted(FORMS)}")
    entry = BACKBONES[name]
    if form in entry.missing_forms:
        raise NotApplicableError(
            f"{entry.title} ({name!r}) has no {form!r} form, {FORMS[form]}: {entry.missing_forms[form].reason}. "
            f"Its forms: {', '.join(entry.forms())}"
        )
    return entry


def build_named_backbone(name: str, form: str = "classification", width: Optional[float] = None,
                         norm: str = "BN", freeze_at: int = 0, **options) -> Backbone:
    """The backbone ``name`` in ``form`` (see the module docstring) at ``width`` (None: its
    default) with ``norm`` and ``freeze_at`` (detectron2's: 0 trains everything, 2 freezes the
    stem and res2); ``options`` go to its builder (e.g. ``resolutions`` of a SAN backbone,
    ``output_stride`` of a WS backbone, ``stride_in_1x1`` of a ResNet)."""
    entry = check_form(name, form)
    out_features = PYRAMID_FEATURES if form == "pyramid" else ("res5",)
    return entry.build(out_features, entry.default_width if width is None else width, norm, freeze_at, **options)


def _check_pyramid(bottom_up: Backbone) -> None:
    shapes = bottom_up.output_shape()
    strides = tuple(shapes[name].stride if name in shapes else None for name in PYRAMID_FEATURES)
    if strides != PYRAMID_STRIDES:
        raise NotApplicableError(
            f"an FPN needs {', '.join(PYRAMID_FEATURES)} at strides {PYRAMID_STRIDES}, but the bottom-up "
            f"{type(bottom_up).__name__} gives {dict(zip(PYRAMID_FEATURES, strides))}: build it with "
            "build_named_backbone(name, form='pyramid')"
        )


def feature_pyramid(bottom_up: Backbone, out_channels: int = 256, top_block: str = "max_pool", norm: str = "",
                    aligned: bool = False) -> FPN:
    """detectron2's FPN on res2..res5 of ``bottom_up``, with ``top_block`` "max_pool" (P6 by
    max-pooling P5, the R-CNNs') or "p6p7" (P6 / P7 convolved from res5, RetinaNet's and FCOS's,
    sized from ``bottom_up``'s res5 channels); ``aligned=True`` makes it MSAD's ``AlignedFPN``."""
    _check_pyramid(bottom_up)
    if top_block == "max_pool":
        block = LastLevelMaxPool()
    elif top_block == "p6p7":
        block = LastLevelP6P7(bottom_up.output_shape()["res5"].channels, out_channels, in_feature="res5")
    else:
        raise ValueError(f"top_block={top_block!r} must be 'max_pool' (R-CNNs) or 'p6p7' (RetinaNet, FCOS, MSAD)")
    if aligned:
        return AlignedFPN(bottom_up, list(PYRAMID_FEATURES), out_channels, norm=norm, top_block=block)
    return FPN(bottom_up, list(PYRAMID_FEATURES), out_channels, norm=norm, top_block=block)


def weakly_supervised_rcnn(backbone: Backbone, neck_hidden_dims: Sequence[int], pooled_size: int,
                           in_feature: str = "res5", neck_dropout: float = 0.5, **detector_options):
    """``projects.resnet_ws.WeaklySupervisedRCNN`` (WSDDN / OICR) on any backbone's ``in_feature``
    map, its redundant adaptation neck sized from that map's channels. A SAN backbone is refused:
    WSOD trains on images of any size, which it cannot take."""
    if isinstance(backbone, SANBackbone):
        raise NotApplicableError(f"WSOD trains on images of any size, which {type(backbone).__name__} cannot take: "
                                 f"{SAN_FIXED_RESOLUTIONS.reason}")
    channels = backbone.output_shape()[in_feature].channels
    neck = RedundantAdaptationNeck(channels, pooled_size=pooled_size, hidden_dims=list(neck_hidden_dims),
                                   dropout=neck_dropout)
    return WeaklySupervisedRCNN(backbone=backbone, in_feature=in_feature, neck=neck,
                                pooler_resolution=pooled_size, **detector_options)
