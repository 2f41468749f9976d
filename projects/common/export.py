"""
Export a config's model to TorchScript or ONNX for serving without this code base
(``d2c-export``, ``python tools/export_model.py``), modelled on detectron2's
``tools/deploy/export_model.py``: the model is traced (``torch.jit.trace``; ONNX through
``torch.onnx.export`` of the same trace) behind detectron2's ``TracingAdapter``, which flattens
its dicts, ``Instances`` and ``Boxes`` into tuples of tensors.

    d2c-export --config-file CFG --format {torchscript,onnx} --output DIR \\
        [--sample-image IMG] [--resolution R] [--opts train.init_checkpoint=W.pth ...]

What the exported model computes: the model's inference on ONE image, as it reads it.

- Inputs: ``image``, (3, H, W) float32 in the model's channel order, already resized by the
  config's test mapper (``LazyPredictor.preprocess`` makes it); normalisation is inside. ResNet-WS
  also takes ``proposal_boxes`` (R, 4) XYXY in the image's pixels (and ``objectness_logits`` (R,)
  when it scales features by proposal score): Selective Search runs in OpenCV, not in tensor ops,
  so proposals are an input of the exported model.
- Outputs, in the order ``export.json`` lists their names: detectors ``instances.pred_boxes``
  (D, 4) in the input image's pixels (detectron2's ``detector_postprocess`` rescales them to the
  original image), ``instances.pred_classes``, ``instances.scores`` (and ``instances.pred_masks``,
  (D, 1, M, M) probabilities, for Mask R-CNN), ``instances.image_size``; classifiers ``scores``.
- SAN classifiers are exported at one resolution with their generated kernels frozen into plain
  convolutions (``projects.san.export``): inputs must be of that resolution.

Every export is checked: the saved file is loaded back (ONNX with onnxruntime) and its outputs on
the sample image compared with the eager model's (``EXPORT_TOLERANCES``).
"""
import argparse
import copy
import dataclasses
import json
import logging
import os
import warnings
from collections.abc import Mapping
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
from torch import nn

import detectron2.data.transforms as T
from detectron2.config import instantiate
from detectron2.data import DatasetCatalog
from detectron2.layers.wrappers import shapes_to_tensor
from detectron2.modeling import GeneralizedRCNN, GeneralizedRCNNWithTTA
from detectron2.structures import Boxes, Instances, ROIMasks

from projects.msad.distillation import AlignedDistillationStudent
from projects.resnet_ws.meta_arch import WeaklySupervisedRCNN, WeaklySupervisedRCNNWithTTA
from projects.san.backbones import SANBackbone
from projects.san.data import set_test_resolution
from projects.san.export import freeze_at_resolution, frozen_resolution

from .engine import add_weight_arguments, load_config
from .io import atomic_output
from .predictor import LazyPredictor

__all__ = [
    "EXPORT_FORMATS",
    "EXPORT_TOLERANCES",
    "ExportError",
    "ExportedModel",
    "ExportInterface",
    "compare_outputs",
    "exceeded_tolerances",
    "export_interface",
    "export_model",
    "flattened_names",
    "load_exported_model",
    "main",
    "prepare_for_export",
    "read_sample_image",
    "run_eager",
    "sample_inputs",
]

logger = logging.getLogger(__name__)

EXPORT_FORMATS = ("torchscript", "onnx")
MODEL_FILES = {"torchscript": "model.ts", "onnx": "model.onnx"}
INFO_FILE = "export.json"
ONNX_OPSET = 17

EXPORT_TOLERANCES = {"pred_boxes": 0.05, "scores": 1e-4, "pred_masks": 1e-3}
"""Largest absolute difference allowed between exported and eager outputs, by output name's last
part (boxes in pixels; scores and mask probabilities in [0, 1]); other outputs (classes, image
sizes, unmatched detections) must be equal. Measured on CPU (tests/common/test_export.py):
TorchScript gives the eager outputs exactly; onnxruntime within 0.007 px for boxes, 3e-5 for
scores and 3e-6 for mask probabilities."""


