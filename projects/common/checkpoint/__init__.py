"""
Weight conversions into the collection's models: the one home for checkpoint formats.

Every format turns a published checkpoint into ``{"model": state_dict}`` in our names, which
``DetectionCheckpointer`` / ``train.init_checkpoint`` load:

    python -m projects.common.checkpoint --from FORMAT --input IN --output OUT [--config CFG [key=value ...]]

(also installed as ``d2c-convert-checkpoint``). With ``--config`` the result is checked against
that config's model: it must load with no unexpected key, no shape mismatch and no missing key,
except, for an ImageNet backbone given to a detector, the tensors outside the backbone, which are
listed. Formats (module: what it reads):

* ``classifier`` (default, ``target``): an ``ImageClassifier`` checkpoint of this collection;
  ``--fpn`` / ``--backbone-prefix`` / ``--config`` place its backbone in a detector.
* ``torchvision`` (``torchvision_resnet``): torchvision ImageNet ResNets.
* ``san`` (``san``): d-li14/SAN meta ResNet-18/50, MobileNetV2 and the ResNet baselines.
* ``slimmable`` (``slimmable``): the slimmable ResNet-50 that MSAD starts from, at one ``--width``.
* ``msad`` (``msad``): dvlab-research/MSAD FCOS teachers and students.
* ``maskrcnn-benchmark`` (``maskrcnn_benchmark``): mikuhatsune/dap's ImageNet-22K classifiers and
  DAP Faster R-CNNs; ``dap-split`` (``dap_splits``): their low-data split files.
* ``drn-wsod`` (``drn_wsod``): DRN-WSOD's ResNet-WS ImageNet ``.pkl`` files and the WSOD detectors of
  its detectron2 fork; ``detectron`` (``caffe2``): MSRA's ResNet ``.pkl`` files.

What each conversion changes besides names (channel order of the first conv, BN epsilon, class
order, slicing of slimmable kernels) is in its module's docstring; MODEL_ZOO.md lists the
published models with their commands.
"""
from .caffe2 import convert_detectron
from .cli import FORMATS, convert, main
from .conversion import CLASSIFIER, DETECTOR, Conversion, InputConvention
from .dap_splits import convert_dap_split
from .drn_wsod import convert_drn_wsod
from .files import load_model_state_dict, save_model_state_dict
from .maskrcnn_benchmark import convert_maskrcnn_benchmark
from .msad import convert_msad
from .san import convert_san
from .slimmable import convert_slimmable
from .target import check_loads, classifier_to_detection_state_dict, fit_to_model, place_backbone
from .torchvision_resnet import convert_torchvision, torchvision_resnet_to_classifier_state_dict

__all__ = [
    "CLASSIFIER",
    "DETECTOR",
    "FORMATS",
    "Conversion",
    "InputConvention",
    "check_loads",
    "classifier_to_detection_state_dict",
    "convert",
    "convert_classifier_checkpoint",
    "convert_dap_split",
    "convert_detectron",
    "convert_drn_wsod",
    "convert_maskrcnn_benchmark",
    "convert_msad",
    "convert_san",
    "convert_slimmable",
    "convert_torchvision",
    "convert_torchvision_checkpoint",
    "fit_to_model",
    "load_model_state_dict",
    "main",
    "place_backbone",
    "save_model_state_dict",
    "torchvision_resnet_to_classifier_state_dict",
]


def convert_classifier_checkpoint(input_path: str, output_path: str, fpn: bool):
    """Read an ImageClassifier checkpoint, write ``{"model": detection weights}`` to
    ``output_path`` (loadable by ``DetectionCheckpointer`` / ``train.init_checkpoint``)."""
    converted = classifier_to_detection_state_dict(load_model_state_dict(input_path), fpn=fpn)
    save_model_state_dict(converted, output_path)
    return converted


def convert_torchvision_checkpoint(input_path: str, output_path: str, input_format: str = "BGR"):
    """Read a torchvision ResNet checkpoint, write ``{"model": ImageClassifier weights}``."""
    state = load_model_state_dict(input_path)
    converted = torchvision_resnet_to_classifier_state_dict(state, input_format=input_format)
    save_model_state_dict(converted, output_path)
    return converted
