"""Combinations: any backbone of the collection under any method (README.md, "Combinations").

``backbones`` names every backbone and builds it in the form a method needs; ``matrix`` says which
backbone x method cells exist and why the others cannot.
"""
from .backbones import (  # noqa: F401
    BACKBONES,
    FORMS,
    NamedBackbone,
    NotApplicableError,
    build_named_backbone,
    check_form,
    feature_pyramid,
    weakly_supervised_rcnn,
)