class ExportError(RuntimeError):
    """The model cannot be exported in the asked format, or its export does not compute what the
    eager model computes; the message says what and why."""


@dataclasses.dataclass
class ExportInterface:
    """How an exported model is called: its named tensor inputs, the function that runs the eager
    model on them (one image, returning its output dict), and which input axes may vary."""

    input_names: Tuple[str, ...]
    inference: Callable
    dynamic_axes: Dict[str, Dict[int, str]]


def prepare_for_export(model: nn.Module, *, resolution: Optional[int] = None) -> nn.Module:
    """
    The model as it is exported, in eval mode: DDP wrappers removed; a SAN classifier frozen at
    ``resolution`` (required for it, refused for other models); an MSAD student without its
    teacher, which serves training only (the TorchScript file would carry its weights). Test-time
    augmentation wrappers
    are refused: they resize and flip every image with NumPy transforms between forward passes,
    which a trace cannot hold (export the model they wrap, ``.model``).
    """
    if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
        model = model.module
    if isinstance(model, (GeneralizedRCNNWithTTA, WeaklySupervisedRCNNWithTTA)):
        raise ExportError(
            f"cannot export the test-time augmentation wrapper {type(model).__name__}: it resizes and flips "
            "every image with NumPy transforms between forward passes, which a trace cannot hold; export the "
            "model it wraps (.model) and run the views outside"
        )
    if isinstance(getattr(model, "backbone", model), SANBackbone):
        if resolution is None:
            raise ExportError(
                f"the {type(model).__name__} has a SAN backbone, which generates its kernels for each input "
                "resolution: give the resolution to export it at (--resolution), its kernels are frozen there"
            )
        return freeze_at_resolution(model, resolution)
    if resolution is not None:
        raise ExportError(
            f"resolution={resolution} applies to SAN classifiers only, not to a {type(model).__name__}: leave it out"
        )
    if isinstance(model, AlignedDistillationStudent):
        student = copy.copy(model)  # shares every part but the module table
        student._modules = dict(model._modules)
        student.teacher = nn.Module()
        model = student
    return model.eval()


def _rcnn_inference(model: GeneralizedRCNN, image: torch.Tensor) -> Dict:
    """Detections in the input image's frame (detectron2's export: no rescaling to an original size)."""
    return {"instances": model.inference([{"image": image}], do_postprocess=False)[0]}


def _weakly_supervised_inference(model: WeaklySupervisedRCNN, image: torch.Tensor, proposal_boxes: torch.Tensor,
                                 objectness_logits: Optional[torch.Tensor] = None) -> Dict:
    """Detections on the given proposals, in the input image's frame."""
    proposals = Instances(shapes_to_tensor(image.shape[-2:]), proposal_boxes=Boxes(proposal_boxes))
    if objectness_logits is not None:
        proposals.objectness_logits = objectness_logits
    return model.inference([{"image": image, "proposals": proposals}], do_postprocess=False)[0]


def _model_inference(model: nn.Module, image: torch.Tensor) -> Dict:
    """The model's own eval forward on one image (dense detectors, MSAD students, classifiers)."""
    return model([{"image": image}])[0]


def export_interface(model: nn.Module) -> ExportInterface:
    """The inputs and the inference of ``model`` (prepared by ``prepare_for_export``) when exported."""
    image_axes = {} if frozen_resolution(model) is not None else {"image": {1: "height", 2: "width"}}
    if isinstance(model, WeaklySupervisedRCNN):
        names = ("image", "proposal_boxes") + (("objectness_logits",) if model.scale_by_proposal_score else ())
        axes = {name: {0: "num_proposals"} for name in names[1:]}
        return ExportInterface(names, _weakly_supervised_inference, {**image_axes, **axes})
    if isinstance(model, GeneralizedRCNN):
        return ExportInterface(("image",), _rcnn_inference, image_axes)
    return ExportInterface(("image",), _model_inference, image_axes)


