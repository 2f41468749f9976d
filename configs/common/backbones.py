"""The collection's backbones by name, as LazyCall configs (projects/combinations/backbones.py).

    model.backbone = backbone("tied_resnet50", width=0.25)                      # a classifier's
    model.backbone.bottom_up = backbone("tied_resnet50", "pyramid", width=0.25)  # an FPN detector's
    model.backbone = pyramid("tied_resnest50_s", top_block="p6p7")              # FPN + bottom-up

Names (``BACKBONE_NAMES``): resnet18, resnet50, slimmed_resnet50, tied_resnet50,
tied_resnet50_s, tied_resnest50_s, resnet18_ws, resnet50_ws, densenet121_ws, san_resnet18,
san_resnet50, san_mobilenetv2. The form ("classification", "feature_map", "pyramid") is checked
here, when the config is written, and again when it is built, so a backbone without the form a
method needs (a ResNet-WS under an FPN, a SAN backbone under a detector) is an error that says why.
On the command line the backbone is one field: ``model.backbone.bottom_up.name=tied_resnet50``.
"""
from detectron2.config import LazyCall as L

from projects.combinations import BACKBONES, build_named_backbone, check_form, feature_pyramid

BACKBONE_NAMES = tuple(BACKBONES)


def backbone(name, form="classification", **options):
    """``build_named_backbone(name, form, **options)`` as a LazyCall (options: ``width``,
    ``norm``, ``freeze_at`` and the backbone's own, e.g. ``resolutions`` of a SAN backbone)."""
    check_form(name, form)
    return L(build_named_backbone)(name=name, form=form, **options)


def pyramid(name, out_channels=256, top_block="max_pool", aligned=False, **options):
    """An FPN (``aligned=True``: MSAD's ``AlignedFPN``) of ``out_channels`` on the pyramid form of
    ``name``; ``top_block`` "max_pool" (R-CNNs) or "p6p7" (RetinaNet, FCOS, MSAD)."""
    return L(feature_pyramid)(bottom_up=backbone(name, "pyramid", **options), out_channels=out_channels,
                              top_block=top_block, aligned=aligned)