def sample_inputs(model: nn.Module, image: torch.Tensor) -> Dict[str, torch.Tensor]:
    """The exported model's inputs for one preprocessed image: the image, and for ResNet-WS the
    proposals of its ``proposal_generator``."""
    inputs = {"image": image}
    if isinstance(model, WeaklySupervisedRCNN):
        if model.proposal_generator is None:
            raise ExportError(
                "ResNet-WS is exported with proposals as inputs, and tracing needs the sample image's: set "
                "model.proposal_generator (e.g. Selective Search, the default of the ResNet-WS configs) or pass "
                "the proposals to export_model"
            )
        proposals = model.generate_proposals(image)
        inputs["proposal_boxes"] = proposals.proposal_boxes.tensor
        if model.scale_by_proposal_score:
            inputs["objectness_logits"] = proposals.objectness_logits
    return inputs


def flattened_names(outputs, prefix: str = "") -> List[str]:
    """Names of the tensors ``TracingAdapter`` flattens ``outputs`` into, in its order: dict keys
    and ``Instances`` fields sorted and joined by ".", an ``Instances``' size last as "image_size"."""
    join = lambda name: f"{prefix}.{name}" if prefix else name  # noqa: E731
    if isinstance(outputs, Instances):
        fields = outputs.get_fields()
        return [n for key in sorted(fields) for n in flattened_names(fields[key], join(key))] + [join("image_size")]
    if isinstance(outputs, Mapping):
        return [n for key in sorted(outputs) for n in flattened_names(outputs[key], join(key))]
    if isinstance(outputs, (list, tuple)):
        return [n for index, item in enumerate(outputs) for n in flattened_names(item, join(str(index)))]
    if isinstance(outputs, (Boxes, ROIMasks, torch.Tensor)):
        return [prefix]
    raise ExportError(f"output {prefix or 'of the model'} is a {type(outputs).__name__}, which cannot be exported")


def _detectron2_export():
    """detectron2's ``TracingAdapter`` and ``flatten_to_tuple``, imported on use."""
    try:
        from detectron2.export import TracingAdapter
        from detectron2.export.flatten import flatten_to_tuple
    except ImportError as error:
        raise ImportError(
            f"detectron2.export cannot be imported ({error}): detectron2 v0.6 imports caffe2 there, which torch 2 "
            "no longer has; install detectron2 with tools/install_detectron2.py (patched) or from its main branch"
        ) from error
    return TracingAdapter, flatten_to_tuple


def export_model(model: nn.Module, inputs: Dict[str, torch.Tensor], export_format: str, output_dir: str,
                 *, info: Optional[Dict] = None) -> Dict:
    """
    Export ``model`` (prepared by ``prepare_for_export``; moved to the CPU, where it is traced)
    to ``output_dir``: ``model.ts`` or ``model.onnx`` and ``export.json`` (inputs, outputs in
    order, ``info``, and the differences measured on ``inputs``). The file is loaded back and run
    on ``inputs`` (the sample the trace is made with, ``sample_inputs``); its outputs must match
    the eager model's within ``EXPORT_TOLERANCES``. Returns what ``export.json`` holds.

    Raises:
        ExportError: the model cannot be traced or converted (the message names the failing part
            and why), or its export disagrees with it on the sample.
    """
    if export_format not in EXPORT_FORMATS:
        raise ValueError(f"export format {export_format!r} is not one of {EXPORT_FORMATS}")
    interface = export_interface(model)
    missing = [name for name in interface.input_names if name not in inputs]
    if missing:
        raise ValueError(f"the {type(model).__name__} is exported with inputs {interface.input_names}; "
                         f"{missing} are not in the sample inputs {sorted(inputs)}")
    model = model.to("cpu").eval()
    inputs = {name: inputs[name].detach().to("cpu") for name in interface.input_names}
    flat_inputs = tuple(inputs.values())
    tracing_adapter, _ = _detectron2_export()
    adapter = tracing_adapter(model, flat_inputs, interface.inference).eval()
    model_name = type(model).__name__
    try:
        expected = run_eager(model, inputs)
    except Exception as error:
        raise ExportError(f"the {model_name} fails on the sample inputs before export: {error}") from error
    output_names = list(expected)
    if any(name.endswith("pred_boxes") and len(value) == 0 for name, value in expected.items()):
        logger.warning(f"the {model_name} detects nothing on the sample image, so the trace never runs its "
                       "per-detection layers on a box: export with an image it detects something in")
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(output_dir, MODEL_FILES[export_format])
    with warnings.catch_warnings():
        # the trace is checked against the eager model below, which is what these warnings ask for
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        if export_format == "torchscript":
            _save_torchscript(adapter, flat_inputs, path, model_name)
        else:
            _save_onnx(adapter, flat_inputs, path, interface, output_names, model_name)
    exported = ExportedModel(path, list(interface.input_names), output_names)
    differences = compare_outputs(expected, exported(inputs))
    record = {
        "format": export_format,
        "file": os.path.basename(path),
        "model": model_name,
        "inputs": {name: {"shape": list(inputs[name].shape), "dtype": str(inputs[name].dtype).replace("torch.", ""),
                          "dynamic_axes": {str(k): v for k, v in interface.dynamic_axes.get(name, {}).items()}}
                   for name in interface.input_names},
        "outputs": output_names,
        "sample_max_abs_differences": differences,
        "tolerances": EXPORT_TOLERANCES,
        **(info or {}),
    }
    with atomic_output(os.path.join(output_dir, INFO_FILE), "w") as f:
        json.dump(record, f, indent=2)
    too_large = exceeded_tolerances(differences)
    if too_large:
        raise ExportError(
            f"the {export_format} export of the {model_name} does not reproduce the eager model on the sample "
            f"image: largest differences {too_large} (tolerances {EXPORT_TOLERANCES}, 0 for the rest, "
            "'unmatched' counts detections without counterpart). A traced branch that depends on the input "
            "was frozen at the sample's value: try another --sample-image, or --format torchscript"
        )
    return record


def run_eager(model: nn.Module, inputs: Dict[str, torch.Tensor]) -> Dict[str, np.ndarray]:
    """The eager model's outputs on the inputs of its export (``sample_inputs``), flattened and
    named as the exported model's."""
    interface = export_interface(model)
    _, flatten_to_tuple = _detectron2_export()
    with torch.no_grad():
        outputs = interface.inference(model, *(inputs[name] for name in interface.input_names))
    names = flattened_names(outputs)
    return dict(zip(names, (x.cpu().numpy() for x in flatten_to_tuple(outputs)[0])))


def _save_torchscript(adapter, flat_inputs, path: str, model_name: str) -> None:
    try:
        traced = torch.jit.trace(adapter, flat_inputs, check_trace=False)
    except Exception as error:
        raise ExportError(f"cannot trace the {model_name} to TorchScript: {type(error).__name__}: {error}") from error
    with atomic_output(path, "wb") as f:
        torch.jit.save(traced, f)


def _save_onnx(adapter, flat_inputs, path: str, interface: ExportInterface, output_names, model_name: str) -> None:
    with atomic_output(path, "wb") as f:
        try:
            # dynamo=False: the TorchScript-based exporter, which takes the traced graph of
            # detectron2's data-dependent inference (torch.export cannot hold its Python control flow)
            torch.onnx.export(adapter, flat_inputs, f, dynamo=False, opset_version=ONNX_OPSET,
                              input_names=list(interface.input_names), output_names=output_names,
                              dynamic_axes=interface.dynamic_axes)
        except Exception as error:
            raise ExportError(
                f"cannot export the {model_name} to ONNX (opset {ONNX_OPSET}): {type(error).__name__}: {error}. "
                "TorchScript (--format torchscript) holds every operator of the trace"
            ) from error


class ExportedModel:
    """An exported model loaded back (TorchScript with torch, ONNX with onnxruntime), called with
    ``{input name: tensor or array}`` (``sample_inputs`` gives them) and returning ``{output name:
    NumPy array}``."""

    def __init__(self, path: str, input_names: Sequence[str], output_names: Sequence[str]):
        self.path = path
        self.input_names = list(input_names)
        self.output_names = list(output_names)
        self._onnx_session = self._torchscript_module = None
        if path.endswith(".onnx"):
            try:
                import onnxruntime
            except ImportError as error:
                raise ImportError("running an ONNX export needs onnxruntime: pip install onnxruntime") from error
            self._onnx_session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        else:
            self._torchscript_module = torch.jit.load(path, map_location="cpu")

    def __call__(self, inputs: Mapping) -> Dict[str, np.ndarray]:
        missing = [name for name in self.input_names if name not in inputs]
        if missing:
            raise KeyError(f"{self.path} takes the inputs {self.input_names}; {missing} are missing")
        if self._onnx_session is not None:
            graph_inputs = {i.name for i in self._onnx_session.get_inputs()}  # unread inputs are not in the graph
            feeds = {name: _as_numpy(inputs[name]) for name in self.input_names if name in graph_inputs}
            outputs = self._onnx_session.run(self.output_names, feeds)
        else:
            with torch.no_grad():
                tensors = [torch.as_tensor(inputs[name]) for name in self.input_names]
                outputs = [x.numpy() for x in self._torchscript_module(*tensors)]
        return dict(zip(self.output_names, outputs))


def load_exported_model(output_dir: str) -> ExportedModel:
    """The model ``export_model`` wrote to ``output_dir``, with the input and output names of its
    ``export.json``."""
    with open(os.path.join(output_dir, INFO_FILE)) as f:
        record = json.load(f)
    return ExportedModel(os.path.join(output_dir, record["file"]), list(record["inputs"]), record["outputs"])


def _as_numpy(x) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def compare_outputs(expected: Dict[str, np.ndarray], actual: Dict[str, np.ndarray]) -> Dict[str, float]:
    """
    Largest absolute difference of each output between two runs (eager and exported), and for
    each detection group (outputs sharing a prefix with ``pred_boxes``) the number of detections
    with no counterpart (``<prefix>.unmatched``; inf differences if the counts differ). Detections
    are matched, not compared by position: outputs of equal class whose scores differ by rounding
    may come out in another order.
    """
    differences = {}
    groups = sorted({name[: -len("pred_boxes")] for name in expected if name.endswith("pred_boxes")})
    for prefix in groups:
        per_detection = [name for name in expected if name.startswith(prefix)
                         and "." not in name[len(prefix):] and name != prefix + "image_size"]
        differences.update(_compare_detections(expected, actual, prefix, per_detection))
    for name in expected:
        if name not in differences:
            differences[name] = _max_abs_difference(expected[name], actual[name])
    return differences


def _max_abs_difference(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return float("inf")
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max()) if a.size else 0.0


def _compare_detections(expected, actual, prefix: str, names: Sequence[str]) -> Dict[str, float]:
    """Greedy matching of the two runs' detections (same class, closest boxes and scores)."""
    count_expected, count_actual = len(expected[prefix + "pred_boxes"]), len(actual[prefix + "pred_boxes"])
    classes_name = prefix + "pred_classes"
    rows_e = {name: _rows(expected[name], count_expected) for name in names}
    rows_a = {name: _rows(actual[name], count_actual) for name in names}
    cost = np.zeros((count_expected, count_actual))
    for name in names:
        cost = np.maximum(cost, np.abs(rows_e[name][:, None, :] - rows_a[name][None, :, :]).max(axis=2, initial=0.0))
    if classes_name in rows_e:
        cost[rows_e[classes_name][:, 0][:, None] != rows_a[classes_name][:, 0][None, :]] = np.inf
    pairs, used_e, used_a = [], set(), set()
    for flat in np.argsort(cost, axis=None, kind="stable"):
        i, j = divmod(int(flat), count_actual)
        if i in used_e or j in used_a or not np.isfinite(cost[i, j]):
            continue
        pairs.append((i, j))
        used_e.add(i)
        used_a.add(j)
    differences = {prefix + "unmatched": float(count_expected + count_actual - 2 * len(pairs))}
    for name in names:
        if count_expected != count_actual:
            differences[name] = float("inf")
        else:
            differences[name] = max((float(np.abs(rows_e[name][i] - rows_a[name][j]).max(initial=0.0))
                                     for i, j in pairs), default=0.0)
    return differences


def _rows(values, count: int) -> np.ndarray:
    """(count, k) float64 view of one output with a row per detection (k = 1 for per-detection scalars)."""
    values = np.asarray(values, np.float64)
    return values.reshape(count, int(np.prod(values.shape[1:], dtype=np.int64)))


def exceeded_tolerances(differences: Dict[str, float]) -> Dict[str, float]:
    """The differences of ``compare_outputs`` above ``EXPORT_TOLERANCES`` (0 for outputs it does not name)."""
    return {name: value for name, value in differences.items()
            if value > EXPORT_TOLERANCES.get(name.rsplit(".", 1)[-1], 0.0)}


def read_sample_image(cfg, path: Optional[str]) -> Tuple[np.ndarray, str]:
    """The BGR sample image the trace is made with: ``path``, else the first image of the config's
    test dataset."""
    if path is None:
        names = cfg.dataloader.test.dataset.names
        name = names if isinstance(names, str) else names[0]
        try:
            path = DatasetCatalog.get(name)[0]["file_name"]
        except Exception as error:  # noqa: BLE001 - any failure to read the dataset has the same fix
            raise ValueError(f"no --sample-image given and the test dataset {name!r} cannot be read ({error}): "
                             "pass an image with --sample-image") from error
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise OSError(f"cannot read the sample image {path} (missing or not an image)")
    return image, path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--config-file", required=True, help="a config file, or a config's name under configs/")
    parser.add_argument("--format", required=True, choices=EXPORT_FORMATS)
    parser.add_argument("--output", required=True, help="folder for the model file and export.json")
    parser.add_argument("--sample-image", help="image the trace is made with (default: first test image)")
    parser.add_argument("--resolution", type=int,
                        help="SAN classifiers: the input resolution to freeze the kernels at (default: the test crop)")
    add_weight_arguments(parser)
    parser.add_argument("--opts", nargs=argparse.REMAINDER, default=[], help="key=value overrides")
    args = parser.parse_args(argv)

    cfg = load_config(args.config_file, args.opts)
    predictor = LazyPredictor(cfg, device="cpu", allow_partial_weights=args.allow_partial_weights,
                              allow_random_weights=args.allow_random_weights)
    is_san = isinstance(getattr(predictor.model, "backbone", None), SANBackbone)
    if is_san and args.resolution is not None:  # the sample is resized and cropped as a test image at it
        set_test_resolution(cfg.dataloader.test, args.resolution)
        predictor.augmentations = T.AugmentationList(instantiate(list(cfg.dataloader.test.mapper.augmentations)))
    image, image_path = read_sample_image(cfg, args.sample_image)
    sample = predictor.preprocess(image)
    resolution = int(min(sample.shape[-2:])) if is_san else args.resolution
    model = prepare_for_export(predictor.model, resolution=resolution)
    inputs = sample_inputs(model, sample)
    info = {"config": args.config_file, "input_format": predictor.input_format, "sample_image": image_path,
            "test_augmentations": str(predictor.augmentations), "san_resolution": resolution if is_san else None}
    record = export_model(model, inputs, args.format, args.output, info=info)
    print(f"{os.path.join(args.output, record['file'])}: inputs {list(record['inputs'])}, outputs {record['outputs']}")
    print(f"largest differences from the eager model on {image_path}: {record['sample_max_abs_differences']}")


if __name__ == "__main__":
    main()
